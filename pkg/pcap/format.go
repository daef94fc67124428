package pcap

import "errors"

// LinkTypeEthernet is the link type of Ethernet II frames (LINKTYPE_ETHERNET).
const LinkTypeEthernet = 1

// LinkTypeRaw is the link type of bare IPv4 and IPv6 packets, as a TUN device carries them
// (LINKTYPE_RAW).
const LinkTypeRaw = 101

// MaxSnapLen is the largest record a Reader accepts, libpcap's MAXIMUM_SNAPLEN; it bounds
// the memory a corrupt or hostile file can make the Reader allocate.
const MaxSnapLen = 262144

// File magics: the first four bytes of a file as written in its own byte order.
const (
	magicMicros = 0xa1b2c3d4 // magicMicros marks microsecond timestamps.
	magicNanos  = 0xa1b23c4d // magicNanos marks nanosecond timestamps.
)

const (
	fileHeaderLen   = 24
	recordHeaderLen = 16
	versionMajor    = 2
	versionMinor    = 4
)

// Errors a Reader or Writer returns.
var (
	// ErrBadMagic means the file does not start with a classic pcap magic number.
	ErrBadMagic = errors.New("pcap: not a classic pcap file")
	// ErrRecordTooLarge means a record is longer than MaxSnapLen.
	ErrRecordTooLarge = errors.New("pcap: record longer than MaxSnapLen")
	// ErrSnapLen means NewWriter was given a snap length outside 1..MaxSnapLen.
	ErrSnapLen = errors.New("pcap: snap length out of range")
)
