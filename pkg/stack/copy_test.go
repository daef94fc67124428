package stack_test

import (
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
)

// onlyReader hides a reader's WriteTo, so that io.Copy must use the destination's ReadFrom.
type onlyReader struct{ io.Reader }

// io.Copy into and out of a connection goes through its ReadFrom and WriteTo, which read
// into the send buffer and hand out the receive buffer in place: 8 MiB arrive intact, and
// WriteTo returns nil at the peer's FIN as io.Copy expects.
func TestConn_ReadFromWriteTo(t *testing.T) {
	port, peer := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2})
	srv, err := stack.New(stack.Config{Port: port, Addr: netip.MustParsePrefix("198.18.0.1/24"), Shards: 2})
	require.NoError(t, err)
	defer srv.Close()
	cli, err := stack.New(stack.Config{Port: peer, Addr: netip.MustParsePrefix("198.18.0.2/24"), Shards: 2})
	require.NoError(t, err)
	defer cli.Close()
	l, err := srv.Listen(":9001", 8)
	require.NoError(t, err)
	defer l.Close()

	const size = 8 << 20
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		require.Implements(t, (*io.WriterTo)(nil), c)
		h := sha256.New()
		n, err := io.Copy(h, c) // c.WriteTo
		var s [32]byte
		copy(s[:], h.Sum(nil))
		got <- result{n, s, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cli.Dial(ctx, "198.18.0.1:9001")
	require.NoError(t, err)
	require.Implements(t, (*io.ReaderFrom)(nil), c)
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	n, err := io.Copy(c, onlyReader{&chunky{data: data}}) // c.ReadFrom
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
	require.NoError(t, c.CloseWrite())
	res := <-got
	require.NoError(t, res.err)
	require.Equal(t, int64(size), res.n)
	require.Equal(t, sha256.Sum256(data), res.sum)
	require.NoError(t, c.Close())
	var _ net.Conn = c
}

// chunky yields its data in uneven pieces, as a socket or a file might.
type chunky struct {
	data []byte
	k    int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	c.k++
	n := min(len(p), len(c.data), 1+(c.k*7919)%70000)
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}
