package tcp_test

// The acceptance scenarios of spec §9 (S1-S9, S12-S14; S10 and S11 are in
// handshake_test.go), one test per scenario and per profile where the profiles disagree,
// plus the SYN-queue sizing of §2 and the linux-3.12 "young" rule of §3. Each one checks
// the states on both sides, the segments on the wire with their virtual send times, and
// the counters.

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/seedexp"
	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// upTo keeps the times of a schedule that are not after end.
func upTo(ts []int64, end int64) []int64 {
	var out []int64
	for _, v := range ts {
		if v <= end {
			out = append(out, v)
		}
	}
	return out
}

// requireSameSeq checks that every segment carries seq and acknowledges ack.
func requireSameSeq(t *testing.T, segs []seg, seq, ack uint32, msg string) {
	t.Helper()
	for _, s := range segs {
		require.Equal(t, seq, s.seq, "%s: %v", msg, s)
		require.Equal(t, ack, s.ack, "%s: %v", msg, s)
	}
}

// S1, linux-3.12 (seed §1.4): backlog 1, no Accept. Clients 1-2 complete and their 13
// bytes wait in the children. Client 3 (and 4) complete on the client side only: the
// server keeps a request (SYN-RECV), drops every ACK for overflow, retransmits the SYN-ACK
// at 1, 3, 7, 15 s, and the client retransmits its data.
func TestS1_BacklogNoAccept_Linux312(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux312}
	n := scenarioNet(t, 1, st, st)
	l := listenSeed(t, n, 1)
	r := newSeedRun(t, n, l, false, 0, 2, 4, 6)
	end := at(20.5)
	r.run(end)
	ps := r.ports()
	segs := segments(n)

	for i := 0; i < r.size(); i++ {
		require.Equal(t, tcp.StateEstablished, r.conn(i).State(), "client %d\n%s", i+1, trace(n))
	}
	srv := serverTable(t, n)
	require.Len(t, srv.listeners, 1)
	require.Equal(t, 2, srv.listeners[0].RecvQ, "accept queue: backlog 1 holds 2 children")
	require.Equal(t, 1, srv.listeners[0].SendQ)
	require.Len(t, srv.byPort, 4, "%+v", srv.all)
	requireRow(t, srv, ps[0], tcp.StateEstablished, len(seedMsg), 0)
	requireRow(t, srv, ps[1], tcp.StateEstablished, len(seedMsg), 0)
	requireRow(t, srv, ps[2], tcp.StateSynRecv, 0, 0)
	requireRow(t, srv, ps[3], tcp.StateSynRecv, 0, 0)
	require.Equal(t, 4, srv.byPort[ps[2]].Retrans, "client 3's request timed out at 5, 7, 11, 19 s")
	require.Equal(t, 3, srv.byPort[ps[3]].Retrans, "client 4's request timed out at 7, 9, 13 s")
	require.Equal(t, 2, l.SynQueueLen())
	cli := clientTable(t, n)
	requireRow(t, cli, ps[0], tcp.StateEstablished, 0, 0)
	requireRow(t, cli, ps[1], tcp.StateEstablished, 0, 0)
	requireRow(t, cli, ps[2], tcp.StateEstablished, 0, len(seedMsg)) // never acknowledged
	requireRow(t, cli, ps[3], tcp.StateEstablished, 0, len(seedMsg))

	overflowed := 0
	for i := 2; i < 4; i++ {
		start := r.start(i)
		f := flowOf(segs, ps[i])
		syns := filter(f, true, fSYN)
		require.Len(t, syns, 1, trace(n))
		require.Equal(t, start, syns[0].t)
		// Spec §4: the SYN-ACK at 0, 1, 3, 7, 15 s after the first, same ISN every time.
		synacks := filter(f, false, fSYNACK)
		require.Equal(t, upTo(ats(start, 0, 1, 3, 7, 15, 31), end), nanos(synacks), "client %d\n%s", i+1, trace(n))
		requireSameSeq(t, synacks, synacks[0].seq, syns[0].seq+1, "SYN-ACK")
		require.Len(t, dir(f, false), len(synacks), "the server sends nothing but SYN-ACKs to client %d", i+1)
		// The client believes it is connected: it acknowledges, sends its 13 bytes 2 s later
		// and retransmits them, all unanswered; waiting for the reply, it sends nothing else.
		acks := filter(f, true, fACK)
		require.NotEmpty(t, acks)
		require.Equal(t, start, acks[0].t, "the final ACK goes out at once")
		require.Equal(t, synacks[0].seq+1, acks[0].ack)
		data := withPayload(f, true)
		require.GreaterOrEqual(t, len(data), 3, "client %d retransmits its data\n%s", i+1, trace(n))
		require.Equal(t, start+at(2), data[0].t)
		for _, d := range data {
			require.Equal(t, len(seedMsg), d.payload)
			require.Equal(t, syns[0].seq+1, d.seq, "a retransmission of the same bytes")
		}
		overflowed += len(dir(f, true)) - 1 // every segment after the SYN met a full accept queue
	}
	// Clients 1-2: a clean handshake and their data acknowledged.
	for i := 0; i < 2; i++ {
		f := flowOf(segs, ps[i])
		require.Len(t, filter(f, false, fSYNACK), 1)
		require.Len(t, withPayload(f, true), 1)
	}
	c := counters(n.Server)
	require.Equal(t, uint64(overflowed), c[stats.TcpExtListenOverflows], "one per dropped ACK")
	require.Equal(t, uint64(overflowed), c[stats.TcpExtListenDrops])
	require.Equal(t, uint64(2), c[stats.TcpPassiveOpens])
	require.Zero(t, c[stats.TcpExtTCPReqQFullDrop])
	require.Zero(t, c[stats.TcpOutRsts])
	require.Zero(t, c[stats.TcpExtEmbryonicRsts])

	// Spec §4: an acked request keeps soliciting ACKs, so once Accept makes room the next
	// segment from each stuck client (a data retransmission or the answer to a SYN-ACK)
	// completes it, and the data riding on it is queued in the child.
	requireAcceptAll(t, l, 2)
	r.run(at(40))
	requireAllConnected(t, n, r, l)
}

// requireAcceptAll accepts k queued connections.
func requireAcceptAll(t *testing.T, l *tcp.Listener, k int) {
	t.Helper()
	for i := 0; i < k; i++ {
		_, err := l.TryAccept()
		require.NoError(t, err)
	}
	_, err := l.TryAccept()
	require.ErrorIs(t, err, tcp.ErrWouldBlock)
}

// requireAllConnected checks that the seed run's last two clients completed after the first
// two were accepted: children with their 13 bytes, acknowledged, nothing half-open.
func requireAllConnected(t *testing.T, n *simnet.Net, r *seedRun, l *tcp.Listener) {
	t.Helper()
	ps := r.ports()
	require.Zero(t, l.SynQueueLen(), trace(n))
	require.Equal(t, 2, l.AcceptQueueLen())
	srv, cli := serverTable(t, n), clientTable(t, n)
	for i := 2; i < 4; i++ {
		require.Equal(t, tcp.StateEstablished, r.conn(i).State())
		require.Equal(t, len(seedMsg), r.client(i).Sent, "one message, still waiting for its reply")
		requireRow(t, srv, ps[i], tcp.StateEstablished, len(seedMsg), 0)
		requireRow(t, cli, ps[i], tcp.StateEstablished, 0, 0)
	}
	require.Equal(t, uint64(4), counters(n.Server)[stats.TcpPassiveOpens])
}

