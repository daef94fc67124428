package pcap

import (
	"encoding/binary"
	"errors"
	"io"
)

// Reader reads a classic pcap file with microsecond or nanosecond timestamps written in
// either byte order. It is not safe for concurrent use.
type Reader struct {
	r        io.Reader
	order    binary.ByteOrder
	tsScale  int64 // nanoseconds per timestamp fraction unit: 1000 or 1
	snaplen  uint32
	linkType uint32
	hdr      [recordHeaderLen]byte
	buf      []byte
}

// NewReader reads the file header from r and returns a Reader positioned at the first packet.
func NewReader(r io.Reader) (*Reader, error) {
	var h [fileHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	rd := &Reader{r: r}
	switch {
	case binary.LittleEndian.Uint32(h[0:]) == magicMicros:
		rd.order, rd.tsScale = binary.LittleEndian, 1000
	case binary.LittleEndian.Uint32(h[0:]) == magicNanos:
		rd.order, rd.tsScale = binary.LittleEndian, 1
	case binary.BigEndian.Uint32(h[0:]) == magicMicros:
		rd.order, rd.tsScale = binary.BigEndian, 1000
	case binary.BigEndian.Uint32(h[0:]) == magicNanos:
		rd.order, rd.tsScale = binary.BigEndian, 1
	default:
		return nil, ErrBadMagic
	}
	rd.snaplen = rd.order.Uint32(h[16:])
	rd.linkType = rd.order.Uint32(h[20:])
	return rd, nil
}

// LinkType returns the link type from the file header (LinkTypeEthernet, ...).
func (r *Reader) LinkType() uint32 { return r.linkType }

// SnapLen returns the snap length from the file header.
func (r *Reader) SnapLen() uint32 { return r.snaplen }

// Next returns the next packet's timestamp in nanoseconds since the Unix epoch and its
// captured bytes. data is valid only until the next call; copy it to keep it. At the end of
// the file Next returns io.EOF, and io.ErrUnexpectedEOF for a file cut inside a record.
func (r *Reader) Next() (tsNanos int64, data []byte, err error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return 0, nil, err // io.EOF only when no byte of the record was there
	}
	sec := int64(r.order.Uint32(r.hdr[0:]))
	frac := int64(r.order.Uint32(r.hdr[4:]))
	incl := r.order.Uint32(r.hdr[8:])
	if incl > MaxSnapLen {
		return 0, nil, ErrRecordTooLarge
	}
	if cap(r.buf) < int(incl) {
		r.buf = make([]byte, incl)
	}
	data = r.buf[:incl]
	if _, err := io.ReadFull(r.r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return sec*1e9 + frac*r.tsScale, data, nil
}
