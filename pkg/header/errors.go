package header

import "errors"

// Parse errors are package-level values so that parsing never allocates; compare with ==
// or errors.Is.
var (
	// ErrTruncated means the bytes end before the header (or a length it states) does.
	ErrTruncated = errors.New("header: truncated")
	// ErrVersion means the IP version field is not the one the parser handles.
	ErrVersion = errors.New("header: wrong IP version")
	// ErrHeaderLength means the IPv4 IHL is below 5 words.
	ErrHeaderLength = errors.New("header: bad IPv4 header length")
	// ErrTotalLength means an IP length field is smaller than the header or larger than the bytes.
	ErrTotalLength = errors.New("header: bad IP total length")
	// ErrChecksum means the IPv4 header checksum does not verify.
	ErrChecksum = errors.New("header: bad checksum")
	// ErrDataOffset means the TCP data offset is below 5 words or runs past the segment.
	ErrDataOffset = errors.New("header: bad TCP data offset")
	// ErrBadOption means a TCP option has a length below 2, runs past the options, or is a
	// known option with the wrong length.
	ErrBadOption = errors.New("header: bad TCP option")
	// ErrARPFormat means an ARP packet is not IPv4 over Ethernet.
	ErrARPFormat = errors.New("header: unsupported ARP hardware or protocol")
)