// S1, linux (current kernels): clients 1-2 as in 3.12; from client 3 on the SYN itself is
// dropped while the accept queue is full, so those clients stay in SYN-SENT and retransmit
// on the linux schedule of §8 (0, 1, 2, 3, 4, 5, 7, 11, 19 s).
func TestS1_BacklogNoAccept_Linux(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux}
	n := scenarioNet(t, 1, st, st)
	l := listenSeed(t, n, 1)
	r := newSeedRun(t, n, l, false, 0, 2, 4, 6)
	end := at(20.5)
	r.run(end)
	ps := r.ports()
	segs := segments(n)

	require.Equal(t, tcp.StateEstablished, r.conn(0).State())
	require.Equal(t, tcp.StateEstablished, r.conn(1).State())
	require.Equal(t, tcp.StateSynSent, r.conn(2).State())
	require.Equal(t, tcp.StateSynSent, r.conn(3).State())
	srv := serverTable(t, n)
	require.Len(t, srv.listeners, 1)
	require.Equal(t, 2, srv.listeners[0].RecvQ)
	require.Equal(t, 1, srv.listeners[0].SendQ)
	require.Len(t, srv.byPort, 2, "no request for clients 3-4: %+v", srv.all)
	requireRow(t, srv, ps[0], tcp.StateEstablished, len(seedMsg), 0)
	requireRow(t, srv, ps[1], tcp.StateEstablished, len(seedMsg), 0)
	require.Zero(t, l.SynQueueLen())
	cli := clientTable(t, n)
	requireRow(t, cli, ps[0], tcp.StateEstablished, 0, 0)
	requireRow(t, cli, ps[1], tcp.StateEstablished, 0, 0)
	requireRow(t, cli, ps[2], tcp.StateSynSent, 0, 0)
	requireRow(t, cli, ps[3], tcp.StateSynSent, 0, 0)

	dropped := 0
	for i := 2; i < 4; i++ {
		start := r.start(i)
		f := flowOf(segs, ps[i])
		syns := filter(f, true, fSYN)
		require.Equal(t, upTo(ats(start, 0, 1, 2, 3, 4, 5, 7, 11, 19, 35), end), nanos(syns), "client %d\n%s", i+1, trace(n))
		requireSameSeq(t, syns, syns[0].seq, 0, "SYN retransmission")
		require.Len(t, f, len(syns), "nothing but SYNs on client %d's flow\n%s", i+1, trace(n))
		dropped += len(syns)
	}
	c := counters(n.Server)
	require.Equal(t, uint64(dropped), c[stats.TcpExtListenOverflows], "one per dropped SYN")
	require.Equal(t, uint64(dropped), c[stats.TcpExtListenDrops])
	require.Equal(t, uint64(2), c[stats.TcpPassiveOpens])
	require.Zero(t, c[stats.TcpExtTCPReqQFullDrop])
	require.Zero(t, c[stats.TcpExtTCPReqQFullDoCookies])

	// Once Accept makes room, the next SYN retransmissions (23 s and 25 s) are admitted, and
	// each client sends its message 2 s after its connect() returns.
	requireAcceptAll(t, l, 2)
	r.run(at(30))
	requireAllConnected(t, n, r, l)
	segs = segments(n)
	for i, connected := range []float64{23, 25} {
		require.Equal(t, at(connected), r.client(2+i).ConnectedAt.Nanoseconds(), "client %d", i+3)
		data := withPayload(flowOf(segs, ps[2+i]), true)
		require.Equal(t, []int64{at(connected + 2)}, nanos(data), "client %d\n%s", i+3, trace(n))
	}
}

// S2 (seed §1.5): backlog 1, the server accepts and replies: every client connects and
// gets a reply to each message, in both profiles. The reply is the seed's (spec §9 says
// "echoes"): 1 s after each message the server sends it back with " : " and a ctime()
// timestamp, 41 bytes, and the client sleeps 2 s after each reply before it sends again,
// so a client that starts at s sends at s+2, s+5, s+8, ... and is answered 1 s later.
func TestS2_BacklogAcceptReply(t *testing.T) {
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: pc.profile}
			n := scenarioNet(t, 1, st, st)
			l := listenSeed(t, n, 1)
			r := newSeedRun(t, n, l, true, 0, 1, 2, 3, 4)
			end := at(12.5)
			r.run(end)
			ps := r.ports()
			segs := segments(n)
			require.Equal(t, r.size(), r.d.Server().Accepted)
			srv := serverTable(t, n)
			require.Equal(t, 0, srv.listeners[0].RecvQ)
			cli := clientTable(t, n)
			for i, c := range r.d.Clients() {
				require.NoError(t, c.Err, "client %d", i+1)
				require.Equal(t, seedexp.OutcomeConnected, c.Outcome)
				require.Equal(t, tcp.StateEstablished, r.conn(i).State())
				requireRow(t, srv, ps[i], tcp.StateEstablished, 0, 0)
				requireRow(t, cli, ps[i], tcp.StateEstablished, 0, 0)
				f := flowOf(segs, ps[i])
				require.Len(t, filter(f, true, fSYN), 1)
				require.Len(t, filter(f, false, fSYNACK), 1)

				var sends, replies []int64
				for k := int64(0); ; k++ {
					s := c.Start.Nanoseconds() + at(2) + k*at(3)
					if s > end {
						break
					}
					sends = append(sends, s)
					if s+at(1) <= end {
						replies = append(replies, s+at(1))
					}
				}
				up, down := withPayload(f, true), withPayload(f, false)
				require.Equal(t, sends, nanos(up), "client %d sends 2 s after connecting and after each reply\n%s", i+1, trace(n))
				require.Equal(t, replies, nanos(down), "client %d: the server replies 1 s after each message\n%s", i+1, trace(n))
				for _, s := range up {
					require.Equal(t, len(seedMsg), s.payload)
				}
				for _, s := range down {
					require.Equal(t, seedexp.ReplyLen, s.payload)
				}
				require.Equal(t, len(sends), c.Messages)
				require.Equal(t, len(sends)*len(seedMsg), c.Sent)
				require.Equal(t, len(replies), c.Replies)
				require.Equal(t, len(replies)*seedexp.ReplyLen, c.Received)
				last := replies[len(replies)-1]
				require.Equal(t, string(seedexp.Reply(seedMsg, seedexp.Epoch.Add(time.Duration(last)))), c.LastReply)
			}
			require.Equal(t, "hello, world! : Thu Oct 17 15:25:37 2013\n", firstPayload(n, false, ps[0]),
				"client 1's first reply is the one the seed printed")
			c := counters(n.Server)
			require.Equal(t, uint64(r.size()), c[stats.TcpPassiveOpens])
			require.Zero(t, c[stats.TcpExtListenOverflows])
			require.Zero(t, c[stats.TcpExtListenDrops])
			require.Zero(t, c[stats.TcpRetransSegs])
			require.Zero(t, counters(n.Client)[stats.TcpRetransSegs])
		})
	}
}

// firstPayload returns the first data a flow carried in one direction.
func firstPayload(n *simnet.Net, toServer bool, clientPort uint16) string {
	for _, f := range n.Frames() {
		th, ok := simnet.TCPOf(f.Data)
		if !ok || f.ToServer != toServer || len(th.Payload()) == 0 {
			continue
		}
		if (toServer && th.SrcPort() == clientPort) || (!toServer && th.DstPort() == clientPort) {
			return string(th.Payload())
		}
	}
	return ""
}

