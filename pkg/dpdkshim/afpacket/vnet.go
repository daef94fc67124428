package afpacket

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// The virtio-net header (struct virtio_net_hdr, include/uapi/linux/virtio_net.h) that
// PACKET_VNET_HDR puts in front of every frame, in the host's byte order (the kernel's
// legacy virtio endianness, little-endian on little-endian machines).
const (
	vnetHdrLen = 10

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum is partial
	vnetFlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the checksum was checked

	vnetGSONone = 0    // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOECN  = 0x80 // VIRTIO_NET_HDR_GSO_ECN, or'ed into the type
)

// vnetRx is what a received virtio-net header says about its frame.
func vnetRx(h []byte) (flags dpdkshim.Flags, gsoSize uint16) {
	if len(h) < vnetHdrLen {
		return 0, 0
	}
	if h[0]&(vnetFlagNeedsCsum|vnetFlagDataValid) != 0 {
		// NEEDS_CSUM: the frame never left this host with its checksum finished (Linux
		// CHECKSUM_PARTIAL); DATA_VALID: the kernel or the NIC checked it.
		flags = dpdkshim.CsumVerified
	}
	if h[1]&^vnetGSOECN != vnetGSONone {
		gsoSize = binary.NativeEndian.Uint16(h[4:])
	}
	return flags, gsoSize
}

// putVnetTx writes the virtio-net header for transmitting p: NEEDS_CSUM with p's checksum
// offsets for a TxCsum packet, zero otherwise.
func putVnetTx(h []byte, p *dpdkshim.Packet) {
	start, field, ok := p.TxCsumOffsets()
	if !ok || start < 0 || field < start || field+2 > p.Len() || field+2 > 0xffff {
		clear(h[:vnetHdrLen])
		return
	}
	h[0], h[1] = vnetFlagNeedsCsum, vnetGSONone
	binary.NativeEndian.PutUint16(h[2:], uint16(field+2)) // hdr_len: linear up to the field
	binary.NativeEndian.PutUint16(h[4:], 0)
	binary.NativeEndian.PutUint16(h[6:], uint16(start))
	binary.NativeEndian.PutUint16(h[8:], uint16(field-start))
}
