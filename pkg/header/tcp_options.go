package header

import "encoding/binary"

// TCP option kinds and lengths (RFC 9293 §3.2, RFC 7323 §2-3, RFC 2018 §2-3).
const (
	tcpOptEOL           = 0
	tcpOptNOP           = 1
	tcpOptMSS           = 2
	tcpOptWScale        = 3
	tcpOptSACKPermitted = 4
	tcpOptSACK          = 5
	tcpOptTimestamps    = 8

	tcpOptMSSLen           = 4
	tcpOptWScaleLen        = 3
	tcpOptSACKPermittedLen = 2
	tcpOptTimestampsLen    = 10
	tcpOptSACKBaseLen      = 2
	tcpOptSACKBlockLen     = 8
)

// TCPDefaultMSS is the send MSS to assume when a SYN carries no MSS option (RFC 9293 §3.7.1).
const TCPDefaultMSS = 536

// TCPMaxWScale is the largest window shift a receiver honours (RFC 7323 §2.3).
const TCPMaxWScale = 14

// MaxSACKBlocks is the most SACK blocks TCPOptions holds: four fit in 40 option bytes alone.
const MaxSACKBlocks = 4

// SACKBlock is one selective acknowledgment block: the bytes [Start, End) were received.
type SACKBlock struct {
	Start uint32 // Start is the first sequence number of the block.
	End   uint32 // End is the sequence number just past the block.
}

// TCPOptions holds the TCP options shardstack understands, in fixed fields so that parsing
// and encoding never allocate.
type TCPOptions struct {
	MSS           uint16                   // MSS is 0 when absent (callers apply TCPDefaultMSS).
	WScale        int8                     // WScale is -1 when absent, else the shift as sent (callers clamp to TCPMaxWScale).
	SACKPermitted bool                     // SACKPermitted is the SACK-permitted option (RFC 2018 §2).
	TS            bool                     // TS reports that the timestamps option is present.
	TSVal         uint32                   // TSVal is the timestamp value.
	TSEcr         uint32                   // TSEcr is the timestamp echo reply.
	NumSACK       int                      // NumSACK is the number of valid entries in SACK.
	SACK          [MaxSACKBlocks]SACKBlock // SACK holds the SACK blocks in the order sent.
}

// ParseTCPOptions parses the option bytes b (TCP.Options) into o, resetting o first (so
// WScale is -1 and SACK is zeroed when absent). NOP is skipped and EOL ends the list;
// unknown kinds are skipped by their length. A length below 2 or running past the end of b,
// a kind byte with no length byte after it, or a known option with the wrong length is
// ErrBadOption; o then holds the options before the bad one. When an option repeats, the
// last one wins. A window shift above 127 is stored as 127: any shift above 14 means 14
// (RFC 7323 §2.3), so nothing is lost.
//
// Linux (tcp_parse_options) silently ignores a known option with a wrong length; we report
// it and leave the choice to the caller. ParseTCPOptions never allocates and never panics.
func ParseTCPOptions(b []byte, o *TCPOptions) error {
	*o = TCPOptions{WScale: -1}
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case tcpOptEOL:
			return nil
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(b) {
			return ErrBadOption
		}
		n := int(b[i+1])
		if n < 2 || n > len(b)-i {
			return ErrBadOption
		}
		body := b[i+2 : i+n]
		switch kind {
		case tcpOptMSS:
			if n != tcpOptMSSLen {
				return ErrBadOption
			}
			o.MSS = binary.BigEndian.Uint16(body)
		case tcpOptWScale:
			if n != tcpOptWScaleLen {
				return ErrBadOption
			}
			o.WScale = int8(min(body[0], 127))
		case tcpOptSACKPermitted:
			if n != tcpOptSACKPermittedLen {
				return ErrBadOption
			}
			o.SACKPermitted = true
		case tcpOptTimestamps:
			if n != tcpOptTimestampsLen {
				return ErrBadOption
			}
			o.TS = true
			o.TSVal = binary.BigEndian.Uint32(body[0:4])
			o.TSEcr = binary.BigEndian.Uint32(body[4:8])
		case tcpOptSACK:
			// RFC 2018 §3: length 2 + 8n; more than four blocks cannot fit in a TCP header.
			blocks := (n - tcpOptSACKBaseLen) / tcpOptSACKBlockLen
			if blocks < 1 || blocks > MaxSACKBlocks || (n-tcpOptSACKBaseLen)%tcpOptSACKBlockLen != 0 {
				return ErrBadOption
			}
			o.NumSACK = blocks
			o.SACK = [MaxSACKBlocks]SACKBlock{}
			for j := range blocks {
				p := body[j*tcpOptSACKBlockLen:]
				o.SACK[j] = SACKBlock{
					Start: binary.BigEndian.Uint32(p[0:4]),
					End:   binary.BigEndian.Uint32(p[4:8]),
				}
			}
		}
		i += n
	}
	return nil
}