// S3, linux-3.12 (seed §1.6): as S1 with tcp_abort_on_overflow = 1. Client 3's handshake
// completes on its side, and its final ACK is answered with RST (seq = the ACK's ack):
// "connection reset by peer".
func TestS3_AbortOnOverflow_Linux312(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux312}
	srvSt := st
	srvSt.TCPAbortOnOverflow = true
	n := scenarioNet(t, 1, srvSt, st)
	l := listenSeed(t, n, 1)
	r := newSeedRun(t, n, l, false, 0, 2, 4)
	r.run(at(6))
	ps := r.ports()

	f := flowOf(segments(n), ps[2])
	require.Len(t, f, 4, trace(n))
	syn, synack, ack, rst := f[0], f[1], f[2], f[3]
	require.True(t, syn.toServer)
	require.Equal(t, fSYN, syn.flags)
	require.False(t, synack.toServer)
	require.Equal(t, fSYNACK, synack.flags)
	require.Equal(t, syn.seq+1, synack.ack)
	require.True(t, ack.toServer)
	require.Equal(t, fACK, ack.flags)
	require.Equal(t, synack.seq+1, ack.ack)
	require.False(t, rst.toServer)
	require.Equal(t, fRST, rst.flags)
	require.Equal(t, ack.ack, rst.seq, "RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>")
	for _, s := range f {
		require.Equal(t, at(4), s.t, "all at client 3's start")
	}

	c3 := r.client(2)
	require.Equal(t, tcp.StateClosed, r.conn(2).State())
	require.ErrorIs(t, c3.Err, tcp.ErrConnectionReset)
	require.ErrorIs(t, c3.Err, syscall.ECONNRESET)
	require.Contains(t, c3.Err.Error(), "connection reset by peer")
	require.False(t, c3.Connected, "the reset came before connect() could return, as in the seed")
	require.Equal(t, seedexp.OutcomeReset, c3.Outcome)
	require.Equal(t, tcp.StateEstablished, r.conn(0).State())
	require.Equal(t, tcp.StateEstablished, r.conn(1).State())

	srv := serverTable(t, n)
	require.Equal(t, 2, srv.listeners[0].RecvQ)
	require.Len(t, srv.byPort, 2, "no request left for client 3: %+v", srv.all)
	requireRow(t, srv, ps[0], tcp.StateEstablished, len(seedMsg), 0)
	requireRow(t, srv, ps[1], tcp.StateEstablished, len(seedMsg), 0)
	require.Zero(t, l.SynQueueLen())
	cli := clientTable(t, n)
	require.Len(t, cli.byPort, 2, "client 3 is gone: %+v", cli.all)

	c := counters(n.Server)
	require.Equal(t, uint64(1), c[stats.TcpExtListenOverflows])
	require.Equal(t, uint64(1), c[stats.TcpExtListenDrops])
	require.Equal(t, uint64(1), c[stats.TcpExtEmbryonicRsts])
	require.Equal(t, uint64(1), c[stats.TcpOutRsts])
	require.Equal(t, uint64(2), c[stats.TcpPassiveOpens])
	require.Equal(t, uint64(1), counters(n.Client)[stats.TcpEstabResets])
}

// S3, linux: with tcp_abort_on_overflow = 1 a SYN that meets a full accept queue is still
// just dropped (the flag only matters for a final ACK): client 3 stays in SYN-SENT and
// nobody sends a reset.
func TestS3_AbortOnOverflow_Linux(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux}
	srvSt := st
	srvSt.TCPAbortOnOverflow = true
	n := scenarioNet(t, 1, srvSt, st)
	l := listenSeed(t, n, 1)
	r := newSeedRun(t, n, l, false, 0, 2, 4)
	end := at(10)
	r.run(end)
	ps := r.ports()

	f := flowOf(segments(n), ps[2])
	syns := filter(f, true, fSYN)
	require.Equal(t, upTo(ats(at(4), 0, 1, 2, 3, 4, 5, 7), end), nanos(syns), trace(n))
	require.Len(t, f, len(syns), "no answer at all to client 3\n%s", trace(n))
	require.Equal(t, tcp.StateSynSent, r.conn(2).State())
	require.NoError(t, r.conn(2).Err())
	require.Equal(t, seedexp.OutcomeConnecting, r.client(2).Outcome)
	srv := serverTable(t, n)
	require.Equal(t, 2, srv.listeners[0].RecvQ)
	require.Len(t, srv.byPort, 2, "%+v", srv.all)
	c := counters(n.Server)
	require.Equal(t, uint64(len(syns)), c[stats.TcpExtListenOverflows])
	require.Equal(t, uint64(len(syns)), c[stats.TcpExtListenDrops])
	require.Zero(t, c[stats.TcpOutRsts])
	require.Zero(t, c[stats.TcpExtEmbryonicRsts])
}

// S3, the spec's second case: two SYNs are admitted while the accept queue has room for
// one more child; both final ACKs arrive later (held back on the wire). The first takes the
// last place; the second finds the queue full and, with abort_on_overflow, gets a RST.
// Backlog 2 (3 children; linux's SYN queue takes 2 requests, so neither SYN meets a
// cookie), two children already queued. Both profiles behave alike here.
func TestS3_AbortOnOverflow_SecondAckReset(t *testing.T) {
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: pc.profile}
			srvSt := st
			srvSt.TCPAbortOnOverflow = true
			n := scenarioNet(t, 1, srvSt, st)
			l := listenSeed(t, n, 2)
			for i := 0; i < 2; i++ {
				require.Equal(t, tcp.StateEstablished, dialAndRun(t, n).State())
			}
			require.Equal(t, 2, l.AcceptQueueLen())

			tp := newTap(n)
			hold := 100 * time.Millisecond
			tp.toServer = func(th header.TCP, _ []byte) dpdkshim.Action {
				if th.Flags() == fACK && len(th.Payload()) == 0 {
					return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: hold}
				}
				return pass
			}
			start := n.Now()
			b, c := dialSeed(t, n), dialSeed(t, n)
			n.RunFor(time.Millisecond)
			require.Equal(t, 2, l.SynQueueLen(), "both SYNs admitted: the accept queue had room\n%s", trace(n))
			tp.toServer = nil
			n.RunFor(2 * hold)

			// Which final ACK reached the server first: the capture records them at send time,
			// and equal delays keep their order.
			pb, pcn := port(t, b), port(t, c)
			var order []uint16
			for _, s := range filter(segments(n), true, fACK) {
				if s.t == start && (s.sport == pb || s.sport == pcn) {
					order = append(order, s.sport)
				}
			}
			require.Len(t, order, 2, trace(n))
			first, second := b, c
			if order[0] == pcn {
				first, second = c, b
			}
			pf, ps := port(t, first), port(t, second)

			require.Equal(t, tcp.StateEstablished, first.State())
			require.Equal(t, tcp.StateClosed, second.State())
			require.ErrorIs(t, second.Err(), tcp.ErrConnectionReset)
			fs := flowOf(segments(n), ps)
			synack := filter(fs, false, fSYNACK)
			require.Len(t, synack, 1)
			rsts := filter(fs, false, fRST)
			require.Len(t, rsts, 1, trace(n))
			require.Equal(t, synack[0].seq+1, rsts[0].seq)
			require.Equal(t, start+int64(hold), rsts[0].t, "the reset answers the late ACK")
			require.Empty(t, filter(flowOf(segments(n), pf), false, fRST))

			srv := serverTable(t, n)
			require.Equal(t, 3, srv.listeners[0].RecvQ)
			requireRow(t, srv, pf, tcp.StateEstablished, 0, 0)
			_, ok := srv.byPort[ps]
			require.False(t, ok, "nothing left of the reset request: %+v", srv.all)
			require.Zero(t, l.SynQueueLen())
			cnt := counters(n.Server)
			require.Equal(t, uint64(1), cnt[stats.TcpExtListenOverflows])
			require.Equal(t, uint64(1), cnt[stats.TcpExtListenDrops])
			require.Equal(t, uint64(1), cnt[stats.TcpExtEmbryonicRsts])
			require.Equal(t, uint64(3), cnt[stats.TcpPassiveOpens])
			require.Zero(t, cnt[stats.TcpExtTCPReqQFullDoCookies])
		})
	}
}

