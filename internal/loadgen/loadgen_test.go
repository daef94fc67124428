package loadgen

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckReply(t *testing.T) {
	require.NoError(t, CheckReply(Reply))
	require.NoError(t, CheckReply([]byte("HTTP/1.1 200 OK\r\n\r\nhello")))
	for _, bad := range []string{"", "HTTP/1.0", "HTTP/1.0 404 Not Found\r\n\r\n", "SSH-2.0-OpenSSH_9.2 200 x", "HTTP/2.0 2000"} {
		require.Error(t, CheckReply([]byte(bad)), bad)
	}
}

// RunNet over loopback against a server that answers the first request with a good reply
// and then a bad one: the count, the failures and the first error come out right.
func TestRunNet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, len(Request))
			_, _ = c.Read(buf)
			if i%2 == 0 {
				_, _ = c.Write(Reply)
			} else {
				_, _ = c.Write([]byte("HTTP/1.0 500 Oops\r\n\r\n"))
			}
			c.Close()
		}
	}()
	target := netip.MustParseAddrPort(ln.Addr().String())
	var d net.Dialer
	res, err := RunNet(func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", target.String()) },
		Config{Target: target, Conns: 20, Concurrency: 1})
	require.NoError(t, err)
	require.Equal(t, int64(10), res.Conns)
	require.Equal(t, int64(10), res.Failures)
	require.Contains(t, res.FirstError, "not an HTTP 200 reply")
	require.Equal(t, uint64(20), res.Handshake.Count())
	require.Equal(t, uint64(10), res.Total.Count())

	_, err = RunNet(nil, Config{Target: target})
	require.Error(t, err, "neither a count nor a duration")
	_, err = RunNet(nil, Config{Conns: 1})
	require.Error(t, err, "no target")
}
