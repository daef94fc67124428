package dpdkshim_test

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/pcap"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// captureRun runs one connection between two stacks on a virtual clock, the server's port
// wrapped in a capture, and returns the capture file's path.
func captureRun(t *testing.T, offloads bool) string {
	t.Helper()
	vc := clock.NewVirtual(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: vc, Offloads: offloads})
	path := filepath.Join(t.TempDir(), "server.pcap")
	f, err := os.Create(path)
	require.NoError(t, err)
	bw := bufio.NewWriter(f)
	w, err := pcap.NewWriter(bw, 65535, pcap.LinkTypeEthernet)
	require.NoError(t, err)
	capPort := dpdkshim.NewCapture(a, dpdkshim.CaptureConfig{Writer: w, Flush: bw.Flush, Clock: vc})
	_, limits := capPort.(dpdkshim.QueueLimiter)
	require.True(t, limits, "the pair limits queues, so the capture does too")
	srvAddr := netip.MustParsePrefix("198.18.0.1/24")
	srv, err := stack.New(stack.Config{Port: capPort, Addr: srvAddr, Manual: true, Clock: vc, Seed: 1})
	require.NoError(t, err)
	cli, err := stack.New(stack.Config{Port: b, Addr: netip.MustParsePrefix("198.18.0.2/24"), Manual: true, Clock: vc, Seed: 2})
	require.NoError(t, err)
	l, err := srv.Listen(":80", 8)
	require.NoError(t, err)
	c, err := cli.DialAsync(netip.AddrPortFrom(srvAddr.Addr(), 80), tcp.DialOptions{})
	require.NoError(t, err)
	settle := func() {
		for i := 0; i < 50; i++ {
			srv.Poll()
			cli.Poll()
		}
		vc.Advance(time.Millisecond)
	}
	settle()
	s, err := l.TryAccept()
	require.NoError(t, err)
	_, err = c.TryWrite([]byte("ping"))
	require.NoError(t, err)
	settle()
	buf := make([]byte, 8)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf[:k]))
	require.NoError(t, cli.Close())
	require.NoError(t, srv.Close())
	require.NoError(t, capPort.Close(), "closing flushes the capture")
	require.NoError(t, f.Close())
	return path
}

// TestCapture_RecordsBothWays: the capture holds the frames the wrapped port received and
// sent, in order (ARP both ways, then the handshake and the data); frames it sent carry the
// checksum the wire carries even when the link completes checksums.
func TestCapture_RecordsBothWays(t *testing.T) {
	for _, offloads := range []bool{false, true} {
		path := captureRun(t, offloads)
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		r, err := pcap.NewReader(f)
		require.NoError(t, err)
		require.Equal(t, uint32(pcap.LinkTypeEthernet), r.LinkType())
		var flags []uint8
		var arps int
		for {
			_, data, err := r.Next()
			if err != nil {
				break
			}
			eth, err := header.ParseEthernet(data)
			require.NoError(t, err)
			if eth.Type() == header.EtherTypeARP {
				arps++
				continue
			}
			ip, err := header.ParseIPv4(eth.Payload())
			require.NoError(t, err)
			seg, err := header.ParseTCP(ip.Payload())
			require.NoError(t, err)
			sent := ip.Src() == [4]byte{198, 18, 0, 1}
			// What the port sends is recorded as the wire will carry it; what it receives as the
			// link delivered it, which with offloads (as on a veth) is a partial checksum.
			require.Equal(t, sent || !offloads, seg.ChecksumValidIPv4(ip.Src(), ip.Dst()),
				"offloads=%v sent=%v flags %#x", offloads, sent, seg.Flags())
			flags = append(flags, seg.Flags())
		}
		require.Equal(t, 2, arps, "the client's request in, our reply out")
		require.GreaterOrEqual(t, len(flags), 4)
		require.Equal(t, []uint8{header.TCPFlagSYN, header.TCPFlagSYN | header.TCPFlagACK, header.TCPFlagACK}, flags[:3])
		require.Equal(t, header.TCPFlagPSH|header.TCPFlagACK, flags[3], "then the data")
	}
}

// TestCapture_TsharkDecodesHandshake: tshark reads the capture and shows the handshake.
func TestCapture_TsharkDecodesHandshake(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not on PATH; install it (apt-get install tshark) to check captures against Wireshark")
	}
	path := captureRun(t, false)
	cmd := exec.Command(tshark, "-n", "-r", path, "-Y", "tcp", "-o", "tcp.check_checksum:TRUE", "-T", "fields",
		"-e", "ip.src", "-e", "tcp.dstport", "-e", "tcp.flags.str", "-e", "tcp.checksum.status", "-e", "tcp.len")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "tshark: %s", stderr.String())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.GreaterOrEqual(t, len(lines), 4, "%s", out)
	field := func(i, j int) string { return strings.Split(lines[i], "\t")[j] }
	require.Equal(t, "198.18.0.2", field(0, 0))
	require.Equal(t, "80", field(0, 1))
	require.Contains(t, field(0, 2), "S", "SYN: %s", lines[0])
	require.NotContains(t, field(0, 2), "A")
	require.Equal(t, "198.18.0.1", field(1, 0))
	require.Contains(t, field(1, 2), "S")
	require.Contains(t, field(1, 2), "A", "SYN-ACK: %s", lines[1])
	require.Equal(t, "198.18.0.2", field(2, 0))
	require.Equal(t, "4", field(3, 4), "the 4-byte request: %s", lines[3])
	for i := range lines {
		require.Equal(t, "1", field(i, 3), "tshark verifies every checksum (1 = good): %s", lines[i])
	}
}
