package tcp

import (
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
)

// segment is an incoming segment, parsed once into the shard's scratch copy.
type segment struct {
	hdr     header.TCP
	key     hash.Key // local = us; the addresses of both families live here
	hash    uint64
	seq     seqnum.Value
	ack     seqnum.Value
	flags   uint8
	wnd     uint16
	payload []byte
	opts    header.TCPOptions
	// isnHint is the ISN TIME-WAIT chose for a new incarnation of its flow.
	isnHint    uint32
	hasISNHint bool
}

func (sg *segment) reset(t header.TCP, key *hash.Key, h uint64) {
	sg.hdr = t
	sg.key = *key
	sg.hash = h
	sg.seq = seqnum.Value(t.Seq())
	sg.ack = seqnum.Value(t.Ack())
	sg.flags = t.Flags()
	sg.wnd = t.Window()
	sg.payload = t.Payload()
	sg.hasISNHint = false
}

func (sg *segment) syn() bool  { return sg.flags&header.TCPFlagSYN != 0 }
func (sg *segment) fin() bool  { return sg.flags&header.TCPFlagFIN != 0 }
func (sg *segment) rst() bool  { return sg.flags&header.TCPFlagRST != 0 }
func (sg *segment) ackf() bool { return sg.flags&header.TCPFlagACK != 0 }

// seqLen is SEG.LEN: payload plus one for each of SYN and FIN (RFC 9293 §3.4).
func (sg *segment) seqLen() uint32 {
	n := uint32(len(sg.payload))
	if sg.syn() {
		n++
	}
	if sg.fin() {
		n++
	}
	return n
}

// end is the sequence number just after the segment.
func (sg *segment) end() seqnum.Value { return sg.seq.Add(sg.seqLen()) }

// peerMSS applies the RFC default when the option is absent (RFC 9293 §3.7.1) and never
// lets a peer push us below Linux's floor of 88 bytes (TCP_MIN_SND_MSS, 48 of payload + 40).
func peerMSS(o *header.TCPOptions) uint16 {
	m := o.MSS
	if m == 0 {
		m = defaultMSS
	}
	return max(m, 88)
}

// peerWScale returns the peer's window scale clamped as RFC 7323 §2.3 requires, or -1.
func peerWScale(o *header.TCPOptions) int8 {
	if o.WScale < 0 {
		return -1
	}
	return min(o.WScale, maxWScale)
}
