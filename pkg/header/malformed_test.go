package header

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// validIPv4 returns a checksummed 20-byte header with totalLen and the bytes to back it.
func validIPv4(totalLen int) []byte {
	b := make([]byte, totalLen)
	EncodeIPv4(b, &IPv4Fields{TotalLen: uint16(totalLen), TTL: 64, Protocol: ProtoTCP,
		Src: [4]byte{198, 18, 0, 1}, Dst: [4]byte{198, 18, 0, 2}})
	return b
}

// mutate returns a copy of b changed by f.
func mutate(b []byte, f func(b []byte)) []byte {
	c := append([]byte(nil), b...)
	f(c)
	return c
}

func TestParseEthernet_Malformed(t *testing.T) {
	for _, n := range []int{0, 1, EthernetLen - 1} {
		_, err := ParseEthernet(make([]byte, n))
		require.ErrorIs(t, err, ErrTruncated, "len %d", n)
	}
	e, err := ParseEthernet(make([]byte, EthernetLen))
	require.NoError(t, err)
	require.Empty(t, e.Payload())
}

func TestParseARP_Malformed(t *testing.T) {
	good := make([]byte, ARPLen)
	EncodeARP(good, ARPRequest, MAC{2, 0, 0, 0, 0, 1}, [4]byte{198, 18, 0, 1}, MAC{}, [4]byte{198, 18, 0, 2})
	_, err := ParseARP(good)
	require.NoError(t, err)

	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:ARPLen-1], ErrTruncated},
		{"hardware type 6 (IEEE 802)", mutate(good, func(b []byte) { b[1] = 6 }), ErrARPFormat},
		{"protocol IPv6", mutate(good, func(b []byte) { b[2], b[3] = 0x86, 0xdd }), ErrARPFormat},
		{"hardware length 8", mutate(good, func(b []byte) { b[4] = 8 }), ErrARPFormat},
		{"protocol length 16", mutate(good, func(b []byte) { b[5] = 16 }), ErrARPFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := ParseARP(c.b)
			require.ErrorIs(t, err, c.want)
			require.Nil(t, a)
		})
	}
}

func TestParseIPv4_Malformed(t *testing.T) {
	good := validIPv4(40)
	_, err := ParseIPv4(good)
	require.NoError(t, err)
	// withIHL sets the IHL and fixes the checksum so that only the IHL is wrong.
	withIHL := func(ihl byte, n int) []byte {
		b := make([]byte, n)
		copy(b, good)
		b[0] = 0x40 | ihl
		if int(ihl)*4 <= n && ihl >= 5 {
			IPv4(b).SetChecksum()
		}
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:IPv4MinLen-1], ErrTruncated},
		{"version 6", mutate(good, func(b []byte) { b[0] = 0x65 }), ErrVersion},
		{"version 0", mutate(good, func(b []byte) { b[0] = 0x05 }), ErrVersion},
		{"IHL 0", withIHL(0, 40), ErrHeaderLength},
		{"IHL 4", withIHL(4, 40), ErrHeaderLength},
		{"IHL 15 past the bytes", withIHL(15, 40), ErrTruncated},
		{"IHL 6 past the total length", mutate(withIHL(6, 40), func(b []byte) {
			b[2], b[3] = 0, 22
			IPv4(b).SetChecksum()
		}), ErrTotalLength},
		{"total length below 20", mutate(good, func(b []byte) {
			b[2], b[3] = 0, 19
			IPv4(b).SetChecksum()
		}), ErrTotalLength},
		{"total length past the bytes", mutate(good, func(b []byte) {
			b[2], b[3] = 0, 41
			IPv4(b).SetChecksum()
		}), ErrTotalLength},
		{"bad checksum", mutate(good, func(b []byte) { b[10] ^= 1 }), ErrChecksum},
		{"changed TTL, stale checksum", mutate(good, func(b []byte) { b[8]-- }), ErrChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ip, err := ParseIPv4(c.b)
			require.ErrorIs(t, err, c.want)
			require.Nil(t, ip)
		})
	}
}

func TestParseIPv4_OptionsAndPadding(t *testing.T) {
	// IHL 6 (4 option bytes), total length 30, then 4 bytes of link padding.
	b := make([]byte, 34)
	copy(b, validIPv4(20))
	b[0] = 0x46
	b[2], b[3] = 0, 30
	copy(b[20:24], []byte{1, 1, 1, 0}) // NOP, NOP, NOP, EOL
	copy(b[24:30], "abcdef")
	IPv4(b).SetChecksum()
	ip, err := ParseIPv4(b)
	require.NoError(t, err)
	require.Equal(t, 24, ip.HeaderLen())
	require.Len(t, ip, 30)
	require.Equal(t, []byte{1, 1, 1, 0}, ip.Options())
	require.Equal(t, []byte("abcdef"), ip.Payload())
}