// S4: the SYN queue is full (its requests' final ACKs are lost) and tcp_syncookies = 1.
// New clients still connect through cookies; SyncookiesSent and SyncookiesRecv count them.
// A middlebox clamps the clients' MSS to 1400, which the cookie rounds down to 1300 from
// the table {536, 1300, 1440, 1460}. With timestamps, window scale and SACK-permitted ride
// in our TSval and survive; without, the child has no window scaling (spec §6).
func TestS4_SynQueueFullCookies(t *testing.T) {
	for _, pc := range bothProfiles {
		for _, ts := range []bool{true, false} {
			name := pc.name + "/timestamps"
			if !ts {
				name = pc.name + "/no-timestamps"
			}
			t.Run(name, func(t *testing.T) { testCookies(t, pc.profile, ts) })
		}
	}
}

func testCookies(t *testing.T, p tcp.Profile, ts bool) {
	const (
		backlog  = 8
		clamped  = 1400
		tableMSS = 1300 // the largest table entry <= 1400
		rcvBuf   = 1 << 20
		ourScale = 5 // the smallest shift that fits 1 MiB in 16 bits
		newConns = 3
		sent     = 4000
	)
	fill := backlog + 1 // linux: full at qlen > backlog (Linux 6.18, measured)
	if p == tcp.ProfileLinux312 {
		fill = 16 // roundup_pow_of_two(max(8, 8) + 1)
	}
	srvSt := tcp.Settings{Profile: p, RcvBuf: rcvBuf}
	cliSt := tcp.Settings{Profile: p, RcvBuf: rcvBuf, TCPTimestampsOff: !ts}
	n := scenarioNet(t, 1, srvSt, cliSt)
	l := listenSeed(t, n, backlog)
	tp := newTap(n)
	filling := true
	stuck := map[uint16]bool{}
	tp.toServer = func(th header.TCP, frame []byte) dpdkshim.Action {
		if th.Flags() == fSYN {
			clampMSS(frame, clamped)
			return pass
		}
		if filling || stuck[th.SrcPort()] {
			return drop
		}
		return pass
	}
	for i := 0; i < fill; i++ {
		stuck[port(t, dialAndRun(t, n))] = true
	}
	filling = false
	require.Equal(t, fill, l.SynQueueLen())
	require.Zero(t, counters(n.Server)[stats.TcpExtSyncookiesSent], "the queue was not full yet")

	var conns []*tcp.Conn
	for i := 0; i < newConns; i++ {
		conns = append(conns, dialSeed(t, n))
	}
	n.RunFor(time.Millisecond)
	c := counters(n.Server)
	require.Equal(t, uint64(newConns), c[stats.TcpExtTCPReqQFullDoCookies])
	require.Equal(t, uint64(newConns), c[stats.TcpExtSyncookiesSent])
	require.Equal(t, uint64(newConns), c[stats.TcpExtSyncookiesRecv])
	require.Zero(t, c[stats.TcpExtSyncookiesFailed])
	require.Zero(t, c[stats.TcpExtTCPReqQFullDrop])
	require.Zero(t, c[stats.TcpExtListenDrops])
	require.Equal(t, uint64(newConns), c[stats.TcpPassiveOpens])
	require.Equal(t, fill, l.SynQueueLen(), "cookies keep no state")
	require.Equal(t, newConns, l.AcceptQueueLen())

	// An ACK that is no cookie of ours, while cookies are in use: SyncookiesFailed and a
	// reset <SEQ=SEG.ACK> (spec §6).
	const bogusPort, bogusAck = 33333, 0x12345678
	tp.inject(t, crafted{sport: bogusPort, dport: seedPort, seq: 0x0badcafe, ack: bogusAck, flags: fACK, win: 1024})
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtSyncookiesFailed])
	bogus := dir(flowOf(segments(n), bogusPort), false)
	require.Len(t, bogus, 1, trace(n))
	require.Equal(t, fRST, bogus[0].flags)
	require.Equal(t, uint32(bogusAck), bogus[0].seq)
	require.Equal(t, newConns, l.AcceptQueueLen(), "no child for it")

	srv := serverTable(t, n)
	for _, cn := range conns {
		require.Equal(t, tcp.StateEstablished, cn.State())
		requireRow(t, srv, port(t, cn), tcp.StateEstablished, 0, 0)
	}
	for i := 0; i < newConns; i++ {
		s, err := l.TryAccept()
		require.NoError(t, err)
		payload := make([]byte, sent)
		for j := range payload {
			payload[j] = byte(i + j)
		}
		k, err := s.TryWrite(payload)
		require.NoError(t, err)
		require.Equal(t, sent, k)
	}
	n.RunFor(50 * time.Millisecond)

	segs := segments(n)
	for _, cn := range conns {
		p := port(t, cn)
		got := make([]byte, sent+1)
		k, err := cn.TryRead(got)
		require.NoError(t, err)
		require.Equal(t, sent, k, "the cookie connection carries data")

		f := flowOf(segs, p)
		syn := filter(f, true, fSYN)
		synack := filter(f, false, fSYNACK)
		ack := filter(f, true, fACK)
		require.Len(t, syn, 1, trace(n))
		require.Len(t, synack, 1, trace(n))
		require.NotEmpty(t, ack)
		require.Equal(t, uint16(clamped), syn[0].opts.MSS, "the middlebox clamped the SYN")
		require.Equal(t, syn[0].seq+1, synack[0].ack)
		require.Equal(t, synack[0].seq+1, ack[0].ack)
		require.Equal(t, uint16(1460), synack[0].opts.MSS, "we advertise our own MSS")
		data := withPayload(f, false)
		require.NotEmpty(t, data, trace(n))
		biggest := 0
		for _, d := range data {
			biggest = max(biggest, d.payload)
		}
		// The child's MSS is the table's 1300; with timestamps each segment carries 12 bytes
		// of option, so a full one holds 1288 (Linux tcp_current_mss).
		want := tableMSS
		if ts {
			want -= 12
		}
		require.Equal(t, want, biggest, trace(n))
		if ts {
			require.True(t, synack[0].opts.TS)
			require.True(t, synack[0].opts.SACKPermitted)
			require.Equal(t, int8(ourScale), synack[0].opts.WScale)
			require.Equal(t, syn[0].opts.TSVal, synack[0].opts.TSEcr)
			// Our TSval's low 6 bits carry the peer's window scale and SACK-permitted
			// (cookie_init_timestamp). The child's later TSvals reveal our offset.
			off := data[0].opts.TSVal - uint32(data[0].t/1e6)
			enc := synack[0].opts.TSVal - off
			require.Equal(t, uint32(syn[0].opts.WScale)|1<<4, enc&0x3f, "wscale | SACK in the cookie's TSval")
			behind := uint32(synack[0].t/1e6) - enc
			require.Less(t, behind, uint32(64), "within 64 ms behind our clock, never ahead")
			// The child kept window scaling: it advertises its 1 MiB as 32768 << 5.
			require.Equal(t, uint16(rcvBuf>>ourScale), data[0].win)
		} else {
			require.False(t, synack[0].opts.TS)
			require.False(t, synack[0].opts.SACKPermitted)
			require.Equal(t, int8(-1), synack[0].opts.WScale, "nowhere to keep window scale")
			// No window scaling on the child: the window field is the buffer, capped.
			require.Equal(t, uint16(0xffff), data[0].win)
		}
	}
}

// dialAndRun dials the seed's server and runs 1 ms.
func dialAndRun(t *testing.T, n *simnet.Net) *tcp.Conn {
	t.Helper()
	c := dialSeed(t, n)
	n.RunFor(time.Millisecond)
	return c
}

// fillSynQueue dials k clients whose every segment after the SYN is lost, so each leaves a
// request behind (or, once the queue is full, is refused); it returns them in dial order.
func fillSynQueue(t *testing.T, n *simnet.Net, k int) []*tcp.Conn {
	t.Helper()
	tp := newTap(n)
	tp.toServer = func(th header.TCP, _ []byte) dpdkshim.Action {
		if nonSYN(th) {
			return drop
		}
		return pass
	}
	var cs []*tcp.Conn
	for i := 0; i < k; i++ {
		cs = append(cs, dialSeed(t, n))
	}
	n.RunFor(time.Millisecond)
	return cs
}

