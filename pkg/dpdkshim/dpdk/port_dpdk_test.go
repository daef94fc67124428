//go:build dpdk && linux

package dpdk

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// rawSocket is an AF_PACKET socket on dev of ns, for frames to and from the port.
func rawSocket(t *testing.T, w *wire) int {
	t.Helper()
	var fd int
	require.NoError(t, w.peer.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(0x88b5)))
		if err != nil {
			return err
		}
		ifi, err := w.peer.Interface(w.ifPeer)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(0x88b5), Ifindex: ifi.Index})
	}))
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
	return fd
}

// frame is an Ethernet frame of the local experimental EtherType 0x88b5 carrying seq.
func frame(dst, src []byte, seq uint32, size int) []byte {
	f := make([]byte, size)
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < size; i++ {
		f[i] = byte(seq) + byte(i)
	}
	return f
}

// TestPort_FramesBothWaysWithoutCopies: frames from a raw socket on the peer arrive as
// packets that view their mbufs (owned by the port, the mbuf's headroom in front), and go
// back freed in bulk; packets from the port's pools are mbufs that the PMD sends as they
// are, with no copy. Bursts, not packets, cost cgo calls.
func TestPort_FramesBothWaysWithoutCopies(t *testing.T) {
	w := newWire(t)
	pt := w.open(t, 2)
	require.Equal(t, 2, pt.NumQueues())
	require.Equal(t, "net_af_packet", pt.Driver())
	require.Equal(t, w.macPort.String(), pt.MAC().String())
	require.Nil(t, pt.Steering(), "net_af_packet spreads its queues with PACKET_FANOUT: no steering the stack can compute")
	require.Equal(t, 1500, pt.MTU())
	t.Logf("offloads %+v", pt.Offloads())
	fd := rawSocket(t, w)

	const n = 300
	for i := 0; i < n; i++ {
		_, err := unix.Write(fd, frame(w.macPort, w.macPeer, uint32(i), 60+i))
		require.NoError(t, err)
	}
	got := map[uint32]bool{}
	pkts := make([]*dpdkshim.Packet, 64)
	var fb dpdkshim.FreeBatch
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		for q := 0; q < 2; q++ {
			k := pt.RxBurst(q, pkts)
			for _, p := range pkts[:k] {
				d := p.Data()
				if len(d) < 18 || binary.BigEndian.Uint16(d[12:]) != 0x88b5 {
					fb.Free(p)
					continue
				}
				seq := binary.BigEndian.Uint32(d[14:])
				require.Equal(t, frame(w.macPort, w.macPeer, seq, 60+int(seq)), d)
				require.True(t, p.Owned())
				require.Equal(t, dpdkshim.Owner(pt), p.Owner())
				require.Equal(t, 128, p.Headroom(), "the mbuf's headroom is in front of the frame")
				require.Equal(t, uint16(q), p.Queue)
				// The packet's bytes are the mbuf's data room: the slice starts at
				// buf_addr + data_off, which is the address the mbuf says.
				require.NotZero(t, p.Ref)
				got[seq] = true
				fb.Free(p)
			}
		}
		fb.Flush()
		time.Sleep(time.Millisecond)
	}
	require.Len(t, got, n, "every frame arrived")
	st := pt.Stats()
	rx := st[0].RxPackets + st[1].RxPackets
	require.GreaterOrEqual(t, rx, uint64(n))
	bulk, single := pt.FreeCalls()
	require.Zero(t, single)
	require.Less(t, bulk, rx/2, "mbufs go back in bulk")

	// Transmit from queue 1's pool: mbufs sent as they are.
	pool := pt.Pool(1)
	out := make([]*dpdkshim.Packet, 0, 100)
	for i := 0; i < 100; i++ {
		p := pool.Get()
		require.NotNil(t, p)
		require.True(t, p.Owned(), "the pool's packets are mbufs")
		require.Equal(t, 128, p.Headroom())
		copy(p.Append(100), frame(w.macPeer, w.macPort, uint32(1000+i), 100))
		out = append(out, p)
	}
	sent := 0
	for sent < len(out) && time.Now().Before(deadline) {
		sent += pt.TxBurst(1, out[sent:])
	}
	require.Equal(t, len(out), sent)
	st = pt.Stats()
	require.Zero(t, st[1].TxCopies, "no copy")
	require.LessOrEqual(t, st[1].AllocCalls, uint64(4), "100 mbufs in bulk: a call per 32")
	buf := make([]byte, 2048)
	seen := map[uint32]bool{}
	for len(seen) < 100 {
		m, err := unix.Read(fd, buf)
		require.NoError(t, err, "after %d frames", len(seen))
		if m >= 18 && bytes.Equal(buf[6:12], w.macPort) {
			seq := binary.BigEndian.Uint32(buf[14:])
			require.Equal(t, frame(w.macPeer, w.macPort, seq, 100), buf[:m])
			seen[seq] = true
		}
	}

	// A packet that is not an mbuf (a Go buffer of another pool) is copied into one.
	gp := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 4}).Get()
	copy(gp.Append(80), frame(w.macPeer, w.macPort, 7777, 80))
	require.Equal(t, 1, pt.TxBurst(0, []*dpdkshim.Packet{gp}))
	require.Equal(t, uint64(1), pt.Stats()[0].TxCopies)
	for {
		m, err := unix.Read(fd, buf)
		require.NoError(t, err)
		if m >= 18 && binary.BigEndian.Uint32(buf[14:]) == 7777 {
			require.Equal(t, frame(w.macPeer, w.macPort, 7777, 80), buf[:m])
			break
		}
	}

	// One longer than an mbuf can never go: taken, dropped and counted.
	big := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 1, BufSize: 4096}).Get()
	copy(big.Append(3000), frame(w.macPeer, w.macPort, 8888, 3000))
	require.Equal(t, 1, pt.TxBurst(0, []*dpdkshim.Packet{big}))
	require.Equal(t, uint64(1), pt.Stats()[0].TxTooLong)
}

// TestPort_NoAllocsPerPacket: receiving a burst, freeing it in bulk, and transmitting a
// burst of the pool's mbufs allocate nothing on the Go heap.
func TestPort_NoAllocsPerPacket(t *testing.T) {
	w := newWire(t)
	pt := w.open(t, 1)
	fd := rawSocket(t, w)
	in := frame(w.macPort, w.macPeer, 1, 200)
	pkts := make([]*dpdkshim.Packet, 32)
	var fb dpdkshim.FreeBatch
	pool := pt.Pool(0)
	round := func() {
		for i := 0; i < 16; i++ {
			_, _ = unix.Write(fd, in)
		}
		got := 0
		for tries := 0; got < 16 && tries < 100000; tries++ {
			k := pt.RxBurst(0, pkts)
			for _, p := range pkts[:k] {
				got++
				fb.Free(p)
			}
			clear(pkts[:k])
		}
		fb.Flush()
		for i := 0; i < 16; i++ {
			p := pool.Get()
			copy(p.Append(100), in[:100])
			pkts[i] = p
		}
		sent := 0
		for tries := 0; sent < 16 && tries < 100000; tries++ {
			sent += pt.TxBurst(0, pkts[sent:16])
		}
		clear(pkts)
	}
	round()
	allocs := testing.AllocsPerRun(50, round)
	require.Zero(t, allocs)
	st := pt.Stats()[0]
	require.Positive(t, st.RxPackets)
	require.Positive(t, st.TxPackets)
}
