package tun

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// The virtio-net header (struct virtio_net_hdr, include/uapi/linux/virtio_net.h) that
// IFF_VNET_HDR puts in front of every packet, 10 bytes (the device's default
// TUNSETVNETHDRSZ), in the legacy virtio byte order: the host's.
const (
	vnetHdrLen = 10

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum is partial
	vnetFlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the checksum was checked

	vnetGSONone = 0    // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOECN  = 0x80 // VIRTIO_NET_HDR_GSO_ECN, or'ed into the type
)

// vnetRx is what a received header says about its packet.
func vnetRx(h []byte) (flags dpdkshim.Flags, gsoSize uint16) {
	if len(h) < vnetHdrLen {
		return 0, 0
	}
	if h[0]&(vnetFlagNeedsCsum|vnetFlagDataValid) != 0 {
		// NEEDS_CSUM: the packet comes from this host with its checksum left to the
		// device (CHECKSUM_PARTIAL); DATA_VALID: the kernel checked it.
		flags = dpdkshim.CsumVerified
	}
	if h[1]&^vnetGSOECN != vnetGSONone {
		gsoSize = binary.NativeEndian.Uint16(h[4:])
	}
	return flags, gsoSize
}

// putVnetTx writes the header for transmitting frame f of packet p: NEEDS_CSUM with p's
// checksum offsets for a TxCsum packet (the kernel completes the checksum), zero otherwise.
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