// synAckedPorts returns the client ports the server sent a SYN-ACK to.
func synAckedPorts(segs []seg) map[uint16]bool {
	out := map[uint16]bool{}
	for _, s := range filter(segs, false, fSYNACK) {
		out[s.dport] = true
	}
	return out
}

// S5, linux: tcp_syncookies = 0 and the SYN queue full at qlen > backlog (Linux 6.18
// keeps backlog+1 requests; see docs/experiments): the extra SYNs are dropped
// (TCPReqQFullDrop, ListenDrops), their retransmissions too.
func TestS5_SynQueueFullNoCookies_Linux(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux, TCPSyncookies: tcp.SyncookiesOff}
	n := scenarioNet(t, 1, st, tcp.Settings{Profile: tcp.ProfileLinux})
	l := listenSeed(t, n, 3)
	cs := fillSynQueue(t, n, 6)
	testNoCookies(t, n, l, cs, 4)
}

// S5, linux-3.12: the same with 3.12's sizing: backlog 1 gives a SYN table of 16 (§2).
func TestS5_SynQueueFullNoCookies_Linux312(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux312, TCPSyncookies: tcp.SyncookiesOff}
	n := scenarioNet(t, 1, st, tcp.Settings{Profile: tcp.ProfileLinux312})
	l := listenSeed(t, n, 1)
	cs := fillSynQueue(t, n, 18)
	testNoCookies(t, n, l, cs, 16)
}

func testNoCookies(t *testing.T, n *simnet.Net, l *tcp.Listener, cs []*tcp.Conn, limit int) {
	t.Helper()
	extra := len(cs) - limit
	require.Equal(t, limit, l.SynQueueLen())
	acked := synAckedPorts(segments(n))
	require.Len(t, acked, limit, trace(n))
	for i, c := range cs {
		if i < limit {
			require.True(t, acked[port(t, c)], "client %d admitted", i+1)
			require.Equal(t, tcp.StateEstablished, c.State(), "client %d got its SYN-ACK", i+1)
		} else {
			require.False(t, acked[port(t, c)], "client %d dropped", i+1)
			require.Equal(t, tcp.StateSynSent, c.State())
		}
	}
	cnt := counters(n.Server)
	require.Equal(t, uint64(extra), cnt[stats.TcpExtTCPReqQFullDrop])
	require.Equal(t, uint64(extra), cnt[stats.TcpExtListenDrops])
	require.Zero(t, cnt[stats.TcpExtListenOverflows])
	require.Zero(t, cnt[stats.TcpExtTCPReqQFullDoCookies])
	require.Zero(t, cnt[stats.TcpExtSyncookiesSent])
	rows := serverTable(t, n)
	require.Len(t, rows.byPort, limit)
	for _, r := range rows.byPort {
		require.Equal(t, tcp.StateSynRecv, r.State)
	}
	// The refused clients retransmit their SYNs at 1 s: dropped again.
	n.RunUntil(at(1.5), nil)
	cnt = counters(n.Server)
	require.Equal(t, uint64(2*extra), cnt[stats.TcpExtTCPReqQFullDrop], trace(n))
	require.Equal(t, limit, l.SynQueueLen())
}

// S5, linux: without cookies the last quarter of tcp_max_syn_backlog is kept for peers
// known to be alive (§3 step 2): with 16, the 14th request is refused even though the
// listener's own limit (backlog 64) is far away. Only ListenDrops counts it.
func TestS5_NoCookiesLastQuarter_Linux(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux, TCPSyncookies: tcp.SyncookiesOff, TCPMaxSynBacklog: 16}
	n := scenarioNet(t, 1, st, tcp.Settings{})
	l := listenSeed(t, n, 64)
	fillSynQueue(t, n, 16)
	require.Equal(t, 13, l.SynQueueLen(), "admitted while 16 - qlen >= 4")
	cnt := counters(n.Server)
	require.Equal(t, uint64(3), cnt[stats.TcpExtListenDrops])
	require.Zero(t, cnt[stats.TcpExtTCPReqQFullDrop])
}

// Spec §2: the SYN-queue limit of each profile, seen as the number of requests a listener
// takes before it answers with cookies. linux: full at qlen > backlog, so backlog+1
// requests, as Linux 6.18 keeps them (the spec's text says >=; measured on the kernel,
// docs/experiments/linux-listen-queues.sh); linux-3.12:
// roundup_pow_of_two(max(min(backlog, tcp_max_syn_backlog), 8) + 1).
func TestSynQueue_Limit(t *testing.T) {
	cases := []struct {
		profile       tcp.Profile
		backlog       int
		maxSynBacklog int
		limit         int
	}{
		{tcp.ProfileLinux, 0, 0, 1},
		{tcp.ProfileLinux, 1, 0, 2},
		{tcp.ProfileLinux, 5, 0, 6},
		{tcp.ProfileLinux, 100, 0, 101},
		{tcp.ProfileLinux312, 0, 0, 16},
		{tcp.ProfileLinux312, 1, 0, 16}, // seed 002 says 7; the code it quotes gives 16
		{tcp.ProfileLinux312, 7, 0, 16},
		{tcp.ProfileLinux312, 15, 0, 16},
		{tcp.ProfileLinux312, 16, 0, 32},
		{tcp.ProfileLinux312, 100, 0, 128},
		{tcp.ProfileLinux312, 1000, 64, 128}, // clamped by tcp_max_syn_backlog first
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v/backlog=%d/max_syn_backlog=%d", tc.profile, tc.backlog, tc.maxSynBacklog), func(t *testing.T) {
			st := tcp.Settings{Profile: tc.profile, TCPMaxSynBacklog: tc.maxSynBacklog}
			n := newNet(t, simnet.Options{StaticARP: true, ServerTCP: st, ClientTCP: tcp.Settings{Profile: tc.profile}, NoCapture: true})
			l := listenSeed(t, n, tc.backlog)
			fillSynQueue(t, n, tc.limit+2)
			require.Equal(t, tc.limit, l.SynQueueLen())
			cnt := counters(n.Server)
			require.Equal(t, uint64(2), cnt[stats.TcpExtTCPReqQFullDoCookies], "the two beyond the limit get cookies")
			require.Equal(t, uint64(2), cnt[stats.TcpExtSyncookiesSent])
			require.Zero(t, cnt[stats.TcpExtListenDrops])
			rows := 0
			for _, r := range n.Server.Sockets() {
				if r.State == tcp.StateSynRecv {
					rows++
				}
			}
			require.Equal(t, tc.limit, rows)
		})
	}
}