// sackBlocksToSend returns how many of o's SACK blocks EncodeTCPOptions writes when the
// options before them take used bytes: as many as fit in MaxTCPOptionsLen, first ones first,
// as Linux's tcp_established_options limits them by the remaining space.
func (o *TCPOptions) sackBlocksToSend(used int) int {
	n := min(max(o.NumSACK, 0), MaxSACKBlocks)
	room := (MaxTCPOptionsLen - used - 4) / tcpOptSACKBlockLen
	return max(min(n, room), 0)
}

// lenBeforeSACK returns the bytes EncodeTCPOptions writes before the SACK blocks.
func (o *TCPOptions) lenBeforeSACK() int {
	n := 0
	if o.MSS != 0 {
		n += 4
	}
	switch {
	case o.TS:
		n += 12 // SACK-permitted, if set, shares the word before the timestamps
	case o.SACKPermitted:
		n += 4
	}
	if o.WScale >= 0 {
		n += 4
	}
	return n
}

// EncodedLen returns the number of bytes EncodeTCPOptions writes for o, a multiple of 4 and
// at most MaxTCPOptionsLen.
func (o *TCPOptions) EncodedLen() int {
	n := o.lenBeforeSACK()
	if s := o.sackBlocksToSend(n); s > 0 {
		n += 4 + s*tcpOptSACKBlockLen
	}
	return n
}

// EncodeTCPOptions writes o into b in the layout Linux's tcp_options_write uses, 32-bit
// aligned, and returns the length written (EncodedLen). In order:
//
//	MSS                      02 04 mm mm                        when MSS != 0
//	SACK-permitted + TS      04 02 08 0a vvvvvvvv eeeeeeee      when both
//	TS                       01 01 08 0a vvvvvvvv eeeeeeee      TS alone
//	SACK-permitted           01 01 04 02                        SACK-permitted alone
//	window scale             01 03 03 ss                        when WScale >= 0
//	SACK blocks              01 01 05 ll (ssssssss eeeeeeee)*   when NumSACK > 0
//
// SYNs set MSS, WScale, SACKPermitted and TS; later segments TS and SACK blocks. SACK blocks
// that do not fit in MaxTCPOptionsLen are dropped from the end (at most 3 fit beside TS).
// b must have len(b) >= o.EncodedLen(); MaxTCPOptionsLen always suffices.
func EncodeTCPOptions(b []byte, o *TCPOptions) int {
	total := o.EncodedLen()
	b = room(b, total)
	i := 0
	if o.MSS != 0 {
		b[i], b[i+1] = tcpOptMSS, tcpOptMSSLen
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += 4
	}
	switch {
	case o.TS:
		if o.SACKPermitted {
			b[i], b[i+1] = tcpOptSACKPermitted, tcpOptSACKPermittedLen
		} else {
			b[i], b[i+1] = tcpOptNOP, tcpOptNOP
		}
		b[i+2], b[i+3] = tcpOptTimestamps, tcpOptTimestampsLen
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	case o.SACKPermitted:
		b[i], b[i+1], b[i+2], b[i+3] = tcpOptNOP, tcpOptNOP, tcpOptSACKPermitted, tcpOptSACKPermittedLen
		i += 4
	}
	if o.WScale >= 0 {
		b[i], b[i+1], b[i+2], b[i+3] = tcpOptNOP, tcpOptWScale, tcpOptWScaleLen, uint8(o.WScale)
		i += 4
	}
	if s := o.sackBlocksToSend(i); s > 0 {
		b[i], b[i+1], b[i+2] = tcpOptNOP, tcpOptNOP, tcpOptSACK
		b[i+3] = uint8(tcpOptSACKBaseLen + s*tcpOptSACKBlockLen)
		i += 4
		for j := range s {
			binary.BigEndian.PutUint32(b[i:], o.SACK[j].Start)
			binary.BigEndian.PutUint32(b[i+4:], o.SACK[j].End)
			i += tcpOptSACKBlockLen
		}
	}
	return i
}
