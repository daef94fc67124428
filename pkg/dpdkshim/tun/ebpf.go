package tun

import (
	"encoding/binary"
	"fmt"
)

// A hand-assembled eBPF program: the steering program is 75 instructions, too
// few to justify an eBPF library, and the kernel checks it anyway (the verifier).

// insn is struct bpf_insn: an opcode, the destination and source registers (four bits
// each, in the order the machine lays out C bit-fields), a 16-bit offset and a 32-bit
// immediate.
type insn struct {
	code uint8
	regs uint8
	off  int16
	imm  int32
}

// Instruction classes, sizes, modes and operations (include/uapi/linux/bpf_common.h, bpf.h).
const (
	bpfLD    = 0x00
	bpfLDX   = 0x01
	bpfALU   = 0x04 // 32-bit arithmetic: every result is zero-extended to 64 bits
	bpfJMP   = 0x05
	bpfALU64 = 0x07

	bpfW = 0x00
	bpfH = 0x08
	bpfB = 0x10

	bpfABS = 0x20
	bpfIND = 0x40
	bpfMEM = 0x60

	bpfK = 0x00
	bpfX = 0x08

	aluAdd = 0x00
	aluMul = 0x20
	aluAnd = 0x50
	aluLsh = 0x60
	aluRsh = 0x70
	aluMod = 0x90
	aluXor = 0xa0
	aluMov = 0xb0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJSET = 0x40
	jmpExit = 0x90
)

// Registers: r0 is the result (and where packet loads land), r1 the context on entry, r1-r5
// scratch that packet loads clobber, r6-r9 kept across them (r6 must hold the context for
// the legacy packet loads).
const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
	r6
	r7
	r8
	r9
)

// skbLenOff is offsetof(struct __sk_buff, len): the packet's length from its network header.
const skbLenOff = 0

// bigEndian reports whether C lays out the register bit-fields high nibble first.
var bigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

func mkInsn(code uint8, dst, src int, off int16, imm int32) insn {
	regs := uint8(dst&0xf) | uint8(src&0xf)<<4
	if bigEndian {
		regs = uint8(dst&0xf)<<4 | uint8(src&0xf)
	}
	return insn{code: code, regs: regs, off: off, imm: imm}
}

// ebpfAsm lays out a program with symbolic forward jumps.
type ebpfAsm struct {
	ins    []insn
	labels map[string]int
	fixups map[int]string // instruction index -> jump target label
}

func newAsm() *ebpfAsm { return &ebpfAsm{labels: map[string]int{}, fixups: map[int]string{}} }

func (a *ebpfAsm) emit(i insn)       { a.ins = append(a.ins, i) }
func (a *ebpfAsm) label(name string) { a.labels[name] = len(a.ins) }
func (a *ebpfAsm) ldAbs(size uint8, off int32) {
	a.emit(mkInsn(bpfLD|bpfABS|size, 0, 0, 0, off))
}
func (a *ebpfAsm) ldInd(size uint8, reg int, off int32) {
	a.emit(mkInsn(bpfLD|bpfIND|size, 0, reg, 0, off))
}
func (a *ebpfAsm) ldxW(dst, src int, off int16) { a.emit(mkInsn(bpfLDX|bpfMEM|bpfW, dst, src, off, 0)) }
func (a *ebpfAsm) alu32K(op uint8, dst int, imm uint32) {
	a.emit(mkInsn(bpfALU|op|bpfK, dst, 0, 0, int32(imm)))
}
func (a *ebpfAsm) alu32X(op uint8, dst, src int) { a.emit(mkInsn(bpfALU|op|bpfX, dst, src, 0, 0)) }
func (a *ebpfAsm) mov64X(dst, src int)           { a.emit(mkInsn(bpfALU64|aluMov|bpfX, dst, src, 0, 0)) }
func (a *ebpfAsm) add64K(dst int, imm int32)     { a.emit(mkInsn(bpfALU64|aluAdd|bpfK, dst, 0, 0, imm)) }
func (a *ebpfAsm) jmpK(op uint8, dst int, imm uint32, to string) {
	a.fixups[len(a.ins)] = to
	a.emit(mkInsn(bpfJMP|op|bpfK, dst, 0, 0, int32(imm)))
}
func (a *ebpfAsm) jmpX(op uint8, dst, src int, to string) {
	a.fixups[len(a.ins)] = to
	a.emit(mkInsn(bpfJMP|op|bpfX, dst, src, 0, 0))
}
func (a *ebpfAsm) ja(to string) { a.jmpK(jmpJA, 0, 0, to) }
func (a *ebpfAsm) exit()        { a.emit(mkInsn(bpfJMP|jmpExit, 0, 0, 0, 0)) }

func (a *ebpfAsm) resolve() ([]insn, error) {
	for at, name := range a.fixups {
		to, ok := a.labels[name]
		if d := to - at - 1; !ok || d < 0 || d > 0x7fff {
			return nil, fmt.Errorf("tun: steering program: bad jump to %q from %d", name, at)
		} else {
			a.ins[at].off = int16(d)
		}
	}
	return a.ins, nil
}

