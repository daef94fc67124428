package afpacket

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// bpfLayout says where a steering program finds the frame: the kernel runs a fanout program
// before the packet socket pushes the Ethernet header back, so the program addresses the
// frame through the link-layer base (SKF_LL_OFF) and learns the frame's length from
// skb->len, which then counts from the network header. A program built with frameLayout
// sees the frame from its first byte, as x/net/bpf's VM and a socket filter do.
type bpfLayout struct {
	ll      uint32 // added to every frame offset the program loads
	lenBias uint32 // added to the length extension to give the frame's length
}

var (
	// kernelLayout is the layout of a PACKET_FANOUT_CBPF program on an Ethernet device.
	kernelLayout = bpfLayout{ll: skfLLOff, lenBias: ethernetLen}
	// frameLayout is the layout of a program that sees the frame from its first byte.
	frameLayout = bpfLayout{}
)

const (
	skfLLOff    = 0xffe00000 // SKF_LL_OFF (-0x200000): loads relative to the MAC header
	ethernetLen = 14
)

// The symbolic program below addresses Ethernet frame offsets; these are the fields it reads.
const (
	offEtherType = 12
	offIP        = 14
	offV4Frag    = offIP + 6
	offV4Proto   = offIP + 9
	offV4Src     = offIP + 12
	offV4Dst     = offIP + 16
	offV6Next    = offIP + 6
	offV6Addrs   = offIP + 8
	offV6Ports   = offIP + 40
	etherIPv4    = 0x0800
	etherIPv6    = 0x86dd
	protoTCP     = 6
	protoUDP     = 17
)

// steerProgram returns the classic BPF program that computes dpdkshim.Symmetric{seed}'s
// FrameQueue(frame, n) for every frame, in layout l. It reduces its result modulo n itself,
// so that a port confined to its first n queues (QueueLimiter) can reprogram the group, and
// the kernel's own reduction modulo the member count (>= n) leaves the result alone.
//
// A load beyond the frame ends a classic BPF program with the result 0, in the kernel and
// in x/net/bpf's VM alike; the program relies on that exactly where FrameQueue returns 0
// for a frame too short for its addresses, and checks the length explicitly where
// FrameQueue falls back to the addresses alone (ports beyond the end of the frame).
func steerProgram(seed uint32, n int, l bpfLayout) ([]bpf.Instruction, error) {
	if n < 1 {
		n = 1
	}
	a := &assembler{labels: map[string]int{}}
	ld := func(off uint32, size int) { a.emit(bpf.LoadAbsolute{Off: l.ll + off, Size: size}) }
	ihl := func() { a.emit(bpf.LoadMemShift{Off: l.ll + offIP}) }
	xorX := func() { a.emit(bpf.ALUOpX{Op: bpf.ALUOpXor}) }
	frameLen := func() {
		a.emit(bpf.LoadExtension{Num: bpf.ExtLen})
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: l.lenBias})
	}

	ld(offEtherType, 2)
	a.jeq(etherIPv4, "v4", "")
	a.jeq(etherIPv6, "v6", "ret0")

	// IPv4: the addresses (a load past the frame ends the program with 0, as FrameQueue
	// returns 0 for a frame shorter than an IPv4 header).
	a.label("v4")
	ld(offV4Src, 4)
	a.emit(bpf.TAX{})
	ld(offV4Dst, 4)
	xorX()
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	ld(offV4Proto, 1)
	a.jeq(protoTCP, "v4ports", "")
	a.jeq(protoUDP, "v4ports", "noports")
	a.label("v4ports")
	ld(offV4Frag, 2)
	a.jset(0x3fff, "noports", "") // a fragment: MF set or a non-zero offset
	ihl()                         // X = 4 * IHL, whatever IHL says (as FrameQueue)
	a.emit(bpf.TXA{})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: offIP + 4})
	a.emit(bpf.TAX{}) // X = where the ports end
	frameLen()
	a.jgeX("v4load", "noports")
	a.label("v4load")
	ihl()
	a.emit(bpf.LoadIndirect{Off: l.ll + offIP, Size: 2})
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 1})
	a.emit(bpf.LoadIndirect{Off: l.ll + offIP + 2, Size: 2})
	a.emit(bpf.TAX{})
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 1})
	xorX()
	a.emit(bpf.TAX{})
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	xorX()
	a.ja("mix")

	// IPv6: the XOR of the eight address words; the ports only when the next header is
	// TCP or UDP (extension headers: the addresses alone).
	a.label("v6")
	ld(offV6Addrs, 4)
	for off := uint32(offV6Addrs + 4); off < offV6Ports; off += 4 {
		a.emit(bpf.TAX{})
		ld(off, 4)
		xorX()
	}
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	ld(offV6Next, 1)
	a.jeq(protoTCP, "v6ports", "")
	a.jeq(protoUDP, "v6ports", "noports")
	a.label("v6ports")
	frameLen()
	a.jge(offV6Ports+4, "v6load", "noports")
	a.label("v6load")
	ld(offV6Ports, 2)
	a.emit(bpf.TAX{})
	ld(offV6Ports+2, 2)
	xorX()
	a.emit(bpf.TAX{})
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	xorX()
	a.ja("mix")

	a.label("noports")
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: 0})

	// Symmetric.Mix: h = addrs ^ ports ^ seed, then the 32-bit finaliser.
	a.label("mix")
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpXor, Val: seed})
	xorShift := func(s uint32) {
		a.emit(bpf.TAX{})
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: s})
		xorX()
	}
	xorShift(16)
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0x7feb352d})
	xorShift(15)
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0x846ca68b})
	xorShift(16)
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(n)})
	a.emit(bpf.RetA{})

	a.label("ret0")
	a.emit(bpf.RetConstant{Val: 0})
	return a.resolve()
}

