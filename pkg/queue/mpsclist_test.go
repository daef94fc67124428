package queue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// node is a test element: it embeds its link the way a connection would.
type node struct {
	link     Link[node]
	producer int
	seq      int
}

func (n *node) QueueLink() *Link[node] { return &n.link }

func collect(first *node) []*node {
	var out []*node
	for e := first; e != nil; e = Next(e) {
		out = append(out, e)
	}
	return out
}

func TestMPSCList_ZeroValueIsEmpty(t *testing.T) {
	var l MPSCList[node, *node]
	require.True(t, l.Empty())
	require.Nil(t, l.TakeAll())
}

func TestMPSCList_TakeAllReturnsPushOrder(t *testing.T) {
	var l MPSCList[node, *node]
	nodes := make([]node, 5)
	for i := range nodes {
		nodes[i].seq = i
		l.Push(&nodes[i])
		require.False(t, l.Empty())
	}
	got := collect(l.TakeAll())
	require.Len(t, got, 5)
	for i, e := range got {
		require.Same(t, &nodes[i], e)
	}
	require.True(t, l.Empty())
	require.Nil(t, l.TakeAll())
}

func TestMPSCList_SingleElementAndRepush(t *testing.T) {
	var l MPSCList[node, *node]
	var a, b node
	l.Push(&a)
	first := l.TakeAll()
	require.Same(t, &a, first)
	require.Nil(t, Next(first))

	// After the consumer is done with a, it may be pushed again, in a new order.
	l.Push(&b)
	l.Push(&a)
	require.Equal(t, []*node{&b, &a}, collect(l.TakeAll()))
}

func TestMPSCList_ZeroAllocs(t *testing.T) {
	var l MPSCList[node, *node]
	nodes := make([]node, 8)
	allocs := testing.AllocsPerRun(200, func() {
		for i := range nodes {
			l.Push(&nodes[i])
		}
		for e := l.TakeAll(); e != nil; e = Next(e) {
		}
		l.Empty()
	})
	require.Zero(t, allocs)
}

func TestMPSCList_PushChain(t *testing.T) {
	var l MPSCList[node, *node]
	nodes := make([]node, 10)
	l.Push(&nodes[0])
	var c Chain[node, *node]
	for i := 1; i < 9; i++ {
		c.Add(&nodes[i])
	}
	require.Equal(t, 8, c.Len())
	l.PushChain(&c)
	require.Zero(t, c.Len())
	l.PushChain(&c) // empty: nothing happens
	l.Push(&nodes[9])
	seen := map[*node]bool{}
	for e := l.TakeAll(); e != nil; e = Next(e) {
		require.False(t, seen[e])
		seen[e] = true
	}
	require.Len(t, seen, 10)
	require.True(t, l.Empty())
}
