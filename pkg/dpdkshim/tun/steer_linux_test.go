package tun

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// steerPackets returns bare IP packets of every shape the steering function tells apart:
// IPv4 and IPv6 TCP/UDP, other protocols, fragments, IPv4 with options and with an IHL
// below 5, IPv6 with extension headers, versions other than 4 and 6, random bytes, and
// every truncation of a few of them.
func steerPackets(r *rand.Rand) [][]byte {
	var pkts [][]byte
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	v4 := func(proto byte, ihl int, frag uint16, payload int) []byte {
		ip := make([]byte, max(ihl*4, 20)+payload)
		fill(ip)
		ip[0] = 0x40 | byte(ihl)
		binary.BigEndian.PutUint16(ip[6:], frag)
		ip[9] = proto
		return ip
	}
	v6 := func(next byte, payload int) []byte {
		ip := make([]byte, 40+payload)
		fill(ip)
		ip[0] = 0x60 | ip[0]&0xf
		ip[6] = next
		return ip
	}
	for i := 0; i < 300; i++ {
		proto := []byte{protoTCP, protoUDP, 1, 47, 132}[r.IntN(5)]
		frag := []uint16{0, 0x2000, uint16(1 + r.IntN(0x1fff)), 0x4000}[r.IntN(4)]
		pkts = append(pkts,
			v4(proto, 5, frag, 20+r.IntN(40)),
			v4(proto, 5+r.IntN(11), frag, r.IntN(30)),
			v4(proto, r.IntN(5), 0, r.IntN(30)),
			v6([]byte{protoTCP, protoUDP, 58, 0, 43, 44, 60}[r.IntN(7)], r.IntN(60)),
		)
	}
	for i := 0; i < 200; i++ {
		b := make([]byte, 1+r.IntN(100))
		fill(b)
		pkts = append(pkts, b)
	}
	for _, p := range [][]byte{v4(protoTCP, 5, 0, 20), v4(protoUDP, 7, 0, 8), v4(protoTCP, 15, 0, 4), v4(protoTCP, 2, 0, 0),
		v6(protoTCP, 20), v6(protoUDP, 8), v6(0, 8)} {
		for n := 1; n <= len(p); n++ {
			pkts = append(pkts, p[:n])
		}
	}
	return pkts
}

// requireBPF skips the test unless the process may load socket filters and test-run them.
func requireBPF(t *testing.T, fd int, err error) {
	t.Helper()
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("cannot load eBPF programs here (%v): run as root on Linux 4.16 or later", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
}

// TestSteerProgram_MatchesIPQueue loads the steering program into the kernel and runs it
// (BPF_PROG_TEST_RUN) over every kind of packet, for several seeds and queue counts: it
// returns Symmetric.IPQueue's queue, so a TUN device that runs it delivers each flow
// where the stack expects it.
func TestSteerProgram_MatchesIPQueue(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pkts := steerPackets(r)
	require.Greater(t, len(pkts), 1500)
	frame := make([]byte, 14+128)
	for _, seed := range []uint32{0, 1, 0xdeadbeef, r.Uint32()} {
		s := dpdkshim.Symmetric{Seed: seed}
		for _, n := range []int{1, 2, 3, 4, 7, 16} {
			prog, err := steerProgram(seed, n)
			require.NoError(t, err)
			fd, err := loadProgram(prog, "ss_steer_test")
			requireBPF(t, fd, err)
			spread := make([]int, n)
			for i, p := range pkts {
				// The test run takes an Ethernet frame and starts the program after it. Its
				// EtherType is the local experimental one: with IPv4's the kernel refuses
				// a frame too short for an IPv4 header, and the program never reads it.
				f := frame[:14+len(p)]
				binary.BigEndian.PutUint16(f[12:], 0x88b5)
				copy(f[14:], p)
				got, err := testRun(fd, f)
				require.NoError(t, err)
				got = uint32(uint16(got)) % uint32(n) // tun_ebpf_select_queue
				require.Equal(t, s.IPQueue(p, n), int(got), "seed %#x n %d packet %d: % x", seed, n, i, p)
				spread[got]++
			}
			for q := range spread {
				require.NotZero(t, spread[q], "seed %#x n %d: queue %d got nothing", seed, n, q)
			}
		}
	}
}

// TestSteerProgram_RefusedProgramSaysWhy: a program the verifier refuses comes back as an
// error with the verifier's words in it.
func TestSteerProgram_RefusedProgramSaysWhy(t *testing.T) {
	bad := []insn{mkInsn(bpfJMP|jmpExit, 0, 0, 0, 0)} // r0 is never set
	fd, err := loadProgram(bad, "ss_bad")
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("cannot load eBPF programs here: %v", err)
	}
	if err == nil {
		unix.Close(fd)
	}
	require.Error(t, err)
	require.Contains(t, err.Error(), "R0", "the verifier's log names the register: %v", err)
}