// Spec §3 step 3, linux-3.12: with the accept queue full a SYN is still admitted unless
// more than one request is "young" (never timed out). Two young requests refuse a third
// SYN; once they have timed out (1 s) its retransmission is admitted.
func TestSynQueue_YoungRule_Linux312(t *testing.T) {
	st := tcp.Settings{Profile: tcp.ProfileLinux312}
	n := scenarioNet(t, 1, st, st)
	l := listenSeed(t, n, 1)
	dialAndRun(t, n)
	dialAndRun(t, n)
	require.Equal(t, 2, l.AcceptQueueLen(), "the accept queue is full")

	t0 := at(10)
	n.RunUntil(t0, nil)
	c3, c4 := dialSeed(t, n), dialSeed(t, n)
	n.RunUntil(t0+at(0.001), nil)
	require.Equal(t, 2, l.SynQueueLen(), "0 then 1 young request: both admitted\n%s", trace(n))
	require.Equal(t, tcp.StateEstablished, c3.State())
	require.Equal(t, tcp.StateEstablished, c4.State())
	cnt := counters(n.Server)
	require.Equal(t, uint64(2), cnt[stats.TcpExtListenOverflows], "their final ACKs overflowed")

	n.RunUntil(t0+at(0.5), nil)
	c5 := dialSeed(t, n)
	n.RunUntil(t0+at(0.501), nil)
	p5 := port(t, c5)
	require.Equal(t, tcp.StateSynSent, c5.State())
	require.Equal(t, 2, l.SynQueueLen())
	require.Empty(t, filter(flowOf(segments(n), p5), false, fSYNACK), "two young requests: SYN dropped")
	cnt = counters(n.Server)
	require.Equal(t, uint64(3), cnt[stats.TcpExtListenOverflows])
	require.Equal(t, uint64(3), cnt[stats.TcpExtListenDrops])

	n.RunUntil(t0+at(2), nil)
	f5 := flowOf(segments(n), p5)
	require.Equal(t, ats(t0, 0.5, 1.5), nanos(filter(f5, true, fSYN)))
	synacks := filter(f5, false, fSYNACK)
	require.Len(t, synacks, 1, trace(n))
	require.Equal(t, t0+at(1.5), synacks[0].t, "admitted once the others were no longer young")
	require.Equal(t, 3, l.SynQueueLen())
	require.Equal(t, tcp.StateEstablished, c5.State())
	requireRow(t, serverTable(t, n), p5, tcp.StateSynRecv, 0, 0)
}

// S6: a SYN, then silence. SYN-ACKs at 0, 1, 3, 7, 15, 31 s with the same ISN; the request
// is gone at 63 s; no child. Both profiles.
func TestS6_SynThenSilence(t *testing.T) {
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: pc.profile}
			n := scenarioNet(t, 1, st, st)
			l := listenSeed(t, n, 8)
			tp := newTap(n)
			sawSYN := false
			tp.toServer = func(th header.TCP, _ []byte) dpdkshim.Action {
				if !sawSYN && th.Flags() == fSYN {
					sawSYN = true
					return pass
				}
				return drop
			}
			c := dialSeed(t, n)
			n.RunUntil(at(63)-1, nil)
			p := port(t, c)
			require.Equal(t, 1, l.SynQueueLen())
			srv := serverTable(t, n)
			requireRow(t, srv, p, tcp.StateSynRecv, 0, 0)
			require.Equal(t, 5, srv.byPort[p].Retrans)

			n.RunUntil(at(63), nil)
			require.Zero(t, l.SynQueueLen(), "the request expires at 63 s")
			srv = serverTable(t, n)
			require.Empty(t, srv.byPort, "%+v", srv.all)
			_, err := l.TryAccept()
			require.ErrorIs(t, err, tcp.ErrWouldBlock)

			n.RunUntil(at(100), nil)
			segs := segments(n)
			syns := filter(segs, true, fSYN)
			require.Len(t, syns, 1)
			require.Len(t, dir(segs, true), 1, "the client is silent after its SYN")
			synacks := filter(segs, false, fSYNACK)
			require.Equal(t, ats(0, 0, 1, 3, 7, 15, 31), nanos(synacks), trace(n))
			require.Len(t, dir(segs, false), len(synacks), "no reset, nothing else")
			requireSameSeq(t, synacks, synacks[0].seq, syns[0].seq+1, "SYN-ACK retransmission")

			cnt := counters(n.Server)
			require.Zero(t, cnt[stats.TcpPassiveOpens])
			require.Equal(t, uint64(5), cnt[stats.TcpRetransSegs])
			require.Equal(t, uint64(5), cnt[stats.TcpExtTCPSynRetrans])
			require.Equal(t, uint64(6), cnt[stats.TcpExtTCPTimeouts], "five retransmissions and the expiry")
			require.Zero(t, cnt[stats.TcpOutRsts])
			require.Zero(t, cnt[stats.TcpExtEmbryonicRsts])
		})
	}
}

// stuckRequest dials one client whose segments after the SYN are lost and returns it with
// the tap, its SYN and the server's SYN-ACK.
func stuckRequest(t *testing.T, n *simnet.Net) (*tcp.Conn, *tap, seg, seg) {
	t.Helper()
	tp := newTap(n)
	tp.toServer = func(th header.TCP, _ []byte) dpdkshim.Action {
		if nonSYN(th) {
			return drop
		}
		return pass
	}
	c := dialAndRun(t, n)
	segs := segments(n)
	require.Len(t, segs, 2, trace(n))
	require.Equal(t, fSYN, segs[0].flags)
	require.Equal(t, fSYNACK, segs[1].flags)
	return c, tp, segs[0], segs[1]
}

// S7: an in-window RST for a request removes it (EmbryonicRsts); one out of the window does
// not. No reset answers a reset, and no SYN-ACK is retransmitted afterwards.
func TestS7_RstForRequest(t *testing.T) {
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: pc.profile}
			n := scenarioNet(t, 1, st, st)
			l := listenSeed(t, n, 8)
			c, tp, syn, _ := stuckRequest(t, n)
			p := port(t, c)
			require.Equal(t, 1, l.SynQueueLen())

			tp.inject(t, crafted{sport: p, dport: seedPort, seq: syn.seq + 1 + 1<<30, flags: fRST})
			require.Equal(t, 1, l.SynQueueLen(), "an RST outside the window is ignored")
			require.Zero(t, counters(n.Server)[stats.TcpExtEmbryonicRsts])
			require.Len(t, dir(segments(n), false), 1, "and not answered\n%s", trace(n))

			tp.inject(t, crafted{sport: p, dport: seedPort, seq: syn.seq + 1, flags: fRST})
			require.Zero(t, l.SynQueueLen())
			srv := serverTable(t, n)
			require.Empty(t, srv.byPort, "%+v", srv.all)
			cnt := counters(n.Server)
			require.Equal(t, uint64(1), cnt[stats.TcpExtEmbryonicRsts])
			require.Equal(t, uint64(1), cnt[stats.TcpAttemptFails])
			require.Zero(t, cnt[stats.TcpOutRsts])

			n.RunUntil(at(5), nil)
			require.Len(t, filter(segments(n), false, fSYNACK), 1, "its timer went with it\n%s", trace(n))
			require.Zero(t, counters(n.Server)[stats.TcpPassiveOpens])
		})
	}
}

// S8: a final ACK whose ack is not snt_isn+1 is answered with RST <SEQ=SEG.ACK> and the
// request stays; the real ACK later completes it normally.
func TestS8_BadFinalAck(t *testing.T) {
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: pc.profile}
			n := scenarioNet(t, 1, st, st)
			l := listenSeed(t, n, 8)
			c, tp, syn, synack := stuckRequest(t, n)
			p := port(t, c)

			for i, bad := range []uint32{synack.seq + 2, synack.seq, synack.seq + 1 + 1<<31} {
				before := len(dir(segments(n), false))
				tp.inject(t, crafted{sport: p, dport: seedPort, seq: syn.seq + 1, ack: bad, flags: fACK, win: 1024})
				out := dir(segments(n), false)
				require.Len(t, out, before+1, trace(n))
				rst := out[before]
				require.Equal(t, fRST, rst.flags, "a bare RST: the bad segment had an ACK")
				require.Equal(t, bad, rst.seq, "RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>")
				require.Equal(t, p, rst.dport)
				require.Equal(t, 1, l.SynQueueLen(), "the request stays")
				requireRow(t, serverTable(t, n), p, tcp.StateSynRecv, 0, 0)
				cnt := counters(n.Server)
				require.Equal(t, uint64(i+1), cnt[stats.TcpOutRsts])
				require.Zero(t, cnt[stats.TcpExtEmbryonicRsts])
				require.Zero(t, cnt[stats.TcpPassiveOpens])
			}

			// The client's own ACK now gets through: its answer to the SYN-ACK retransmitted
			// at 1 s completes the handshake.
			tp.toServer = nil
			n.RunUntil(at(1.5), nil)
			require.Zero(t, l.SynQueueLen())
			s, err := l.TryAccept()
			require.NoError(t, err, trace(n))
			require.Equal(t, c.LocalAddrPort(), s.RemoteAddrPort())
			require.Equal(t, tcp.StateEstablished, s.State())
			require.Equal(t, uint64(1), counters(n.Server)[stats.TcpPassiveOpens])
			_, err = c.TryWrite([]byte("after S8"))
			require.NoError(t, err)
			n.RunFor(time.Millisecond)
			buf := make([]byte, 16)
			k, err := s.TryRead(buf)
			require.NoError(t, err)
			require.Equal(t, "after S8", string(buf[:k]))
		})
	}
}

