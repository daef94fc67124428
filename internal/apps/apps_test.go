package apps

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/loadgen"
)

func start(t *testing.T, app string) (*Server, string) {
	t.Helper()
	s, err := New(app)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.NoError(t, <-done)
	})
	return s, ln.Addr().String()
}

func TestApps(t *testing.T) {
	t.Run("echo", func(t *testing.T) {
		s, addr := start(t, "echo")
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "ping", string(buf))
		require.Equal(t, int64(1), s.Stats().Accepted)
	})
	t.Run("hello", func(t *testing.T) {
		_, addr := start(t, "hello")
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, loadgen.Exchange(c, make([]byte, 512)))
	})
	t.Run("http", func(t *testing.T) {
		s, addr := start(t, "http")
		resp, err := http.Get("http://" + addr + "/")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, "hello\n", string(body))
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, loadgen.Exchange(c, make([]byte, 512)), "the load generator's HTTP/1.0 request")
		require.Equal(t, int64(2), s.Stats().Accepted)
	})
	t.Run("discard and Close", func(t *testing.T) {
		s, err := New("discard")
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go s.Serve(ln)
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte(strings.Repeat("x", 1000)))
		require.NoError(t, err)
		for s.Stats().BytesIn < 1000 {
			time.Sleep(time.Millisecond) // bounded by the test's own timeout
		}
		require.Equal(t, 1, s.Stats().Open)
		require.NoError(t, s.Close())
		_, err = bufio.NewReader(c).ReadByte()
		require.ErrorIs(t, err, io.EOF, "Close ends the open connection")
		require.Zero(t, s.Stats().Open)
	})
	_, err := New("nope")
	require.Error(t, err)
}
