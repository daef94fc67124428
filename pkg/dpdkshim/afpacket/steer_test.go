package afpacket

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// steerFrames returns frames of every shape the steering function distinguishes: IPv4
// and IPv6 TCP/UDP, ICMP, fragments, IPv4 with options (IHL > 5) and with a bogus IHL
// (< 5), IPv6 with extension headers, ARP, VLAN and other EtherTypes, random bytes behind
// an IP EtherType, and every truncation of a few of them.
func steerFrames(r *rand.Rand) [][]byte {
	var frames [][]byte
	eth := func(etherType uint16, payload []byte) []byte {
		f := make([]byte, 14+len(payload))
		for i := 0; i < 12; i++ {
			f[i] = byte(r.Uint32())
		}
		binary.BigEndian.PutUint16(f[12:], etherType)
		copy(f[14:], payload)
		return f
	}
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	v4 := func(proto byte, ihl int, frag uint16, payload int) []byte {
		ip := make([]byte, ihl*4+payload)
		if len(ip) < 20 {
			ip = make([]byte, 20+payload)
		}
		fill(ip)
		ip[0] = 0x40 | byte(ihl)
		binary.BigEndian.PutUint16(ip[6:], frag)
		ip[9] = proto
		return eth(etherIPv4, ip)
	}
	v6 := func(next byte, payload int) []byte {
		ip := make([]byte, 40+payload)
		fill(ip)
		ip[0] = 0x60
		ip[6] = next
		return eth(etherIPv6, ip)
	}
	for i := 0; i < 400; i++ {
		proto := []byte{protoTCP, protoUDP, 1, 47, 132}[r.IntN(5)]
		frag := uint16(0)
		switch r.IntN(4) {
		case 0:
			frag = 0x2000 // MF
		case 1:
			frag = uint16(1 + r.IntN(0x1fff)) // an offset
		case 2:
			frag = 0x4000 // DF only: not a fragment
		}
		frames = append(frames,
			v4(proto, 5, frag, 20+r.IntN(40)),
			v4(proto, 5+r.IntN(11), frag, r.IntN(30)), // options
			v4(proto, r.IntN(5), 0, r.IntN(30)),       // IHL below 5: still hashed as FrameQueue does
			v6([]byte{protoTCP, protoUDP, 58, 0, 43, 44, 60}[r.IntN(7)], r.IntN(60)),
		)
	}
	arp := make([]byte, 28)
	fill(arp)
	frames = append(frames, eth(0x0806, arp), eth(0x8100, arp), eth(0x88cc, arp), eth(0, nil))
	for i := 0; i < 200; i++ {
		b := make([]byte, r.IntN(120))
		fill(b)
		frames = append(frames, eth([]uint16{etherIPv4, etherIPv6}[r.IntN(2)], b))
	}
	// Every truncation of some frames: at each length the loads that fail and the length
	// checks must agree with FrameQueue's bounds.
	for _, f := range [][]byte{
		v4(protoTCP, 5, 0, 20), v4(protoUDP, 7, 0, 8), v4(protoTCP, 15, 0, 4), v4(protoTCP, 2, 0, 0),
		v6(protoTCP, 20), v6(protoUDP, 8), v6(0, 8),
	} {
		for n := 0; n <= len(f); n++ {
			frames = append(frames, f[:n])
		}
	}
	return frames
}

// TestSteerProgram_MatchesFrameQueue runs the fanout program in x/net/bpf's VM over every
// kind of frame and checks that it picks FrameQueue's queue, reduced modulo the member
// count as the kernel reduces it, for several seeds and member counts.
func TestSteerProgram_MatchesFrameQueue(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	frames := steerFrames(r)
	require.Greater(t, len(frames), 2000)
	for _, seed := range []uint32{0, 1, 0xdeadbeef, r.Uint32()} {
		s := dpdkshim.Symmetric{Seed: seed}
		for _, n := range []int{1, 2, 3, 4, 7, 8, 16, 64} {
			prog, err := steerProgram(seed, n, frameLayout)
			require.NoError(t, err)
			vm, err := bpf.NewVM(prog)
			require.NoError(t, err)
			spread := make([]int, n)
			for i, f := range frames {
				got, err := vm.Run(f)
				require.NoError(t, err)
				got %= n // the kernel's fanout_demux_bpf
				require.Equal(t, s.FrameQueue(f, n), got, "seed %#x n %d frame %d: % x", seed, n, i, f)
				spread[got]++
			}
			for q := 0; q < n && n <= 8; q++ {
				require.NotZero(t, spread[q], "seed %#x n %d: queue %d got nothing", seed, n, q)
			}
		}
	}
}

// TestSteerProgram_LimitedToFewerQueues: the program for n queues of a group with more
// members (QueueLimiter) yields FrameQueue(frame, n) after the kernel's reduction modulo
// the member count.
func TestSteerProgram_LimitedToFewerQueues(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	frames := steerFrames(r)
	s := dpdkshim.Symmetric{Seed: 77}
	prog, err := steerProgram(77, 3, frameLayout)
	require.NoError(t, err)
	vm, err := bpf.NewVM(prog)
	require.NoError(t, err)
	for _, f := range frames {
		got, err := vm.Run(f)
		require.NoError(t, err)
		require.Equal(t, s.FrameQueue(f, 3), got%8)
	}
}

// TestSteerProgram_KernelLayoutSameShape: the program the kernel runs differs from the one
// the VM checks only in the base of its frame loads and in the length bias, so the
// equivalence above carries over to it (the root tests check it against the kernel too).
func TestSteerProgram_KernelLayoutSameShape(t *testing.T) {
	vmProg, err := steerProgram(9, 4, frameLayout)
	require.NoError(t, err)
	kProg, err := steerProgram(9, 4, kernelLayout)
	require.NoError(t, err)
	require.Len(t, kProg, len(vmProg))
	vmRaw, err := bpf.Assemble(vmProg)
	require.NoError(t, err)
	kRaw, err := bpf.Assemble(kProg)
	require.NoError(t, err)
	loads := 0
	for i := range vmRaw {
		v, k := vmRaw[i], kRaw[i]
		require.Equal(t, v.Op, k.Op, "instruction %d", i)
		require.Equal(t, v.Jt, k.Jt, "instruction %d", i)
		require.Equal(t, v.Jf, k.Jf, "instruction %d", i)
		switch vmProg[i].(type) {
		case bpf.LoadAbsolute, bpf.LoadIndirect, bpf.LoadMemShift:
			require.Equal(t, v.K+skfLLOff, k.K, "instruction %d: a frame load", i)
			loads++
		case bpf.ALUOpConstant:
			if v.K != k.K {
				require.Equal(t, uint32(ethernetLen), k.K-v.K, "instruction %d: the length bias", i)
			}
		default:
			require.Equal(t, v.K, k.K, "instruction %d", i)
		}
	}
	require.Greater(t, loads, 10)
	require.LessOrEqual(t, len(kRaw), 4096, "BPF_MAXINSNS")
}