// Offsets in the IP packet the program reads (it sees the packet from its IP header, as
// the TUN device hands it to the program: the device has no link header).
const (
	offV4Frag  = 6
	offV4Proto = 9
	offV4Src   = 12
	offV4Dst   = 16
	offV6Next  = 6
	offV6Addrs = 8
	offV6Ports = 40
	protoTCP   = 6
	protoUDP   = 17
)

// steerProgram returns the eBPF socket-filter program that computes
// dpdkshim.Symmetric{seed}.IPQueue(packet, n): the version nibble picks IPv4 or IPv6; the
// addresses are XORed, and the ports too for TCP and UDP that is not an IPv4 fragment nor
// behind IPv6 extension headers; Symmetric.Mix finishes, reduced modulo n. The kernel takes
// the program's result modulo the number of queues (tun_ebpf_select_queue), which leaves a
// result below n alone.
//
// A legacy packet load (BPF_ABS, BPF_IND) beyond the packet ends the program with the
// result 0; the program relies on that exactly where IPQueue returns 0 for a packet too
// short for its addresses, and checks the length where IPQueue falls back to the
// addresses alone. Registers: r8 holds the XORed addresses, r9 the XORed ports, r7 the
// first byte and then the IPv4 header length.
func steerProgram(seed uint32, n int) ([]insn, error) {
	if n < 1 {
		n = 1
	}
	a := newAsm()
	a.mov64X(r6, r1) // the context, for the packet loads
	a.ldAbs(bpfB, 0)
	a.alu32X(aluMov, r7, r0)
	a.alu32K(aluRsh, r0, 4)
	a.jmpK(jmpJEQ, r0, 4, "v4")
	a.jmpK(jmpJEQ, r0, 6, "v6")
	a.ja("ret0")

	a.label("v4")
	a.ldAbs(bpfW, offV4Src)
	a.alu32X(aluMov, r8, r0)
	a.ldAbs(bpfW, offV4Dst) // a packet shorter than an IPv4 header ends here, with 0
	a.alu32X(aluXor, r8, r0)
	a.alu32K(aluMov, r9, 0)
	a.ldAbs(bpfB, offV4Proto)
	a.jmpK(jmpJEQ, r0, protoTCP, "v4ports")
	a.jmpK(jmpJEQ, r0, protoUDP, "v4ports")
	a.ja("mix")
	a.label("v4ports")
	a.ldAbs(bpfH, offV4Frag)
	a.jmpK(jmpJSET, r0, 0x3fff, "mix") // a fragment: MF or an offset
	a.alu32K(aluAnd, r7, 0xf)
	a.alu32K(aluLsh, r7, 2) // the header length, whatever IHL says (as IPQueue)
	a.ldxW(r0, r6, skbLenOff)
	a.mov64X(r2, r7)
	a.add64K(r2, 4)
	a.jmpX(jmpJGT, r2, r0, "mix") // the ports end beyond the packet
	a.ldInd(bpfH, r7, 0)
	a.alu32X(aluMov, r9, r0)
	a.ldInd(bpfH, r7, 2)
	a.alu32X(aluXor, r9, r0)
	a.ja("mix")

	a.label("v6")
	a.ldAbs(bpfW, offV6Addrs)
	a.alu32X(aluMov, r8, r0)
	for off := int32(offV6Addrs + 4); off < offV6Ports; off += 4 {
		a.ldAbs(bpfW, off) // a packet shorter than an IPv6 header ends here, with 0
		a.alu32X(aluXor, r8, r0)
	}
	a.alu32K(aluMov, r9, 0)
	a.ldAbs(bpfB, offV6Next)
	a.jmpK(jmpJEQ, r0, protoTCP, "v6ports")
	a.jmpK(jmpJEQ, r0, protoUDP, "v6ports")
	a.ja("mix")
	a.label("v6ports")
	a.ldxW(r0, r6, skbLenOff)
	a.jmpK(jmpJGT, r0, offV6Ports+3, "v6load")
	a.ja("mix")
	a.label("v6load")
	a.ldAbs(bpfH, offV6Ports)
	a.alu32X(aluMov, r9, r0)
	a.ldAbs(bpfH, offV6Ports+2)
	a.alu32X(aluXor, r9, r0)

	// Symmetric.Mix: h = addrs ^ ports ^ seed, then the 32-bit finaliser, modulo n.
	a.label("mix")
	a.alu32X(aluMov, r0, r8)
	a.alu32X(aluXor, r0, r9)
	a.alu32K(aluXor, r0, seed)
	xorShift := func(s uint32) {
		a.alu32X(aluMov, r1, r0)
		a.alu32K(aluRsh, r1, s)
		a.alu32X(aluXor, r0, r1)
	}
	xorShift(16)
	a.alu32K(aluMul, r0, 0x7feb352d)
	xorShift(15)
	a.alu32K(aluMul, r0, 0x846ca68b)
	xorShift(16)
	a.alu32K(aluMod, r0, uint32(n))
	a.exit()

	a.label("ret0")
	a.alu32K(aluMov, r0, 0)
	a.exit()
	return a.resolve()
}
