// Package vnet reads and writes the virtio-net header (struct virtio_net_hdr,
// include/uapi/linux/virtio_net.h) that Linux puts in front of every frame of an AF_PACKET
// socket with PACKET_VNET_HDR and every packet of a TUN device with IFF_VNET_HDR: 10 bytes
// (TUNSETVNETHDRSZ's default), in the legacy virtio byte order, the host's. Both backends
// share it.
package vnet

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// The header's length and its flags and GSO types.
const (
	HdrLen = 10

	FlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum is partial
	FlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the checksum was checked

	GSONone = 0    // VIRTIO_NET_HDR_GSO_NONE
	GSOECN  = 0x80 // VIRTIO_NET_HDR_GSO_ECN, or'ed into the type
)

// Rx is what a received header says about its packet: CsumVerified when the checksum is
// partial (NEEDS_CSUM: the packet never left this host with its checksum finished, Linux's
// CHECKSUM_PARTIAL) or was checked (DATA_VALID: by the kernel or the NIC), and the GSO
// segment size of a super-packet (0 for none).
func Rx(h []byte) (flags dpdkshim.Flags, gsoSize uint16) {
	if len(h) < HdrLen {
		return 0, 0
	}
	if h[0]&(FlagNeedsCsum|FlagDataValid) != 0 {
		flags = dpdkshim.CsumVerified
	}
	if h[1]&^GSOECN != GSONone {
		gsoSize = binary.NativeEndian.Uint16(h[4:])
	}
	return flags, gsoSize
}

// PutTx writes the header for transmitting p: NEEDS_CSUM with p's checksum offsets for a
// TxCsum packet (the kernel completes the checksum), zero otherwise.
func PutTx(h []byte, p *dpdkshim.Packet) {
	start, field, ok := p.TxCsumOffsets()
	if !ok || start < 0 || field < start || field+2 > p.Len() || field+2 > 0xffff {
		clear(h[:HdrLen])
		return
	}
	h[0], h[1] = FlagNeedsCsum, GSONone
	binary.NativeEndian.PutUint16(h[2:], uint16(field+2)) // hdr_len: linear up to the field
	binary.NativeEndian.PutUint16(h[4:], 0)
	binary.NativeEndian.PutUint16(h[6:], uint16(start))
	binary.NativeEndian.PutUint16(h[8:], uint16(field-start))
}