// S9: the listener closes with two children queued and two requests pending. The children
// are reset (their clients see "connection reset by peer"), the requests dropped, and
// nothing is left on the server; the pending clients are reset when they next send.
func TestS9_ListenerClosedWithQueue(t *testing.T) {
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: pc.profile}
			n := scenarioNet(t, 1, st, st)
			l := listenSeed(t, n, 4)
			queued := []*tcp.Conn{dialAndRun(t, n), dialAndRun(t, n)}
			tp := newTap(n)
			filling := true
			stuck := map[uint16]bool{}
			tp.toServer = func(th header.TCP, _ []byte) dpdkshim.Action {
				if nonSYN(th) && (filling || stuck[th.SrcPort()]) {
					return drop
				}
				return pass
			}
			pending := []*tcp.Conn{dialAndRun(t, n), dialAndRun(t, n)}
			for _, c := range pending {
				stuck[port(t, c)] = true
			}
			filling = false
			srv := serverTable(t, n)
			require.Equal(t, 2, srv.listeners[0].RecvQ)
			for _, c := range queued {
				requireRow(t, srv, port(t, c), tcp.StateEstablished, 0, 0)
			}
			for _, c := range pending {
				requireRow(t, srv, port(t, c), tcp.StateSynRecv, 0, 0)
			}

			closedAt := n.Now()
			require.NoError(t, l.Close())
			n.RunFor(time.Millisecond)
			_, err := l.TryAccept()
			require.ErrorIs(t, err, tcp.ErrClosed)
			require.Empty(t, n.Server.Sockets(), "no listener, request or child left")
			require.Zero(t, l.SynQueueLen())
			require.Zero(t, l.AcceptQueueLen())

			segs := segments(n)
			for _, c := range queued {
				f := flowOf(segs, port(t, c))
				synack := filter(f, false, fSYNACK)
				require.Len(t, synack, 1)
				var rsts []seg
				for _, s := range dir(f, false) {
					if s.flags&header.TCPFlagRST != 0 {
						rsts = append(rsts, s)
					}
				}
				require.Len(t, rsts, 1, trace(n))
				require.Equal(t, closedAt, rsts[0].t)
				require.Equal(t, synack[0].seq+1, rsts[0].seq, "at the child's snd.nxt")
				// Linux's active reset (tcp_send_active_reset) is RST|ACK acknowledging rcv.nxt.
				require.Equal(t, fRSTACK, rsts[0].flags)
				require.Equal(t, filter(f, true, fSYN)[0].seq+1, rsts[0].ack)
				require.Equal(t, tcp.StateClosed, c.State())
				require.ErrorIs(t, c.Err(), tcp.ErrConnectionReset)
			}
			for _, c := range pending {
				require.Empty(t, filter(flowOf(segs, port(t, c)), false, fRST), "a request is dropped silently")
				require.Equal(t, tcp.StateEstablished, c.State())
			}
			cnt := counters(n.Server)
			require.Equal(t, uint64(2), cnt[stats.TcpEstabResets])
			require.Equal(t, uint64(2), cnt[stats.TcpOutRsts])
			require.Zero(t, cnt.Value(stats.TcpCurrEstab))

			// The pending clients believe they are connected; their next segment meets no
			// listener and is reset.
			tp.toServer = nil
			for _, c := range pending {
				_, err := c.TryWrite([]byte("anyone?"))
				require.NoError(t, err)
			}
			n.RunFor(time.Millisecond)
			for _, c := range pending {
				require.Equal(t, tcp.StateClosed, c.State())
				require.ErrorIs(t, c.Err(), tcp.ErrConnectionReset)
			}
			require.Empty(t, n.Server.Sockets())
			require.Empty(t, n.Client.Sockets(), "nothing leaks on either side")
			require.Zero(t, counters(n.Client).Value(stats.TcpCurrEstab))
		})
	}
}

// silentPeer dials a server that never answers (every frame toward it is recorded and
// lost), runs until the connection gives up and checks how it failed; it returns the SYNs
// it sent and when it failed.
func silentPeer(t *testing.T, p tcp.Profile) ([]seg, int64) {
	t.Helper()
	st := tcp.Settings{Profile: p}
	n := scenarioNet(t, 1, st, st)
	tp := newTap(n)
	rec := &recorder{n: n}
	tp.toServer = rec.swallow()
	c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunUntil(at(300), func() bool { return c.State() == tcp.StateClosed })
	require.Equal(t, tcp.StateClosed, c.State())
	for _, s := range rec.segs {
		require.Equal(t, fSYN, s.flags, "a client in SYN-SENT sends SYNs only (no RST when it gives up)")
		require.Equal(t, rec.segs[0].seq, s.seq, "same ISN every time")
	}
	require.Empty(t, segments(n), "nothing was delivered")
	require.ErrorIs(t, c.Err(), tcp.ErrTimedOut)
	require.True(t, errors.Is(c.Err(), syscall.ETIMEDOUT))
	require.Empty(t, n.Client.Sockets())
	cnt := counters(n.Client)
	retrans := uint64(len(rec.segs) - 1)
	require.Equal(t, uint64(1), cnt[stats.TcpActiveOpens])
	require.Equal(t, uint64(1), cnt[stats.TcpAttemptFails])
	require.Equal(t, retrans, cnt[stats.TcpRetransSegs])
	require.Equal(t, retrans, cnt[stats.TcpExtTCPSynRetrans])
	require.Equal(t, retrans, cnt[stats.TcpExtTCPTimeouts])
	require.Equal(t, uint64(1), cnt[stats.TcpExtTCPAbortOnTimeout])
	require.Zero(t, cnt[stats.TcpOutRsts])
	return rec.segs, n.Now()
}

// S12, linux: SYNs at 0, 1, 2, 3, 4 s (tcp_syn_linear_timeouts = 4), one more 1 s, then
// doubling: 5, 7, 11, 19, 35, 67 s; ETIMEDOUT 64 s after the last, at 131 s.
//
// Spec §8 lists the last SYN at 69 s and ETIMEDOUT at "about 133 s": that is its own rule
// (1 s x 5, then doubling from 2 s) misadded at 35 + 32, matching the rounded observation
// (69.51 s, where Linux's timer wheel adds slack to long timers). Linux's code, 6 + 4
// retransmissions with the RTO doubling after the fifth, gives 67 s and 131 s.
func TestS12_SilentPeer_Linux(t *testing.T) {
	syns, failed := silentPeer(t, tcp.ProfileLinux)
	require.Equal(t, ats(0, 0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67), nanos(syns))
	require.Equal(t, at(131), failed)
}

// S12, linux-3.12: SYNs at 0, 1, 3, 7, 15, 31, 63 s and ETIMEDOUT at 127 s.
func TestS12_SilentPeer_Linux312(t *testing.T) {
	syns, failed := silentPeer(t, tcp.ProfileLinux312)
	require.Equal(t, ats(0, 0, 1, 3, 7, 15, 31, 63), nanos(syns))
	require.Equal(t, at(127), failed)
}

