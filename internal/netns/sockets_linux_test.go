package netns

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSS(t *testing.T) {
	// Captured from ss -tanH (iproute2 6.1) in a namespace on this project's machine.
	out := "LISTEN     0      5            0.0.0.0:8082     0.0.0.0:*    \n" +
		"LISTEN     0      5         198.18.0.1:8080     0.0.0.0:*    \n" +
		"LISTEN     0      5      198.18.0.1%va:8083     0.0.0.0:*    \n" +
		"ESTAB      100    0         198.18.0.1:8080  198.18.0.1:46620\n" +
		"SYN-SENT   0      1         198.18.0.1:56684 198.18.0.9:80   \n" +
		"LISTEN     0      5                  *:8081           *:*    \n" +
		"CLOSE-WAIT 1      0              [::1]:51920      [::1]:8081 \n" +
		"FIN-WAIT-2 0      0     [fe80::1%va]:8081 [::ffff:198.18.0.2]:51920\n"
	ap := netip.MustParseAddrPort
	want := []Socket{
		{"LISTEN", 0, 5, ap("0.0.0.0:8082"), ap("0.0.0.0:0")},
		{"LISTEN", 0, 5, ap("198.18.0.1:8080"), ap("0.0.0.0:0")},
		{"LISTEN", 0, 5, ap("198.18.0.1:8083"), ap("0.0.0.0:0")},
		{"ESTAB", 100, 0, ap("198.18.0.1:8080"), ap("198.18.0.1:46620")},
		{"SYN-SENT", 0, 1, ap("198.18.0.1:56684"), ap("198.18.0.9:80")},
		{"LISTEN", 0, 5, ap("[::]:8081"), ap("[::]:0")},
		{"CLOSE-WAIT", 1, 0, ap("[::1]:51920"), ap("[::1]:8081")},
		{"FIN-WAIT-2", 0, 0, ap("[fe80::1%va]:8081"), ap("[::ffff:198.18.0.2]:51920")},
	}
	got, err := parseSS(out)
	require.NoError(t, err)
	require.Equal(t, want, got)

	got, err = parseSS("")
	require.NoError(t, err)
	require.Empty(t, got)
	for _, bad := range []string{
		"ESTAB 0 0 198.18.0.1:80",
		"ESTAB x 0 198.18.0.1:80 198.18.0.2:1",
		"ESTAB 0 x 198.18.0.1:80 198.18.0.2:1",
		"ESTAB 0 0 198.18.0.1 198.18.0.2:1",
		"ESTAB 0 0 198.18.0.1:80 198.18.0.2:99999",
		"ESTAB 0 0 nohost:80 198.18.0.2:1",
	} {
		_, err := parseSS(bad + "\n")
		require.Error(t, err, bad)
	}
}

func TestVeth_TCPAcrossNamespaces(t *testing.T) {
	a, b := pair(t)

	var ln net.Listener
	require.NoError(t, a.Do(func() (err error) {
		ln, err = net.Listen("tcp4", "198.18.0.1:0")
		return err
	}))
	t.Cleanup(func() { _ = ln.Close() })
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()

	var client net.Conn
	require.NoError(t, b.Do(func() (err error) {
		d := net.Dialer{Timeout: wait}
		client, err = d.Dial("tcp4", netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), port).String())
		return err
	}))
	t.Cleanup(func() { _ = client.Close() })
	var server net.Conn
	select {
	case server = <-accepted:
		require.NotNil(t, server, "accept failed")
	case <-time.After(wait):
		t.Fatal("no connection accepted")
	}
	t.Cleanup(func() { _ = server.Close() })

	// The sockets work outside Do, on this goroutine's host-namespace thread.
	deadline := time.Now().Add(wait)
	require.NoError(t, client.SetDeadline(deadline))
	require.NoError(t, server.SetDeadline(deadline))
	buf := make([]byte, 4)
	_, err := client.Write([]byte("ping"))
	require.NoError(t, err)
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	_, err = server.Write([]byte("pong"))
	require.NoError(t, err)
	_, err = io.ReadFull(client, buf)
	require.NoError(t, err)
	require.Equal(t, "pong", string(buf))

	serverAddr := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), port)
	clientAddr := client.LocalAddr().(*net.TCPAddr).AddrPort()
	require.Equal(t, netip.MustParseAddr("198.18.0.2"), clientAddr.Addr())
	socks := a.Sockets(t, int(port))
	require.Len(t, socks, 2)
	if socks[0].State != "LISTEN" {
		socks[0], socks[1] = socks[1], socks[0]
	}
	require.Equal(t, Socket{State: "ESTAB", Local: serverAddr, Peer: clientAddr}, socks[1])
	require.Equal(t, "LISTEN", socks[0].State)
	require.Equal(t, serverAddr, socks[0].Local)
	require.Equal(t, netip.MustParseAddrPort("0.0.0.0:0"), socks[0].Peer)
	require.Positive(t, socks[0].SendQ, "a listener's Send-Q is its backlog")
	require.Equal(t, []Socket{{State: "ESTAB", Local: clientAddr, Peer: serverAddr}}, b.Sockets(t, int(port)))
	require.Equal(t, b.Sockets(t, int(port)), b.Sockets(t, int(clientAddr.Port())), "either end's port selects")
	require.Len(t, a.Sockets(t, 0), 2)
	var listed []Socket
	var listErr error
	done := make(chan struct{})
	go func() { // from a goroutine that is not the test's
		defer close(done)
		listed, listErr = b.ListSockets(int(port))
	}()
	<-done
	require.NoError(t, listErr)
	require.Equal(t, b.Sockets(t, int(port)), listed)

	// Nothing of this lives in the host's namespace.
	_, err = net.InterfaceByName("ssa0")
	require.Error(t, err)
	_, err = net.InterfaceByName("ssb0")
	require.Error(t, err)
}
