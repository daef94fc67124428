package header

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// unhex decodes hex written with spaces for readability.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func TestEncodeTCPOptions_LinuxLayouts(t *testing.T) {
	blocks := [MaxSACKBlocks]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	cases := []struct {
		name string
		o    TCPOptions
		hex  string
	}{
		{"nothing", TCPOptions{WScale: -1}, ""},
		{"SYN, all four",
			TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSVal: 0x01020304},
			"020405b4 0402080a 01020304 00000000 01030307"},
		{"SYN without timestamps",
			TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true},
			"020405b4 01010402 01030307"},
		{"SYN without SACK",
			TCPOptions{MSS: 1460, WScale: 0, TS: true, TSVal: 5, TSEcr: 6},
			"020405b4 0101080a 00000005 00000006 01030300"},
		{"SYN with MSS only", TCPOptions{MSS: 536, WScale: -1}, "02040218"},
		{"SACK-permitted alone", TCPOptions{WScale: -1, SACKPermitted: true}, "01010402"},
		{"ACK with timestamps",
			TCPOptions{WScale: -1, TS: true, TSVal: 0xfffffffe, TSEcr: 1},
			"0101080a fffffffe 00000001"},
		{"timestamps and two SACK blocks",
			TCPOptions{WScale: -1, TS: true, TSVal: 9, TSEcr: 10, NumSACK: 2, SACK: blocks},
			"0101080a 00000009 0000000a 01010512 00000001 00000002 00000003 00000004"},
		{"timestamps and four SACK blocks: three fit",
			TCPOptions{WScale: -1, TS: true, TSVal: 9, TSEcr: 10, NumSACK: 4, SACK: blocks},
			"0101080a 00000009 0000000a 0101051a 00000001 00000002 00000003 00000004 00000005 00000006"},
		{"four SACK blocks alone",
			TCPOptions{WScale: -1, NumSACK: 4, SACK: blocks},
			"01010522 00000001 00000002 00000003 00000004 00000005 00000006 00000007 00000008"},
		{"NumSACK out of range is clamped",
			TCPOptions{WScale: -1, NumSACK: 9, SACK: blocks},
			"01010522 00000001 00000002 00000003 00000004 00000005 00000006 00000007 00000008"},
		{"negative NumSACK writes none", TCPOptions{WScale: -1, NumSACK: -1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := unhex(t, c.hex)
			var b [MaxTCPOptionsLen]byte
			n := EncodeTCPOptions(b[:], &c.o)
			require.Equal(t, len(want), n)
			require.Equal(t, n, c.o.EncodedLen())
			require.Zero(t, n%4)
			require.Equal(t, want, b[:n])

			// Parsing what we wrote gives back what we meant (SACK trimmed to what was sent).
			var back TCPOptions
			require.NoError(t, ParseTCPOptions(b[:n], &back))
			wantBack := c.o
			wantBack.NumSACK = min(max(c.o.NumSACK, 0), (n-c.o.lenBeforeSACK()-4)/8)
			if wantBack.NumSACK < 0 {
				wantBack.NumSACK = 0
			}
			wantBack.SACK = [MaxSACKBlocks]SACKBlock{}
			copy(wantBack.SACK[:], c.o.SACK[:wantBack.NumSACK])
			require.Equal(t, wantBack, back)
		})
	}
}

func TestEncodeTCPOptions_ShortBufferPanicsOnlyWhenTooShort(t *testing.T) {
	o := TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true}
	b := make([]byte, 20)
	require.Equal(t, 20, EncodeTCPOptions(b, &o))
	require.Panics(t, func() { EncodeTCPOptions(b[:19], &o) })
}

func TestParseTCPOptions_Accepted(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		want TCPOptions
	}{
		{"empty", "", TCPOptions{WScale: -1}},
		{"NOPs only", "01010101", TCPOptions{WScale: -1}},
		{"EOL ends the list, garbage after it ignored", "020405b4 00 ff 00 01", TCPOptions{MSS: 1460, WScale: -1}},
		{"unknown kinds skipped by length", "1e0400ff 020405b4 fe020101", TCPOptions{MSS: 1460, WScale: -1}},
		{"options in any order, unaligned", "0303 0e 080a00000001 00000002 0402 020405dc",
			TCPOptions{MSS: 1500, WScale: 14, SACKPermitted: true, TS: true, TSVal: 1, TSEcr: 2}},
		{"window shift above 127 saturates", "030380", TCPOptions{WScale: 127}},
		{"window shift 0 is present", "030300", TCPOptions{WScale: 0}},
		{"MSS 0 reads as absent", "02040000", TCPOptions{WScale: -1}},
		{"repeated option: last wins", "02040100 02040200", TCPOptions{MSS: 0x200, WScale: -1}},
		{"repeated SACK: last wins and clears the first",
			"050a 00000001 00000002 050a 00000003 00000004",
			TCPOptions{WScale: -1, NumSACK: 1, SACK: [4]SACKBlock{{3, 4}}}},
		{"one SACK block", "0101050a 00000010 00000020",
			TCPOptions{WScale: -1, NumSACK: 1, SACK: [4]SACKBlock{{0x10, 0x20}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := TCPOptions{MSS: 9, NumSACK: 4, SACK: [4]SACKBlock{{9, 9}, {9, 9}, {9, 9}, {9, 9}}}
			require.NoError(t, ParseTCPOptions(unhex(t, c.hex), &o))
			require.Equal(t, c.want, o)
		})
	}
}

