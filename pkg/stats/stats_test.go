package stats

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNamesComplete(t *testing.T) {
	seen := map[string]bool{}
	for i := ID(0); i < NumIDs; i++ {
		n := i.String()
		require.NotEmpty(t, n, "counter %d has no name", int(i))
		require.False(t, seen[n], "duplicate name %q", n)
		seen[n] = true
		got, ok := Lookup(n)
		require.True(t, ok)
		require.Equal(t, i, got)
	}
}

func TestMergeAndGauge(t *testing.T) {
	var a, b Counters
	a.Inc(TcpCurrEstab)
	a.Inc(TcpCurrEstab)
	b.Dec(TcpCurrEstab) // closed on another shard's count
	a.Add(TcpInSegs, 5)
	b.Inc(TcpInSegs)
	a.Merge(&b)
	require.Equal(t, int64(1), a.Value(TcpCurrEstab))
	v, ok := a.Get("TcpInSegs")
	require.True(t, ok)
	require.Equal(t, uint64(6), v)
	_, ok = a.Get("NoSuchCounter")
	require.False(t, ok)
	d := a.Diff(&b)
	require.Equal(t, uint64(5), d[TcpInSegs])
}