// assembler lays out a program with symbolic forward jumps; "" as a target means the next
// instruction.
type assembler struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at          int
	true, false string
}

func (a *assembler) emit(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *assembler) label(name string) { a.labels[name] = len(a.ins) }

func (a *assembler) jump(i bpf.Instruction, t, f string) {
	a.fixups = append(a.fixups, fixup{at: len(a.ins), true: t, false: f})
	a.emit(i)
}

func (a *assembler) jeq(v uint32, t, f string) {
	a.jump(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v}, t, f)
}

func (a *assembler) jset(v uint32, t, f string) {
	a.jump(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: v}, t, f)
}

func (a *assembler) jge(v uint32, t, f string) {
	a.jump(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: v}, t, f)
}

func (a *assembler) jgeX(t, f string) {
	a.jump(bpf.JumpIfX{Cond: bpf.JumpGreaterOrEqual}, t, f)
}

func (a *assembler) ja(t string) { a.jump(bpf.Jump{}, t, "") }

func (a *assembler) skip(at int, label string) (uint8, error) {
	if label == "" {
		return 0, nil
	}
	to, ok := a.labels[label]
	d := to - at - 1
	if !ok || d < 0 || d > 255 {
		return 0, fmt.Errorf("afpacket: steering program: bad jump to %q from %d", label, at)
	}
	return uint8(d), nil
}

func (a *assembler) resolve() ([]bpf.Instruction, error) {
	for _, f := range a.fixups {
		t, err := a.skip(f.at, f.true)
		if err != nil {
			return nil, err
		}
		e, err := a.skip(f.at, f.false)
		if err != nil {
			return nil, err
		}
		switch i := a.ins[f.at].(type) {
		case bpf.JumpIf:
			i.SkipTrue, i.SkipFalse = t, e
			a.ins[f.at] = i
		case bpf.JumpIfX:
			i.SkipTrue, i.SkipFalse = t, e
			a.ins[f.at] = i
		case bpf.Jump:
			i.Skip = uint32(t)
			a.ins[f.at] = i
		}
	}
	return a.ins, nil
}
