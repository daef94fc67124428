package tun

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DeviceStats are the TUN device's own counters, as `ip -s link` shows them; from the
// device's side, "tx" is towards the port's descriptors and "rx" from them.
type DeviceStats struct {
	// TxPackets counts the packets the port read from the device.
	TxPackets uint64
	// TxDropped counts the packets the kernel dropped because the queue they were
	// steered to was full (the port read too slowly) or had no reader.
	TxDropped uint64
	// RxPackets counts the packets the port wrote that the kernel took.
	RxPackets uint64
	// RxDropped counts the packets the port wrote that the kernel dropped (not IPv4 or
	// IPv6, the device down).
	RxDropped uint64
}

// rtnl is a NETLINK_ROUTE socket of the port's namespace, made at Open (a socket keeps the
// namespace it was made in, whichever thread uses it later).
type rtnl struct {
	fd  int
	seq uint32
	buf []byte
}

func newRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	tv := unix.Timeval{Sec: 1}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &rtnl{fd: fd, buf: make([]byte, 1<<15)}, nil
}

func (r *rtnl) close() { unix.Close(r.fd) }

// linkStats asks for one link's IFLA_STATS64 (struct rtnl_link_stats64).
func (r *rtnl) linkStats(ifindex int) (DeviceStats, error) {
	r.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg)
	h := (*unix.NlMsghdr)(unsafe.Pointer(&req[0]))
	h.Len, h.Type, h.Flags, h.Seq = uint32(len(req)), unix.RTM_GETLINK, unix.NLM_F_REQUEST, r.seq
	ifi := (*unix.IfInfomsg)(unsafe.Pointer(&req[unix.NLMSG_HDRLEN]))
	ifi.Family, ifi.Index = unix.AF_UNSPEC, int32(ifindex)
	if err := unix.Sendto(r.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return DeviceStats{}, err
	}
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if err != nil {
			return DeviceStats{}, err
		}
		msgs, err := syscall.ParseNetlinkMessage(r.buf[:n])
		if err != nil {
			return DeviceStats{}, err
		}
		for _, m := range msgs {
			if m.Header.Seq != r.seq {
				continue // an answer to an earlier request that timed out
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return DeviceStats{}, unix.Errno(-e)
					}
				}
				return DeviceStats{}, fmt.Errorf("RTM_GETLINK: an empty answer")
			case unix.RTM_NEWLINK:
				attrs, err := syscall.ParseNetlinkRouteAttr(&m)
				if err != nil {
					return DeviceStats{}, err
				}
				for _, a := range attrs {
					if a.Attr.Type == unix.IFLA_STATS64 && len(a.Value) >= 64 {
						u := func(i int) uint64 { return binary.NativeEndian.Uint64(a.Value[8*i:]) }
						// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors,
						// rx_dropped, tx_dropped, ...
						return DeviceStats{RxPackets: u(0), TxPackets: u(1), RxDropped: u(6), TxDropped: u(7)}, nil
					}
				}
				return DeviceStats{}, fmt.Errorf("RTM_GETLINK: no IFLA_STATS64")
			}
		}
	}
}
