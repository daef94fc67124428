package seqnum

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const top = Value(0xffffffff)

func TestLessThan_AcrossWrap(t *testing.T) {
	cases := []struct {
		v, w    Value
		lt, lte bool
		name    string
	}{
		{0, 1, true, true, "simple"},
		{1, 0, false, false, "simple reversed"},
		{5, 5, false, true, "equal"},
		{top, 0, true, true, "wrap: max before zero"},
		{0, top, false, false, "wrap: zero after max"},
		{top - 10, 10, true, true, "wrap: 21 apart"},
		{10, top - 10, false, false, "wrap: reversed"},
		{0, 0x7fffffff, true, true, "2^31-1 ahead is after"},
		{0, 0x80000000, true, true, "2^31 apart is ambiguous: reads as less both ways"},
		{0x80000000, 0, true, true, "2^31 apart, other way"},
		{0, 0x80000001, false, false, "more than 2^31 ahead is before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.lt, c.v.LessThan(c.w))
			require.Equal(t, c.lte, c.v.LessThanEq(c.w))
		})
	}
}

func TestInRange_AcrossWrap(t *testing.T) {
	cases := []struct {
		v, a, b Value
		want    bool
		name    string
	}{
		{5, 5, 10, true, "at start"},
		{9, 5, 10, true, "last"},
		{10, 5, 10, false, "at end"},
		{4, 5, 10, false, "before"},
		{5, 5, 5, false, "empty"},
		{top, top - 1, 3, true, "wrap: max inside"},
		{0, top - 1, 3, true, "wrap: zero inside"},
		{2, top - 1, 3, true, "wrap: last"},
		{3, top - 1, 3, false, "wrap: end"},
		{top - 2, top - 1, 3, false, "wrap: before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.v.InRange(c.a, c.b))
		})
	}
}

func TestInWindow_AcrossWrap(t *testing.T) {
	cases := []struct {
		v, first Value
		size     Size
		want     bool
		name     string
	}{
		{100, 100, 10, true, "first"},
		{109, 100, 10, true, "last"},
		{110, 100, 10, false, "one past"},
		{99, 100, 10, false, "one before"},
		{100, 100, 0, false, "zero window"},
		{top, top - 5, 10, true, "wrap: max"},
		{3, top - 5, 10, true, "wrap: after zero"},
		{4, top - 5, 10, false, "wrap: one past"},
		{top - 6, top - 5, 10, false, "wrap: one before"},
		{0, 1, 0xffffffff, false, "largest window excludes the value just before it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.v.InWindow(c.first, c.size))
		})
	}
}

func TestAddSub_AcrossWrap(t *testing.T) {
	cases := []struct {
		v    Value
		n    Size
		want Value
	}{
		{0, 0, 0},
		{1, 2, 3},
		{top, 1, 0},
		{top - 1, 10, 8},
		{0x80000000, 0x80000000, 0},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.v.Add(c.n))
		require.Equal(t, c.n, c.want.Sub(c.v))
		if c.n != 0 && c.n < 0x80000000 {
			require.True(t, c.v.LessThan(c.want))
		}
	}
}
