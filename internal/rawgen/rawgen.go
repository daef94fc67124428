// Package rawgen is a stateless client that drives a server stack with raw frames: it
// injects bursts of SYNs into the server's port, answers each SYN-ACK with the final ACK and
// each FIN with a reset, all computed from the segment it answers, so it keeps no
// per-connection state and runs no goroutine per connection. It measures what the server
// side alone can do.
package rawgen

import (
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
)

// Gen drives one queue of the client end of an in-memory pair.
type Gen struct {
	port     *dpdkshim.MemPort
	q        int
	src, dst [4]byte
	v6       bool
	src6     [16]byte
	dst6     [16]byte
	dport    uint16
	smac     header.MAC
	dmac     header.MAC
	next     uint32 // next source port counter
	accept   func(k *hash.Key) bool
	rx       []*dpdkshim.Packet
	tx       []*dpdkshim.Packet
	synOpts  header.TCPOptions
	frees    dpdkshim.FreeBatch
	synAck   SynAckAnswer
	key      hash.Key // scratch for the filter (a local would escape through the closure)
	// Counters.
	SYNs, ACKs, RSTs, SynAcks, FINs, Other uint64
}

// SynAckAnswer is what the generator does with a SYN-ACK.
type SynAckAnswer uint8

// The answers.
const (
	AnswerACK  SynAckAnswer = iota // complete the handshake
	AnswerRST                      // reset the request (it leaves the SYN queue)
	AnswerNone                     // stay silent (cookies: no state anywhere)
)

// Config describes a generator.
type Config struct {
	Port     *dpdkshim.MemPort // the client end: the generator transmits and receives on it
	Queue    int
	Src, Dst [4]byte
	// V6 makes the generator speak IPv6 from Src6 to Dst6 instead.
	V6         bool
	Src6, Dst6 [16]byte
	DstPort    uint16
	// Accept, if set, limits the 4-tuples the generator uses (key seen from the server:
	// local = Dst). A benchmark uses it to aim every flow at one shard.
	Accept func(k *hash.Key) bool
	Burst  int
	// SynAck says how to answer SYN-ACKs (default: complete the handshake).
	SynAck SynAckAnswer
}

// New returns a generator.
func New(cfg Config) *Gen {
	if cfg.Burst <= 0 {
		cfg.Burst = 32
	}
	g := &Gen{
		port:   cfg.Port,
		q:      cfg.Queue,
		src:    cfg.Src,
		dst:    cfg.Dst,
		v6:     cfg.V6,
		src6:   cfg.Src6,
		dst6:   cfg.Dst6,
		dport:  cfg.DstPort,
		smac:   cfg.Port.MAC(),
		dmac:   cfg.Port.Peer().MAC(),
		accept: cfg.Accept,
		rx:     make([]*dpdkshim.Packet, cfg.Burst*4),
		tx:     make([]*dpdkshim.Packet, 0, cfg.Burst*4),
		next:   uint32(cfg.Queue) * 7919,
		synAck: cfg.SynAck,
	}
	// A SYN with Linux's options: MSS 1460, SACK-permitted, timestamps, window scale 7.
	g.synOpts = header.TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSVal: 1, TSEcr: 0}
	return g
}

// sourcePort returns the next source port whose flow the filter accepts.
func (g *Gen) sourcePort() uint16 {
	for {
		g.next++
		p := uint16(1024 + g.next%64000)
		if g.accept == nil {
			return p
		}
		if g.v6 {
			g.key = hash.KeyV6(g.dst6, g.dport, g.src6, p)
		} else {
			g.key = hash.KeyV4(g.dst, g.dport, g.src, p)
		}
		if g.accept(&g.key) {
			return p
		}
	}
}

