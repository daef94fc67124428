package header

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseIPv4Options(t *testing.T) {
	cases := []struct {
		name string
		opts []byte
		err  bool
		srr  bool
	}{
		{"empty", nil, false, false},
		{"nops and eol", []byte{1, 1, 0, 0}, false, false},
		{"eol then junk", []byte{0, 0xff, 0xff, 0xff}, false, false},
		{"lsrr", []byte{131, 7, 4, 198, 18, 0, 9, 0}, false, true},
		{"ssrr", []byte{137, 7, 4, 198, 18, 0, 9, 0}, false, true},
		{"two source routes", []byte{131, 3, 4, 137, 3, 4, 0, 0}, true, false},
		{"srr pointer below 4", []byte{131, 7, 3, 198, 18, 0, 9, 0}, true, false},
		{"srr length 2", []byte{131, 2, 0, 0}, true, false},
		{"length byte missing", []byte{1, 1, 1, 7}, true, false},
		{"length 0", []byte{7, 0, 0, 0}, true, false},
		{"length 1", []byte{7, 1, 0, 0}, true, false},
		{"length past the header", []byte{7, 9, 4, 0}, true, false},
		{"rr", []byte{7, 7, 4, 0, 0, 0, 0, 0}, false, false},
		{"rr full", []byte{7, 7, 8, 1, 2, 3, 4, 0}, false, false},
		{"rr pointer without room", []byte{7, 7, 6, 1, 2, 3, 4, 0}, true, false},
		{"timestamp", []byte{68, 8, 5, 0, 0, 0, 0, 0}, false, false},
		{"timestamp short", []byte{68, 3, 5, 0}, true, false},
		{"timestamp pointer below 5", []byte{68, 8, 4, 0, 0, 0, 0, 0}, true, false},
		{"timestamp with address without room", []byte{68, 8, 5, 1, 0, 0, 0, 0}, true, false},
		{"timestamp overflowing", []byte{68, 8, 9, 0xf0, 0, 0, 0, 0}, true, false},
		{"two timestamps", []byte{68, 4, 5, 0, 68, 4, 5, 0}, true, false},
		{"router alert", []byte{148, 4, 0, 0}, false, false},
		{"router alert short", []byte{148, 2, 0, 0}, true, false},
		{"cipso", []byte{134, 8, 0, 0, 0, 1, 0, 0}, true, false},
		{"unknown option skipped", []byte{0x9e, 4, 1, 2}, false, false},
		{"security skipped", []byte{130, 3, 0, 0}, false, false},
	}
	for _, c := range cases {
		var set IPv4OptionSet
		err := ParseIPv4Options(c.opts, &set)
		if c.err {
			require.ErrorIs(t, err, ErrIPv4Option, c.name)
			continue
		}
		require.NoError(t, err, c.name)
		require.Equal(t, c.srr, set.SourceRouted(), c.name)
	}
}

// No input makes the walk panic or read past the options.
func FuzzIPv4Options(f *testing.F) {
	f.Add([]byte{131, 7, 4, 198, 18, 0, 9, 0})
	f.Add([]byte{68, 8, 5, 1, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 1, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 40 {
			b = b[:40]
		}
		var set IPv4OptionSet
		_ = ParseIPv4Options(b[:len(b):len(b)], &set)
	})
}

func TestParseIPv4OptionsAllocatesNothing(t *testing.T) {
	opts := []byte{131, 7, 4, 198, 18, 0, 9, 0, 68, 8, 5, 0, 0, 0, 0, 0}
	var set IPv4OptionSet
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = ParseIPv4Options(opts, &set) }))
}
