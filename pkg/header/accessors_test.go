package header

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMAC_String(t *testing.T) {
	require.Equal(t, "02:00:5e:10:0a:ff", MAC{0x02, 0x00, 0x5e, 0x10, 0x0a, 0xff}.String())
	require.Equal(t, "00:00:00:00:00:00", MAC{}.String())
	require.True(t, Broadcast.IsBroadcast())
	require.True(t, Broadcast.IsMulticast())
	require.True(t, MAC{0x01, 0x00, 0x5e, 0, 0, 1}.IsMulticast())
	require.False(t, MAC{0x02, 0, 0, 0, 0, 1}.IsMulticast())
}

func TestEthernet_SettersAndEncode(t *testing.T) {
	b := make([]byte, EthernetLen+2)
	EncodeEthernet(b, Broadcast, MAC{2, 0, 0, 0, 0, 1}, EtherTypeARP)
	require.Equal(t, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 0}, b)
	e, err := ParseEthernet(b)
	require.NoError(t, err)
	e.SetDst(MAC{2, 0, 0, 0, 0, 2})
	e.SetSrc(MAC{2, 0, 0, 0, 0, 3})
	e.SetType(EtherTypeIPv6)
	require.Equal(t, MAC{2, 0, 0, 0, 0, 2}, e.Dst())
	require.Equal(t, MAC{2, 0, 0, 0, 0, 3}, e.Src())
	require.Equal(t, EtherTypeIPv6, e.Type())
	require.Len(t, e.Payload(), 2)
}

func TestIPv4_FragmentFields(t *testing.T) {
	b := make([]byte, 28)
	EncodeIPv4(b, &IPv4Fields{TOS: 0xb8, TotalLen: 28, ID: 0xbeef, Flags: IPv4FlagMoreFragments,
		FragOff: 1480, TTL: 1, Protocol: ProtoUDP, Src: [4]byte{198, 18, 0, 1}, Dst: [4]byte{198, 19, 255, 254}})
	// 1480 bytes is 185 units of 8: flags+offset word 0x2000|185 = 0x20b9.
	require.Equal(t, []byte{0x20, 0xb9}, b[6:8])
	ip, err := ParseIPv4(b)
	require.NoError(t, err)
	require.Equal(t, uint8(0xb8), ip.TOS())
	require.Equal(t, uint16(0xbeef), ip.ID())
	require.Equal(t, IPv4FlagMoreFragments, ip.Flags())
	require.True(t, ip.MoreFragments())
	require.False(t, ip.DontFragment())
	require.Equal(t, uint16(1480), ip.FragmentOffset())
	require.True(t, ip.IsFragment())
	require.Equal(t, uint8(1), ip.TTL())
	require.Equal(t, ProtoUDP, ip.Protocol())
	require.Equal(t, [4]byte{198, 19, 255, 254}, ip.Dst())
	require.Len(t, ip.Payload(), 8)
	require.Empty(t, ip.Options())

	// The last fragment: offset only.
	EncodeIPv4(b, &IPv4Fields{TotalLen: 28, FragOff: 65528, Protocol: ProtoUDP})
	ip, err = ParseIPv4(b)
	require.NoError(t, err)
	require.Equal(t, uint16(65528), ip.FragmentOffset())
	require.False(t, ip.MoreFragments())
	require.True(t, ip.IsFragment())

	EncodeIPv4(b, &IPv4Fields{TotalLen: 28, Flags: IPv4FlagDontFragment})
	ip, err = ParseIPv4(b)
	require.NoError(t, err)
	require.True(t, ip.DontFragment())
	require.False(t, ip.IsFragment())

	// SetChecksum after an in-place change keeps the header valid.
	b[8] = 63
	_, err = ParseIPv4(b)
	require.ErrorIs(t, err, ErrChecksum)
	IPv4(b).SetChecksum()
	_, err = ParseIPv4(b)
	require.NoError(t, err)
}

func TestIPv6_EncodeParse(t *testing.T) {
	src := [16]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	dst := [16]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
	b := make([]byte, IPv6Len+4+3)
	EncodeIPv6(b, 4, ProtoTCP, 255, src, dst)
	require.Equal(t, []byte{0x60, 0, 0, 0, 0, 4, 6, 255}, b[:8])
	b[1] = 0xa0 | 0x0c // traffic class 0x0a, flow label 0xc0000 high nibble
	ip, err := ParseIPv6(b)
	require.NoError(t, err)
	require.Len(t, ip, IPv6Len+4, "padding after the payload is not part of the view")
	require.Equal(t, uint8(0x0a), ip.TrafficClass())
	require.Equal(t, uint32(0xc0000), ip.FlowLabel())
	require.Equal(t, 4, ip.PayloadLen())
	require.Equal(t, ProtoTCP, ip.NextHeader())
	require.Equal(t, uint8(255), ip.HopLimit())
	require.Equal(t, src, ip.Src())
	require.Equal(t, dst, ip.Dst())
	require.Len(t, ip.Payload(), 4)
}

