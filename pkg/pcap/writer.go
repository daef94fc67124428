package pcap

import (
	"encoding/binary"
	"io"
)

// Writer writes a classic pcap file with nanosecond timestamps, in little-endian byte order.
// It is not safe for concurrent use; wrap w in a bufio.Writer for many small packets.
type Writer struct {
	w       io.Writer
	snaplen int
	hdr     [recordHeaderLen]byte // reused per packet so that WritePacket does not allocate
}

// NewWriter writes the file header to w and returns a Writer for packets of linkType
// (LinkTypeEthernet, ...) that keeps at most snaplen bytes of each.
func NewWriter(w io.Writer, snaplen int, linkType uint32) (*Writer, error) {
	if snaplen <= 0 || snaplen > MaxSnapLen {
		return nil, ErrSnapLen
	}
	var h [fileHeaderLen]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], magicNanos)
	le.PutUint16(h[4:], versionMajor)
	le.PutUint16(h[6:], versionMinor)
	// h[8:16]: thiszone and sigfigs are 0, as every modern writer leaves them.
	le.PutUint32(h[16:], uint32(snaplen))
	le.PutUint32(h[20:], linkType)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w, snaplen: snaplen}, nil
}

// WritePacket records data captured at tsNanos nanoseconds since the Unix epoch, truncated
// to the snap length (the record keeps the original length). It does not allocate.
func (w *Writer) WritePacket(tsNanos int64, data []byte) error {
	sec, nsec := tsNanos/1e9, tsNanos%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	incl := min(len(data), w.snaplen)
	le := binary.LittleEndian
	le.PutUint32(w.hdr[0:], uint32(sec))
	le.PutUint32(w.hdr[4:], uint32(nsec))
	le.PutUint32(w.hdr[8:], uint32(incl))
	le.PutUint32(w.hdr[12:], uint32(len(data)))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.w.Write(data[:incl])
	return err
}
