package afpacket

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a message header and the length the kernel moved. Go pads
// the struct to Msghdr's alignment as C does (64 bytes on 64-bit machines, 32 on 32-bit).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// recvmmsg receives up to len(msgs) messages without waiting (x/sys has no wrapper).
func recvmmsg(fd int, msgs []mmsghdr) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])),
		uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// sendmmsg sends up to len(msgs) messages without waiting.
func sendmmsg(fd int, msgs []mmsghdr) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])),
		uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// kick is send(fd, NULL, 0, MSG_DONTWAIT): the transmit ring's frames marked
// TP_STATUS_SEND_REQUEST go out.
func kick(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// setsockopt sets an option from raw bytes (fanout_args).
func setsockopt(fd, level, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

// packetStats reads and resets the socket's PACKET_STATISTICS: frames seen (drops
// included), frames dropped, and for TPACKET_V3 the times the ring froze.
func packetStats(fd int) (packets, drops, freezes uint32, err error) {
	var st [3]uint32 // struct tpacket_stats_v3; struct tpacket_stats is its first two words
	n := uint32(unsafe.Sizeof(st))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0, 0, 0, e
	}
	if n < 12 {
		st[2] = 0
	}
	return st[0], st[1], st[2], nil
}

// u32 points at a 32-bit word of the mapped ring, for atomic access to a status field.
func u32(mem []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

// htons returns v in network byte order, as a sockaddr_ll's protocol field wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