// The tolerant parser reads what Linux's tcp_parse_options reads: a known option of the
// wrong length is skipped by its length and the options after it still count; a length
// that cannot be walked (below 2, past the end, missing) ends the parse and keeps what came
// before. Each case is also malformed for the strict parser.
func TestParseTCPOptionsTolerant_LikeLinux(t *testing.T) {
	ts := "080a 00000001 00000002"
	fiveSACK := "0101 052a" + strings.Repeat(" 00000001 00000002", 5) // 44 bytes: more than a header holds
	cases := []struct {
		name string
		hex  string
		want TCPOptions
	}{
		{"MSS length 3 skipped", "020305 030307 0402 " + ts,
			TCPOptions{WScale: 7, SACKPermitted: true, TS: true, TSVal: 1, TSEcr: 2}},
		{"MSS length 5 skipped", "020505b400 030307", TCPOptions{WScale: 7}},
		{"timestamps length 9 skipped", "0809 00000001 000000 020405b4", TCPOptions{MSS: 1460, WScale: -1}},
		{"timestamps length 8 skipped", "0808 00000001 0000 020405b4", TCPOptions{MSS: 1460, WScale: -1}},
		{"timestamps length 12 skipped", "080c 00000001 00000002 0000 0402", TCPOptions{WScale: -1, SACKPermitted: true}},
		{"window scale length 2 skipped", "0302 020405b4", TCPOptions{MSS: 1460, WScale: -1}},
		{"window scale length 4 skipped", "03040700 0402", TCPOptions{WScale: -1, SACKPermitted: true}},
		{"SACK-permitted length 3 skipped", "040300 030305", TCPOptions{WScale: 5}},
		{"SACK length 2 skipped", "0502 " + ts, TCPOptions{WScale: -1, TS: true, TSVal: 1, TSEcr: 2}},
		{"SACK length 11 skipped", "050b 00000001 00000002 00 " + ts, TCPOptions{WScale: -1, TS: true, TSVal: 1, TSEcr: 2}},
		{"SACK of five blocks keeps four", fiveSACK, TCPOptions{WScale: -1, NumSACK: 4,
			SACK: [4]SACKBlock{{1, 2}, {1, 2}, {1, 2}, {1, 2}}}},
		{"unknown kind length 0 ends the parse", "020405b4 1e00 030307", TCPOptions{MSS: 1460, WScale: -1}},
		{"unknown kind length 1 ends the parse", "030307 fe01 020405b4", TCPOptions{WScale: 7}},
		{"known kind length 0 ends the parse", "0402 0200 030307", TCPOptions{WScale: -1, SACKPermitted: true}},
		{"length past the end ends the parse", "020405b4 0303", TCPOptions{MSS: 1460, WScale: -1}},
		{"kind without a length byte ends the parse", "020405b4 03", TCPOptions{MSS: 1460, WScale: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := unhex(t, c.hex)
			o := TCPOptions{MSS: 9, NumSACK: 3}
			require.ErrorIs(t, ParseTCPOptionsTolerant(b, &o), ErrBadOption)
			require.Equal(t, c.want, o)
			require.ErrorIs(t, ParseTCPOptions(b, &o), ErrBadOption, "the strict parser refuses it")
		})
	}
}

// On well-formed options the two parsers agree and the tolerant one reports nothing.
func TestParseTCPOptionsTolerant_CleanIsStrict(t *testing.T) {
	for _, h := range []string{"", "01010101", "020405b4 0402080a 01020304 00000000 01030307",
		"020405b4 00 ff 00 01", "1e0400ff 020405b4 fe020101", "0101050a 00000010 00000020",
		"02040000", "020405b4 02040000"} {
		b := unhex(t, h)
		var strict, tolerant TCPOptions
		require.NoError(t, ParseTCPOptions(b, &strict), h)
		require.NoError(t, ParseTCPOptionsTolerant(b, &tolerant), h)
		require.Equal(t, strict, tolerant, h)
	}
	var o TCPOptions
	require.NoError(t, ParseTCPOptionsTolerant(unhex(t, "020405b4 02040000"), &o))
	require.Equal(t, uint16(1460), o.MSS, "an MSS of 0 is ignored (tcp_parse_options: if (in_mss))")
}
