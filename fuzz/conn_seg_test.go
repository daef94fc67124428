package fuzz

import (
	"fmt"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
)

// tseg is one TCP segment of FuzzConnection's flow, as the peer builds it or as it reads
// one the stack sent.
type tseg struct {
	sport, dport uint16
	seq, ack     seqnum.Value
	flags        uint8
	wnd          uint16
	urg          uint16
	opts         header.TCPOptions // parsed, or what the peer encodes
	rawOpts      []byte            // when set, sent instead of opts (malformed on purpose)
	payload      []byte
}

func (s *tseg) has(f uint8) bool { return s.flags&f != 0 }
func (s *tseg) syn() bool        { return s.has(header.TCPFlagSYN) }
func (s *tseg) fin() bool        { return s.has(header.TCPFlagFIN) }
func (s *tseg) rst() bool        { return s.has(header.TCPFlagRST) }
func (s *tseg) ackf() bool       { return s.has(header.TCPFlagACK) }

// seqLen is SEG.LEN (RFC 9293 §3.4): the payload and one for each of SYN and FIN.
func (s *tseg) seqLen() uint32 {
	n := uint32(len(s.payload))
	if s.syn() {
		n++
	}
	if s.fin() {
		n++
	}
	return n
}

func (s *tseg) end() seqnum.Value { return s.seq.Add(s.seqLen()) }

// dataSeq is where the payload starts (after the SYN, if any).
func (s *tseg) dataSeq() seqnum.Value {
	if s.syn() {
		return s.seq.Add(1)
	}
	return s.seq
}

func (s *tseg) String() string {
	o := ""
	if s.opts.TS {
		o += fmt.Sprintf(" ts %d/%d", s.opts.TSVal, s.opts.TSEcr)
	}
	if s.opts.MSS != 0 {
		o += fmt.Sprintf(" mss %d", s.opts.MSS)
	}
	if s.opts.WScale >= 0 {
		o += fmt.Sprintf(" ws %d", s.opts.WScale)
	}
	if s.opts.SACKPermitted {
		o += " sackOK"
	}
	if s.opts.NumSACK > 0 {
		o += fmt.Sprintf(" sack %v", s.opts.SACK[:s.opts.NumSACK])
	}
	if s.rawOpts != nil {
		o += fmt.Sprintf(" rawopts %x", s.rawOpts)
	}
	return fmt.Sprintf("%d>%d [%s] seq %d ack %d win %d len %d%s", s.sport, s.dport,
		simnet.FlagString(s.flags), s.seq, s.ack, s.wnd, len(s.payload), o)
}

// encodeFrame builds the Ethernet, IPv4 and TCP frame for s with every checksum right.
func encodeFrame(s *tseg, dstMAC, srcMAC header.MAC, src, dst [4]byte, ipID uint16) []byte {
	var ob [header.MaxTCPOptionsLen]byte
	opts := s.rawOpts
	if opts == nil {
		opts = ob[:header.EncodeTCPOptions(ob[:], &s.opts)]
	}
	hl := header.TCPMinLen + (len(opts)+3)&^3
	n := header.EthernetLen + header.IPv4MinLen + hl + len(s.payload)
	b := make([]byte, n)
	header.EncodeEthernet(b, dstMAC, srcMAC, header.EtherTypeIPv4)
	ip := b[header.EthernetLen:]
	header.EncodeIPv4(ip, &header.IPv4Fields{
		TotalLen: uint16(len(ip)), ID: ipID, Flags: header.IPv4FlagDontFragment, TTL: 64,
		Protocol: header.ProtoTCP, Src: src, Dst: dst,
	})
	t := ip[header.IPv4MinLen:]
	header.EncodeTCP(t, &header.TCPFields{
		SrcPort: s.sport, DstPort: s.dport, Seq: uint32(s.seq), Ack: uint32(s.ack),
		Flags: s.flags, Window: s.wnd, Urgent: s.urg,
	}, opts)
	copy(t[hl:], s.payload)
	header.TCP(t).SetChecksumIPv4(src, dst)
	return b
}

// decodeFrame checks a frame the stack sent, layer by layer, as a receiver would: it must
// be an IPv4 TCP segment between the two addresses, for the peer's MAC, with valid IP and
// TCP checksums and well-formed options. It returns a description of what is wrong, if
// anything.
func decodeFrame(b []byte, dstMAC, srcMAC header.MAC, src, dst [4]byte) (*tseg, string) {
	eth, err := header.ParseEthernet(b)
	if err != nil {
		return nil, "ethernet: " + err.Error()
	}
	if eth.Dst() != dstMAC || eth.Src() != srcMAC {
		return nil, fmt.Sprintf("ethernet: %v -> %v, want %v -> %v", eth.Src(), eth.Dst(), srcMAC, dstMAC)
	}
	if eth.Type() != header.EtherTypeIPv4 {
		return nil, fmt.Sprintf("ethernet: type %#04x, want IPv4 (neighbours are static)", eth.Type())
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil {
		return nil, "ipv4: " + err.Error()
	}
	if len(ip) != len(eth.Payload()) {
		return nil, fmt.Sprintf("ipv4: total length %d in a %d-byte payload", len(ip), len(eth.Payload()))
	}
	if ip.Src() != src || ip.Dst() != dst || ip.Protocol() != header.ProtoTCP || ip.IsFragment() || ip.TTL() == 0 {
		return nil, fmt.Sprintf("ipv4: %v -> %v proto %d frag %v ttl %d", ip.Src(), ip.Dst(), ip.Protocol(), ip.IsFragment(), ip.TTL())
	}
	t, err := header.ParseTCP(ip.Payload())
	if err != nil {
		return nil, "tcp: " + err.Error()
	}
	if !t.ChecksumValidIPv4(ip.Src(), ip.Dst()) {
		return nil, "tcp: bad checksum"
	}
	s := &tseg{
		sport: t.SrcPort(), dport: t.DstPort(), seq: seqnum.Value(t.Seq()), ack: seqnum.Value(t.Ack()),
		flags: t.Flags(), wnd: t.Window(), urg: t.Urgent(), payload: t.Payload(),
	}
	if err := header.ParseTCPOptions(t.Options(), &s.opts); err != nil {
		return s, fmt.Sprintf("tcp options %x: %v", t.Options(), err)
	}
	if t.Reserved() != 0 {
		return s, "tcp: reserved bits set"
	}
	return s, ""
}