// S13: simultaneous open. Both stacks connect to each other's port at the same instant
// (the wire takes 1 ms, so the SYNs cross); each goes SYN-SENT -> SYN-RECV, sends a
// SYN-ACK carrying its original ISN, and both end ESTABLISHED with one ISN each.
func TestS13_SimultaneousOpen(t *testing.T) {
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: pc.profile}
			n := scenarioNet(t, 1, st, st)
			tp := newTap(n)
			wire := func(header.TCP, []byte) dpdkshim.Action {
				return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: time.Millisecond}
			}
			tp.toServer, tp.toClient = wire, wire
			const cport, sport = 6000, 5000
			cc, err := n.Client.DialAsync(netip.AddrPortFrom(simnet.ServerAddr.Addr(), sport), tcp.DialOptions{LocalPort: cport})
			require.NoError(t, err)
			sc, err := n.Server.DialAsync(netip.AddrPortFrom(simnet.ClientAddr.Addr(), cport), tcp.DialOptions{LocalPort: sport})
			require.NoError(t, err)
			n.RunFor(20 * time.Millisecond)
			require.Equal(t, tcp.StateEstablished, cc.State(), trace(n))
			require.Equal(t, tcp.StateEstablished, sc.State(), trace(n))

			segs := segments(n)
			cSyn, sSyn := filter(segs, true, fSYN), filter(segs, false, fSYN)
			cSynAck, sSynAck := filter(segs, true, fSYNACK), filter(segs, false, fSYNACK)
			require.Len(t, cSyn, 1, trace(n))
			require.Len(t, sSyn, 1, trace(n))
			require.Equal(t, cSyn[0].t, sSyn[0].t, "the SYNs leave together")
			require.Len(t, cSynAck, 1, trace(n))
			require.Len(t, sSynAck, 1, trace(n))
			require.Equal(t, cSyn[0].seq, cSynAck[0].seq, "the client's SYN-ACK carries its original ISN")
			require.Equal(t, sSyn[0].seq, sSynAck[0].seq, "the server's SYN-ACK carries its original ISN")
			require.Equal(t, sSyn[0].seq+1, cSynAck[0].ack)
			require.Equal(t, cSyn[0].seq+1, sSynAck[0].ack)
			require.Greater(t, cSynAck[0].t, cSyn[0].t, "each SYN-ACK answers the peer's SYN")
			for _, s := range segs {
				require.Zero(t, s.flags&header.TCPFlagRST, "no reset: %v", s)
				require.Equal(t, s.toServer, s.sport == cport)
			}

			for _, side := range []struct {
				name string
				n    interface{ Counters() stats.Counters }
			}{{"client", n.Client}, {"server", n.Server}} {
				cnt := counters(side.n)
				require.Equal(t, uint64(1), cnt[stats.TcpActiveOpens], side.name)
				require.Zero(t, cnt[stats.TcpPassiveOpens], side.name)
				require.Equal(t, int64(1), cnt.Value(stats.TcpCurrEstab), side.name)
				require.Zero(t, cnt[stats.TcpOutRsts], side.name)
			}
			crow, srow := n.Client.Sockets(), n.Server.Sockets()
			require.Len(t, crow, 1)
			require.Len(t, srow, 1)
			require.Equal(t, tcp.StateEstablished, crow[0].State)
			require.Equal(t, uint16(cport), crow[0].Local.Port())
			require.Equal(t, uint16(sport), crow[0].Peer.Port())
			require.Equal(t, tcp.StateEstablished, srow[0].State)
			require.Equal(t, uint16(sport), srow[0].Local.Port())
			require.Equal(t, uint16(cport), srow[0].Peer.Port())

			_, err = cc.TryWrite([]byte("ping"))
			require.NoError(t, err)
			_, err = sc.TryWrite([]byte("pong"))
			require.NoError(t, err)
			n.RunFor(20 * time.Millisecond)
			buf := make([]byte, 8)
			k, err := sc.TryRead(buf)
			require.NoError(t, err)
			require.Equal(t, "ping", string(buf[:k]))
			k, err = cc.TryRead(buf)
			require.NoError(t, err)
			require.Equal(t, "pong", string(buf[:k]))
		})
	}
}

// S14: 1,000 clients connect from one address to one listener, four shards a side. Every
// local port is distinct and inside ip_local_port_range, and on both stacks every flow
// lives on the shard its flow hash picks, so no segment needs a hand-off.
func TestS14_ThousandClientsOneAddress(t *testing.T) {
	const (
		clients = 1000
		shards  = 4
	)
	portRange := [2]uint16{40000, 44999}
	for _, pc := range bothProfiles {
		t.Run(pc.name, func(t *testing.T) {
			n := newNet(t, simnet.Options{StaticARP: true, Shards: shards, NoCapture: true,
				ServerTCP: tcp.Settings{Profile: pc.profile},
				ClientTCP: tcp.Settings{Profile: pc.profile, IPLocalPortRange: portRange}})
			l, err := n.Server.ListenTCP(serverAP, tcp.ListenOptions{Backlog: 1024})
			require.NoError(t, err)
			var cs []*tcp.Conn
			for i := 0; i < clients; i++ {
				c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
				require.NoError(t, err)
				cs = append(cs, c)
			}
			n.RunFor(10 * time.Millisecond)

			caddr, saddr := simnet.ClientAddr.Addr().As4(), simnet.ServerAddr.Addr().As4()
			ch, sh := n.Client.Hasher(), n.Server.Hasher()
			ports := map[uint16]bool{}
			perShard := make([]int, shards)
			for i, c := range cs {
				require.Equal(t, tcp.StateEstablished, c.State(), "client %d", i)
				p := port(t, c)
				require.False(t, ports[p], "port %d used twice", p)
				ports[p] = true
				require.GreaterOrEqual(t, p, portRange[0])
				require.LessOrEqual(t, p, portRange[1])
				k := hash.KeyV4(caddr, p, saddr, serverAP.Port())
				h := ch.Sum(&k)
				require.Equal(t, h, c.FlowHash())
				// The owner is the shard whose queue the link steers the flow to.
				require.Equal(t, n.PortC.Steering().Queue(k, shards), c.Shard(), "client flow from port %d", p)
				perShard[c.Shard()]++
			}
			for i, k := range perShard {
				require.Equal(t, clients/shards, k, "dials spread evenly: shard %d", i)
			}
			accepted := 0
			for {
				s, err := l.TryAccept()
				if err != nil {
					require.ErrorIs(t, err, tcp.ErrWouldBlock)
					break
				}
				accepted++
				p := s.RemoteAddrPort().Port()
				require.True(t, ports[p], "the server sees the client's port %d", p)
				k := hash.KeyV4(saddr, serverAP.Port(), caddr, p)
				require.Equal(t, n.PortS.Steering().Queue(k, shards), s.Shard(), "server flow to port %d", p)
				require.Equal(t, sh.Sum(&k), s.FlowHash(), "the table hash is the server's own")
			}
			require.Equal(t, clients, accepted)
			for _, r := range n.Server.Sockets() {
				if r.State == tcp.StateListen {
					continue
				}
				k := hash.KeyV4(saddr, r.Local.Port(), caddr, r.Peer.Port())
				require.Equal(t, n.PortS.Steering().Queue(k, shards), r.Shard, "%+v", r)
			}
			cnt := counters(n.Server)
			require.Equal(t, uint64(clients), cnt[stats.TcpPassiveOpens])
			require.Zero(t, cnt[stats.TcpExtListenOverflows])
			require.Zero(t, cnt[stats.TcpExtListenDrops])
			require.Zero(t, cnt[stats.TcpOutRsts])
			require.Zero(t, counters(n.Client)[stats.TcpAttemptFails])
		})
	}
}
