package header

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/pcap"
)

// goldenFile holds frames the Linux kernel sent and received; testdata/capture.sh made it.
const goldenFile = "testdata/linux-tcp.pcap"

// loadGolden returns every frame of the golden capture.
func loadGolden(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open(goldenFile)
	require.NoError(tb, err)
	defer f.Close()
	r, err := pcap.NewReader(f)
	require.NoError(tb, err)
	require.Equal(tb, uint32(pcap.LinkTypeEthernet), r.LinkType())
	var frames [][]byte
	for {
		_, data, err := r.Next()
		if err == io.EOF {
			return frames
		}
		require.NoError(tb, err)
		frames = append(frames, bytes.Clone(data))
	}
}

// decoded is one golden frame taken apart by the parsers.
type decoded struct {
	eth  Ethernet
	arp  ARP
	ip   IPv4
	tcp  TCP
	opts TCPOptions
}

// decode parses every layer of frame it knows, failing the test on any parse error.
func decode(t *testing.T, frame []byte) decoded {
	t.Helper()
	var d decoded
	var err error
	d.eth, err = ParseEthernet(frame)
	require.NoError(t, err)
	switch d.eth.Type() {
	case EtherTypeARP:
		d.arp, err = ParseARP(d.eth.Payload())
		require.NoError(t, err)
	case EtherTypeIPv4:
		d.ip, err = ParseIPv4(d.eth.Payload())
		require.NoError(t, err)
		if d.ip.Protocol() == ProtoTCP {
			d.tcp, err = ParseTCP(d.ip.Payload())
			require.NoError(t, err)
			require.True(t, d.tcp.ChecksumValidIPv4(d.ip.Src(), d.ip.Dst()), "TCP checksum")
			require.NoError(t, ParseTCPOptions(d.tcp.Options(), &d.opts))
		}
	default:
		t.Fatalf("unexpected EtherType %#04x", d.eth.Type())
	}
	return d
}

// rebuild builds a fresh frame from d's parsed fields with the Encode functions.
func rebuild(t *testing.T, d decoded, frameLen int) []byte {
	t.Helper()
	out := make([]byte, frameLen)
	EncodeEthernet(out, d.eth.Dst(), d.eth.Src(), d.eth.Type())
	b := out[EthernetLen:]
	switch {
	case d.arp != nil:
		a := d.arp
		EncodeARP(b, a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
	case d.ip != nil:
		ip := d.ip
		require.Equal(t, IPv4MinLen, ip.HeaderLen(), "Linux sends no IP options here")
		EncodeIPv4(b, &IPv4Fields{
			TOS: ip.TOS(), TotalLen: uint16(ip.TotalLen()), ID: ip.ID(), Flags: ip.Flags(),
			FragOff: ip.FragmentOffset(), TTL: ip.TTL(), Protocol: ip.Protocol(),
			Src: ip.Src(), Dst: ip.Dst(),
		})
		seg := b[IPv4MinLen:ip.TotalLen()]
		if d.tcp == nil {
			copy(seg, ip.Payload())
			break
		}
		var opts [MaxTCPOptionsLen]byte
		n := EncodeTCPOptions(opts[:], &d.opts)
		require.Equal(t, d.opts.EncodedLen(), n)
		tc := d.tcp
		hl := EncodeTCP(seg, &TCPFields{
			SrcPort: tc.SrcPort(), DstPort: tc.DstPort(), Seq: tc.Seq(), Ack: tc.Ack(),
			Flags: tc.Flags(), Window: tc.Window(), Urgent: tc.Urgent(),
		}, opts[:n])
		copy(seg[hl:], tc.Payload())
		TCP(seg).SetChecksumIPv4(ip.Src(), ip.Dst())
	}
	return out
}

func TestGolden_RoundTripEveryFrame(t *testing.T) {
	frames := loadGolden(t)
	require.Len(t, frames, 46)
	var arps, tcps, others int
	for i, frame := range frames {
		d := decode(t, frame)
		switch {
		case d.arp != nil:
			arps++
		case d.tcp != nil:
			tcps++
		default:
			others++
		}
		require.Equal(t, frame, rebuild(t, d, len(frame)), "frame %d", i)
	}
	require.Equal(t, 2, arps)
	require.Equal(t, 42, tcps)
	require.Equal(t, 2, others) // ICMP echo request and reply
}

func TestGolden_ARP(t *testing.T) {
	frames := loadGolden(t)
	req, rep := decode(t, frames[0]), decode(t, frames[1])

	require.Equal(t, Broadcast, req.eth.Dst())
	require.Equal(t, "ff:ff:ff:ff:ff:ff", req.eth.Dst().String())
	require.Equal(t, ARPRequest, req.arp.Op())
	require.Equal(t, [4]byte{198, 18, 0, 1}, req.arp.SenderIP())
	require.Equal(t, [4]byte{198, 18, 0, 2}, req.arp.TargetIP())
	require.Equal(t, req.eth.Src(), req.arp.SenderMAC())
	require.Equal(t, MAC{}, req.arp.TargetMAC())

	require.Equal(t, ARPReply, rep.arp.Op())
	require.Equal(t, req.arp.SenderMAC(), rep.arp.TargetMAC())
	require.Equal(t, req.arp.SenderMAC(), rep.eth.Dst())
	require.Equal(t, rep.eth.Src(), rep.arp.SenderMAC())
	require.Equal(t, [4]byte{198, 18, 0, 2}, rep.arp.SenderIP())
	require.Equal(t, [4]byte{198, 18, 0, 1}, rep.arp.TargetIP())
}

// synsTo returns the SYNs (without ACK) sent to port in capture order.
func synsTo(t *testing.T, frames [][]byte, port uint16) []decoded {
	var out []decoded
	for _, f := range frames {
		d := decode(t, f)
		if d.tcp != nil && d.tcp.DstPort() == port && d.tcp.Flags() == TCPFlagSYN {
			out = append(out, d)
		}
	}
	return out
}

func TestGolden_SYNOptionLayouts(t *testing.T) {
	frames := loadGolden(t)
	syns := synsTo(t, frames, 8080)
	require.Len(t, syns, 4)

	// Linux defaults: MSS 1460 for a 1500-byte MTU, SACK-permitted, timestamps, and a window
	// shift derived from the receive buffer (10 with this kernel's tcp_rmem).
	def := syns[0]
	require.Equal(t, uint16(1460), def.opts.MSS)
	require.Equal(t, int8(10), def.opts.WScale)
	require.True(t, def.opts.SACKPermitted)
	require.True(t, def.opts.TS)
	require.NotZero(t, def.opts.TSVal)
	require.Zero(t, def.opts.TSEcr)
	require.Zero(t, def.opts.NumSACK)
	require.Equal(t, []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10}, def.tcp.Options()[:8])
	require.Equal(t, []byte{1, 3, 3, 10}, def.tcp.Options()[16:])
	require.Equal(t, 40, def.tcp.DataOffset())
	require.Equal(t, uint16(64240), def.tcp.Window())
	require.Empty(t, def.tcp.Payload())
	require.Equal(t, [4]byte{198, 18, 0, 1}, def.ip.Src())
	require.Equal(t, uint8(64), def.ip.TTL())
	require.True(t, def.ip.DontFragment())
	require.False(t, def.ip.IsFragment())
	require.Equal(t, 60, def.ip.TotalLen())

	noTS := syns[1]
	require.False(t, noTS.opts.TS)
	require.True(t, noTS.opts.SACKPermitted)
	require.Equal(t, []byte{2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 10}, []byte(noTS.tcp.Options()))

	noSACK := syns[2]
	require.True(t, noSACK.opts.TS)
	require.False(t, noSACK.opts.SACKPermitted)
	require.Equal(t, []byte{2, 4, 0x05, 0xb4, 1, 1, 8, 10}, noSACK.tcp.Options()[:8])

	mssOnly := syns[3]
	require.Equal(t, TCPOptions{MSS: 1460, WScale: -1}, mssOnly.opts)
	require.Equal(t, []byte{2, 4, 0x05, 0xb4}, []byte(mssOnly.tcp.Options()))
}