func TestTCP_SettersAndChecksums(t *testing.T) {
	src, dst := [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}
	b := make([]byte, 24+3)
	hl := EncodeTCP(b, &TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagSYN, Window: 5, Urgent: 6},
		[]byte{2, 4, 5, 0xb4})
	require.Equal(t, 24, hl)
	copy(b[hl:], "abc")
	tc, err := ParseTCP(b)
	require.NoError(t, err)
	tc.SetSrcPort(1000)
	tc.SetDstPort(2000)
	tc.SetSeq(0xfffffff0)
	tc.SetAck(0x80000000)
	tc.SetFlags(TCPFlagSYN | TCPFlagACK | TCPFlagECE | TCPFlagCWR)
	tc.SetWindow(65535)
	tc.SetUrgent(7)
	require.Equal(t, uint16(1000), tc.SrcPort())
	require.Equal(t, uint16(2000), tc.DstPort())
	require.Equal(t, uint32(0xfffffff0), tc.Seq())
	require.Equal(t, uint32(0x80000000), tc.Ack())
	require.Equal(t, uint8(0xd2), tc.Flags())
	require.Equal(t, uint16(65535), tc.Window())
	require.Equal(t, uint16(7), tc.Urgent())
	require.Zero(t, tc.Reserved())
	require.Equal(t, []byte("abc"), tc.Payload())

	require.False(t, tc.ChecksumValidIPv4(src, dst))
	tc.SetChecksumIPv4(src, dst)
	require.NotZero(t, tc.Checksum())
	require.True(t, tc.ChecksumValidIPv4(src, dst))
	require.False(t, tc.ChecksumValidIPv4(dst, [4]byte{198, 18, 0, 3}), "the pseudo-header is covered")
	tc.Payload()[0] ^= 0x20
	require.False(t, tc.ChecksumValidIPv4(src, dst), "the payload is covered")

	var s6, d6 [16]byte
	s6[0], d6[0] = 0xfd, 0xfe
	tc.SetChecksumIPv6(s6, d6)
	require.True(t, tc.ChecksumValidIPv6(s6, d6))
	other := d6
	other[15] = 1
	require.False(t, tc.ChecksumValidIPv6(s6, other), "the pseudo-header is covered")
}

func TestEncodeTCP_PadsOptionsAndRejectsTooMany(t *testing.T) {
	b := make([]byte, 60)
	for i := range b {
		b[i] = 0xee
	}
	hl := EncodeTCP(b, &TCPFields{}, []byte{3, 3, 7}) // window scale alone: 3 bytes, padded with EOL
	require.Equal(t, 24, hl)
	require.Equal(t, []byte{3, 3, 7, 0}, b[20:24])
	require.Equal(t, byte(0x60), b[12])
	tc, err := ParseTCP(b[:hl])
	require.NoError(t, err)
	var o TCPOptions
	require.NoError(t, ParseTCPOptions(tc.Options(), &o))
	require.Equal(t, int8(7), o.WScale)

	require.Panics(t, func() { EncodeTCP(make([]byte, 80), &TCPFields{}, make([]byte, 41)) })
}

func TestBuilders_ShortBufferPanicsWithoutTouchingSpareCapacity(t *testing.T) {
	backing := make([]byte, 128)
	short := func(n int) []byte { return backing[:n] }
	opts := TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true}
	require.Panics(t, func() { EncodeEthernet(short(EthernetLen-1), Broadcast, Broadcast, EtherTypeARP) })
	require.Panics(t, func() { EncodeARP(short(ARPLen-1), ARPReply, Broadcast, [4]byte{}, Broadcast, [4]byte{}) })
	require.Panics(t, func() { EncodeIPv4(short(IPv4MinLen-1), &IPv4Fields{TTL: 1}) })
	require.Panics(t, func() { EncodeIPv6(short(IPv6Len-1), 0, 6, 1, [16]byte{1}, [16]byte{1}) })
	require.Panics(t, func() { EncodeTCP(short(23), &TCPFields{SrcPort: 1}, []byte{1, 1, 1, 1}) })
	require.Panics(t, func() { EncodeTCPOptions(short(19), &opts) })
	require.Equal(t, make([]byte, 128), backing, "no builder wrote before panicking")
}
