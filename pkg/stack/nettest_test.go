package stack_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
)

// TestConnConformance runs golang.org/x/net/nettest's net.Conn conformance suite (basic
// I/O, ping-pong, racy reads and writes, deadlines, close semantics) on connections between
// two running stacks.
func TestConnConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite moves several megabytes; skipped with -short")
	}
	port, peer := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2})
	srv, err := stack.New(stack.Config{Port: port, Addr: netip.MustParsePrefix("198.18.0.1/24"), Shards: 2})
	require.NoError(t, err)
	defer srv.Close()
	cli, err := stack.New(stack.Config{Port: peer, Addr: netip.MustParsePrefix("198.18.0.2/24"), Shards: 2})
	require.NoError(t, err)
	defer cli.Close()
	l, err := srv.Listen(":9000", 128)
	require.NoError(t, err)
	defer l.Close()

	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c1, err := cli.Dial(ctx, "198.18.0.1:9000")
		if err != nil {
			return nil, nil, nil, err
		}
		c2, ok := <-accepted
		if !ok {
			c1.Close()
			return nil, nil, nil, net.ErrClosed
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}
