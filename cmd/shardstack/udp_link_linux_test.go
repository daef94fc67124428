//go:build linux

package main

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLink_UDPPortUnreachable: shardstack has no UDP sockets, and answers a datagram as
// Linux answers one to a closed port, with an ICMP or ICMPv6 port unreachable that Linux's
// own UDP turns into ECONNREFUSED on the sender's connected socket, for both families. (It
// also checks that a datagram whose checksum Linux left to the veth, CHECKSUM_PARTIAL, is
// taken on the link's word: AF_PACKET marks it verified.)
func TestLink_UDPPortUnreachable(t *testing.T) {
	n := newLinkNet6(t)
	s := n.startServe(t, "--app", "echo", "--listen", ":7", "--addr", ssAddr6+"/64")
	for _, addr := range []string{ssAddr + ":53", "[" + ssAddr6 + "]:53"} {
		err := n.cli.Do(func() error {
			c, err := net.Dial("udp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 64)
			// A few tries: the first datagram may wait for neighbour discovery.
			for i := 0; i < 5; i++ {
				if _, err := c.Write([]byte("query")); err != nil {
					return err
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err = c.Read(buf); !errors.Is(err, syscall.ECONNREFUSED) {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
				}
				return err
			}
			return errors.New("no answer")
		})
		require.ErrorIs(t, err, syscall.ECONNREFUSED, addr)
	}
	sum := s.finish(t)
	require.Equal(t, uint64(0), sum.Counters["UdpNoPorts"]-sum.Counters["IcmpOutDestUnreachs"], "every IPv4 datagram answered")
	require.Positive(t, sum.Counters["UdpNoPorts"])
	require.Positive(t, sum.Counters["Udp6NoPorts"])
	require.Equal(t, sum.Counters["Udp6NoPorts"], sum.Counters["Icmp6OutDestUnreachs"], "every IPv6 datagram answered")
}
