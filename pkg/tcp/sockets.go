package tcp

import (
	"net/netip"

	"github.com/shardstack/shardstack/pkg/hash"
)

// SocketRow is one line of an `ss -tan`-style table.
type SocketRow struct {
	State State
	// RecvQ: for a listener, the accept queue's length; for a connection, unread bytes.
	RecvQ int
	// SendQ: for a listener, the backlog; for a connection, bytes not yet acknowledged.
	SendQ int
	Local netip.AddrPort
	Peer  netip.AddrPort
	// Shard owns the flow (-1 for listeners, which all shards share).
	Shard int
	// Retrans is the retransmission count (requests: SYN-ACK timeouts).
	Retrans int
	// MSS is a connection's send MSS (ss -i's mss), which a lower path MTU reduces.
	MSS int
}

// ListenerRows returns a row per listener: Recv-Q is the accept queue's length and Send-Q
// the backlog, as ss shows them.
func (e *Engine) ListenerRows() []SocketRow {
	var rows []SocketRow
	for _, l := range e.Listeners() {
		peer := netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
		if l.addr.Is4() {
			peer = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		}
		rows = append(rows, SocketRow{
			State: StateListen,
			RecvQ: l.AcceptQueueLen(),
			SendQ: l.Backlog(),
			Local: l.AddrPort(),
			Peer:  peer,
			Shard: -1,
		})
	}
	return rows
}

// Sockets appends the shard's rows: each request as SYN-RECV (as Linux's get_openreq4
// shows it), connections with their queues, TIME-WAIT entries. Shard goroutine only.
// SocketRows implements tcpdrv.Shard: the shard's rows of the socket table.
func (s *shard) SocketRows() any { return s.sockets(nil) }

func (s *shard) sockets(rows []SocketRow) []SocketRow {
	s.syn.Range(func(k *hash.Key, r *request) bool {
		l, p := addrPorts(k)
		rows = append(rows, SocketRow{State: StateSynRecv, Local: l, Peer: p, Shard: s.id, Retrans: r.numTimeout})
		return true
	})
	s.est.Range(func(k *hash.Key, ep *endpoint) bool {
		l, p := addrPorts(k)
		rows = append(rows, SocketRow{
			State:   ep.state,
			RecvQ:   ep.rcv.used(),
			SendQ:   int(ep.snd.head.Load() - ep.snd.tail.Load()),
			Local:   l,
			Peer:    p,
			Shard:   s.id,
			Retrans: ep.retries,
			MSS:     int(ep.mss),
		})
		return true
	})
	s.tw.Range(func(k *hash.Key, _ *timewait) bool {
		l, p := addrPorts(k)
		rows = append(rows, SocketRow{State: StateTimeWait, Local: l, Peer: p, Shard: s.id})
		return true
	})
	return rows
}

// Shutdown resets every connection and drops every request and TIME-WAIT entry of the shard
// (the stack is closing). Shard goroutine only.
func (s *shard) Shutdown() {
	var eps []*endpoint
	s.est.Range(func(_ *hash.Key, ep *endpoint) bool { eps = append(eps, ep); return true })
	for _, ep := range eps {
		s.abort(ep, errAborted, true)
	}
	var reqs []*request
	s.syn.Range(func(_ *hash.Key, r *request) bool { reqs = append(reqs, r); return true })
	for _, r := range reqs {
		s.removeRequest(r)
	}
	var tws []*timewait
	s.tw.Range(func(_ *hash.Key, t *timewait) bool { tws = append(tws, t); return true })
	for _, t := range tws {
		s.freeTimewait(t)
	}
	s.FlushWakes()
}
