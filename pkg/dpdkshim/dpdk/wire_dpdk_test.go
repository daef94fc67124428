//go:build dpdk && linux

package dpdk

// The tests' wire: two namespaces joined by a veth pair, the DPDK port on one end through a
// net_af_packet vdev (hot-plugged into the test binary's one EAL on a thread inside the
// port's namespace), Linux or a raw packet socket on the other.

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/netns"
)

// testEAL are the EAL arguments of every port the tests open: no hugepages, no files in
// /var/run (--no-shconf; --in-memory would not go with --no-huge), no PCI scan, no telemetry socket, one lcore. One test binary has one EAL:
// every Open must give these (its --vdev alone differs).
var testEAL = []string{"--no-huge", "-m", "512", "--no-shconf", "--no-pci", "--no-telemetry", "-l", "0", "--log-level=4"}

// wire is the two namespaces: the port's side (its veth end has no address, the kernel
// stays out of the way) and the peer (Linux at 198.18.0.2/24).
type wire struct {
	port, peer       *netns.NS
	ifPort, ifPeer   string
	macPort, macPeer net.HardwareAddr
}

var vdevSeq atomic.Int32

func newWire(t *testing.T) *wire {
	t.Helper()
	netns.Require(t)
	w := &wire{port: netns.New(t, "dpdk"), peer: netns.New(t, "peer"), ifPort: "vd", ifPeer: "vp"}
	netns.Veth(t, w.port, w.ifPort, w.peer, w.ifPeer)
	var err error
	w.macPort, err = w.port.MAC(w.ifPort)
	require.NoError(t, err)
	w.macPeer, err = w.peer.MAC(w.ifPeer)
	require.NoError(t, err)
	w.peer.AddAddr(t, w.ifPeer, "198.18.0.2/24")
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, errA := w.port.Interface(w.ifPort)
		b, errB := w.peer.Interface(w.ifPeer)
		require.NoError(t, errA)
		require.NoError(t, errB)
		if a.Flags&net.FlagRunning != 0 && b.Flags&net.FlagRunning != 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the veth ends are not both running")
		time.Sleep(5 * time.Millisecond)
	}
	return w
}

// open opens the DPDK port on the port side's veth with queues queue pairs; Close runs at
// the test's end (after cleanups registered later, such as the stack's).
func (w *wire) open(t *testing.T, queues int) *Port {
	t.Helper()
	vdev := fmt.Sprintf("--vdev=net_af_packet%d,iface=%s,qpairs=%d", vdevSeq.Add(1), w.ifPort, queues)
	var pt *Port
	require.NoError(t, w.port.Do(func() error {
		var err error
		pt, err = Open(Config{EAL: append(append([]string{}, testEAL...), vdev), Queues: queues})
		return err
	}))
	t.Cleanup(func() { require.NoError(t, pt.Close()) })
	return pt
}