func TestParseIPv6_Malformed(t *testing.T) {
	good := make([]byte, IPv6Len+8)
	EncodeIPv6(good, 8, ProtoTCP, 64, [16]byte{0xfd, 1}, [16]byte{0xfd, 2})
	_, err := ParseIPv6(good)
	require.NoError(t, err)
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:IPv6Len-1], ErrTruncated},
		{"version 4", mutate(good, func(b []byte) { b[0] = 0x45 }), ErrVersion},
		{"payload length past the bytes", good[:IPv6Len+7], ErrTotalLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ip, err := ParseIPv6(c.b)
			require.ErrorIs(t, err, c.want)
			require.Nil(t, ip)
		})
	}
}

func TestParseTCP_Malformed(t *testing.T) {
	good := make([]byte, 24)
	EncodeTCP(good, &TCPFields{SrcPort: 1, DstPort: 2}, []byte{1, 1, 1, 1})
	_, err := ParseTCP(good)
	require.NoError(t, err)
	withOffset := func(words byte, n int) []byte {
		b := make([]byte, n)
		copy(b, good)
		b[12] = words << 4
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:TCPMinLen-1], ErrTruncated},
		{"data offset 0", withOffset(0, 24), ErrDataOffset},
		{"data offset 4", withOffset(4, 24), ErrDataOffset},
		{"data offset 6 with 20 bytes", withOffset(6, 20), ErrDataOffset},
		{"data offset 15 with 59 bytes", withOffset(15, 59), ErrDataOffset},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc, err := ParseTCP(c.b)
			require.ErrorIs(t, err, c.want)
			require.Nil(t, tc)
		})
	}
	tc, err := ParseTCP(withOffset(15, 60))
	require.NoError(t, err)
	require.Len(t, tc.Options(), MaxTCPOptionsLen)
	require.Empty(t, tc.Payload())
}

func TestParseTCPOptions_BadLengths(t *testing.T) {
	sack := func(n int) []byte { // a SACK option whose length byte says n, with n bytes present
		b := make([]byte, max(n, 2))
		b[0], b[1] = 5, byte(n)
		return b
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"kind without a length byte", []byte{2}},
		{"unknown kind without a length byte", []byte{1, 1, 99}},
		{"length 0", []byte{2, 0, 0, 0}},
		{"length 1", []byte{8, 1, 0, 0}},
		{"unknown kind length 1", []byte{99, 1, 0, 0}},
		{"unknown kind length 0", []byte{99, 0}},
		{"length past the end", []byte{2, 4, 5}},
		{"unknown kind past the end", []byte{99, 5, 0, 0}},
		{"MSS length 3", []byte{2, 3, 5, 1}},
		{"MSS length 5", []byte{2, 5, 5, 0xb4, 0}},
		{"window scale length 2", []byte{3, 2, 1, 1}},
		{"window scale length 4", []byte{3, 4, 7, 0}},
		{"SACK-permitted length 3", []byte{4, 3, 0, 1}},
		{"SACK-permitted length 4", []byte{4, 4, 0, 0}},
		{"timestamps length 8", append([]byte{8, 8}, make([]byte, 6)...)},
		{"timestamps length 12", append([]byte{8, 12}, make([]byte, 10)...)},
		{"SACK length 2 (no block)", sack(2)},
		{"SACK length 9", sack(9)},
		{"SACK length 11", sack(11)},
		{"SACK length 17", sack(17)},
		{"SACK length 42 (five blocks)", sack(42)},
		{"good option then a bad one", []byte{2, 4, 5, 0xb4, 3, 4, 7, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var o TCPOptions
			o.NumSACK = 3 // must be reset
			require.ErrorIs(t, ParseTCPOptions(c.b, &o), ErrBadOption)
			require.Zero(t, o.NumSACK)
		})
	}
	var o TCPOptions
	require.ErrorIs(t, ParseTCPOptions([]byte{2, 4, 5, 0xb4, 3, 4, 7, 0}, &o), ErrBadOption)
	require.Equal(t, uint16(1460), o.MSS, "options before the bad one are kept")
}
