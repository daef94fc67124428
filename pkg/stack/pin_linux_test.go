package stack

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// With Pin, each shard runs on a thread bound to one CPU of its own (shard i on the i-th
// the process may use); with BusyPoll, idle shards spin; both stacks still carry traffic.
func TestPinAndBusyPoll(t *testing.T) {
	var allowed unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &allowed))
	var cpus []int
	for c := 0; c < 1024; c++ {
		if allowed.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2})
	srv, err := New(Config{Port: a, Addr: netip.MustParsePrefix("198.18.0.1/24"), Shards: 2, Pin: true})
	require.NoError(t, err)
	defer srv.Close()
	cli, err := New(Config{Port: b, Addr: netip.MustParsePrefix("198.18.0.2/24"), Shards: 2, BusyPoll: true})
	require.NoError(t, err)
	defer cli.Close()

	got := make([]int, 2)
	srv.onShards(func(sh *shard) {
		var set unix.CPUSet
		if unix.SchedGetaffinity(0, &set) != nil || set.Count() != 1 {
			got[sh.id] = -1
			return
		}
		for c := 0; c < 1024; c++ {
			if set.IsSet(c) {
				got[sh.id] = c
			}
		}
	})
	require.Equal(t, []int{cpus[0], cpus[1%len(cpus)]}, got, "shard i pinned to the i-th allowed CPU")

	l, err := srv.Listen(":80", 64)
	require.NoError(t, err)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := cli.Dial(ctx, "198.18.0.1:80")
		cancel()
		require.NoError(t, err)
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "hi", string(buf))
		c.Close()
	}
}