func (g *Gen) frame(payloadLen int) (*dpdkshim.Packet, []byte) {
	p := g.port.Pool(g.q).Get()
	if p == nil {
		return nil, nil
	}
	if g.v6 {
		b := p.Append(header.EthernetLen + header.IPv6Len + payloadLen)
		header.EncodeEthernet(b, g.dmac, g.smac, header.EtherTypeIPv6)
		header.EncodeIPv6(b[header.EthernetLen:], uint16(payloadLen), header.ProtoTCP, 64, g.src6, g.dst6)
		return p, b[header.EthernetLen+header.IPv6Len:]
	}
	b := p.Append(header.EthernetLen + header.IPv4MinLen + payloadLen)
	header.EncodeEthernet(b, g.dmac, g.smac, header.EtherTypeIPv4)
	f := header.IPv4Fields{
		TotalLen: uint16(header.IPv4MinLen + payloadLen),
		Flags:    header.IPv4FlagDontFragment,
		TTL:      64,
		Protocol: header.ProtoTCP,
		Src:      g.src,
		Dst:      g.dst,
	}
	header.EncodeIPv4(b[header.EthernetLen:], &f)
	return p, b[header.EthernetLen+header.IPv4MinLen:]
}

func (g *Gen) segment(sport uint16, seq, ack uint32, flags uint8, withOpts bool) {
	var o *header.TCPOptions
	n := header.TCPMinLen
	if withOpts {
		o = &g.synOpts
		n += o.EncodedLen()
	}
	p, t := g.frame(n)
	if p == nil {
		return
	}
	hl, sum := header.PutTCPHeader(t, sport, g.dport, seq, ack, flags, 64240, o)
	if g.v6 {
		header.FinishTCPChecksumIPv6(header.TCP(t), hl, sum, g.src6, g.dst6)
	} else {
		header.FinishTCPChecksumIPv4(header.TCP(t), hl, sum, g.src, g.dst)
	}
	g.tx = append(g.tx, p)
}

// SendSYNs queues n SYNs on fresh 4-tuples and transmits them.
func (g *Gen) SendSYNs(n int) {
	for i := 0; i < n; i++ {
		sport := g.sourcePort()
		g.segment(sport, uint32(sport)*2654435761, 0, header.TCPFlagSYN, true)
		g.SYNs++
	}
	g.flush()
}

func (g *Gen) flush() {
	for len(g.tx) > 0 {
		k := g.port.TxBurst(g.q, g.tx)
		rest := copy(g.tx, g.tx[k:])
		clear(g.tx[rest:])
		g.tx = g.tx[:rest]
		if k == 0 {
			// The ring is full: drop what is left (TCP will retransmit).
			for _, p := range g.tx {
				p.Free()
			}
			g.tx = g.tx[:0]
		}
	}
}

// Respond reads what the server sent on the generator's queue and answers it: SYN-ACK ->
// final ACK, FIN -> reset. It returns how many frames it read.
func (g *Gen) Respond() int {
	total := 0
	for {
		n := g.port.RxBurst(g.q, g.rx)
		if n == 0 {
			break
		}
		total += n
		for i := 0; i < n; i++ {
			p := g.rx[i]
			g.rx[i] = nil
			g.answer(p.Data())
			g.frees.Free(p)
		}
	}
	g.frees.Flush()
	g.flush()
	return total
}

func (g *Gen) answer(frame []byte) {
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		g.Other++
		return
	}
	var seg []byte
	switch eth.Type() {
	case header.EtherTypeIPv4:
		ip, err := header.ParseIPv4(eth.Payload())
		if err != nil || ip.Protocol() != header.ProtoTCP {
			g.Other++
			return
		}
		seg = ip.Payload()
	case header.EtherTypeIPv6:
		ip, err := header.ParseIPv6(eth.Payload())
		if err != nil || ip.NextHeader() != header.ProtoTCP {
			g.Other++
			return
		}
		seg = ip.Payload()
	default:
		g.Other++
		return
	}
	t, err := header.ParseTCP(seg)
	if err != nil {
		g.Other++
		return
	}
	sport := t.DstPort()
	switch fl := t.Flags(); {
	case fl&header.TCPFlagSYN != 0 && fl&header.TCPFlagACK != 0:
		g.SynAcks++
		switch g.synAck {
		case AnswerACK:
			g.segment(sport, t.Ack(), t.Seq()+1, header.TCPFlagACK, false)
			g.ACKs++
		case AnswerRST:
			g.segment(sport, t.Ack(), 0, header.TCPFlagRST, false)
			g.RSTs++
		}
	case fl&header.TCPFlagFIN != 0:
		g.FINs++
		g.segment(sport, t.Ack(), 0, header.TCPFlagRST, false)
		g.RSTs++
	default:
		g.Other++
	}
}