func TestGolden_HandshakeDataAndClose(t *testing.T) {
	frames := loadGolden(t)
	// Frames 4..14: the default-options connection, from SYN to the last ACK.
	syn, synack, ack, req := decode(t, frames[4]), decode(t, frames[5]), decode(t, frames[6]), decode(t, frames[7])
	require.Equal(t, TCPFlagSYN|TCPFlagACK, synack.tcp.Flags())
	require.Equal(t, syn.tcp.Seq()+1, synack.tcp.Ack())
	require.Equal(t, syn.opts.TSVal, synack.opts.TSEcr)
	require.True(t, synack.opts.SACKPermitted)
	require.Equal(t, uint16(1460), synack.opts.MSS)

	require.Equal(t, TCPFlagACK, ack.tcp.Flags())
	require.Equal(t, synack.tcp.Seq()+1, ack.tcp.Ack())
	require.Equal(t, TCPOptions{WScale: -1, TS: true, TSVal: ack.opts.TSVal, TSEcr: synack.opts.TSVal}, ack.opts)
	require.Equal(t, []byte{1, 1, 8, 10}, ack.tcp.Options()[:4])

	require.Equal(t, TCPFlagPSH|TCPFlagACK, req.tcp.Flags())
	require.Equal(t, []byte("ping\n"), req.tcp.Payload())
	resp := decode(t, frames[9])
	require.Equal(t, []byte("pong ping\n"), resp.tcp.Payload())

	fin := decode(t, frames[11])
	require.Equal(t, TCPFlagFIN|TCPFlagACK, fin.tcp.Flags())
	require.Equal(t, syn.tcp.Seq()+1+5, fin.tcp.Seq())
}

func TestGolden_RSTFromClosedPort(t *testing.T) {
	frames := loadGolden(t)
	syns := synsTo(t, frames, 9)
	require.Len(t, syns, 1)
	var rst decoded
	for _, f := range frames {
		if d := decode(t, f); d.tcp != nil && d.tcp.Flags()&TCPFlagRST != 0 {
			rst = d
		}
	}
	require.NotNil(t, rst.tcp)
	// RFC 9293 §3.10.7.1: a SYN to a closed port gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
	require.Equal(t, TCPFlagRST|TCPFlagACK, rst.tcp.Flags())
	require.Zero(t, rst.tcp.Seq())
	require.Equal(t, syns[0].tcp.Seq()+1, rst.tcp.Ack())
	require.Zero(t, rst.tcp.Window())
	require.Equal(t, TCPMinLen, rst.tcp.DataOffset())
	require.Equal(t, uint16(9), rst.tcp.SrcPort())
	require.Equal(t, syns[0].tcp.SrcPort(), rst.tcp.DstPort())
	require.Equal(t, TCPOptions{WScale: -1}, rst.opts)
}
