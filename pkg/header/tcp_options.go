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
// WScale is -1 and SACK is zeroed when absent), and checks them strictly. NOP is skipped
// and EOL ends the list; unknown kinds are skipped by their length. A length below 2 or
// running past the end of b, a kind byte with no length byte after it, or a known option
// with the wrong length is ErrBadOption; o then holds the options before the bad one. When
// an option repeats, the last one wins, except that an MSS of 0 is ignored (Linux
// tcp_parse_options does not take it). A window shift above 127 is stored as 127: any
// shift above 14 means 14 (RFC 7323 §2.3), so nothing is lost.
//
// The stack does not use it on received segments: see ParseTCPOptionsTolerant. It is the
// checker for code that must know that options are well formed (the encoder's round trip,
// captures, fuzzing). It never allocates and never panics.
func ParseTCPOptions(b []byte, o *TCPOptions) error {
	return parseTCPOptions(b, o, false)
}

// ParseTCPOptionsTolerant parses b into o the way Linux's tcp_parse_options reads a
// segment's options, so that a segment is processed with whatever could be read: a known
// option with the wrong length (MSS of length 3, timestamps of length 9) is skipped by its
// length and ignored; a length below 2, a length running past the end of b, or a kind byte
// with no length byte after it ends the parse, keeping the options before it; a SACK option
// of 2+8n bytes with n > 4 keeps its first four blocks (tcp_sacktag_write_queue's
// TCP_NUM_SACKS). Everything else is as for ParseTCPOptions. It returns ErrBadOption when
// it skipped or stopped at something malformed and nil otherwise; o is valid either way.
// It never allocates and never panics.
func ParseTCPOptionsTolerant(b []byte, o *TCPOptions) error {
	return parseTCPOptions(b, o, true)
}

// parseTCPOptions is both parsers: tolerant skips a known option of the wrong length (and
// caps SACK blocks) where strict stops with ErrBadOption.
func parseTCPOptions(b []byte, o *TCPOptions, tolerant bool) error {
	*o = TCPOptions{WScale: -1}
	var bad error
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case tcpOptEOL:
			return bad
		case tcpOptNOP:
			i++
			continue
		}
		// Linux: "if (length < 2) return;", "silly options" (opsize < 2) and partial
		// options (opsize > length) end the parse in both modes.
		if i+1 >= len(b) {
			return ErrBadOption
		}
		n := int(b[i+1])
		if n < 2 || n > len(b)-i {
			return ErrBadOption
		}
		body := b[i+2 : i+n]
		i += n
		if !optionLenOK(kind, n) {
			if !tolerant {
				return ErrBadOption
			}
			bad = ErrBadOption // tcp_parse_options skips it by its length
			continue
		}
		switch kind {
		case tcpOptMSS:
			if m := binary.BigEndian.Uint16(body); m != 0 {
				o.MSS = m
			}
		case tcpOptWScale:
			o.WScale = int8(min(body[0], 127))
		case tcpOptSACKPermitted:
			o.SACKPermitted = true
		case tcpOptTimestamps:
			o.TS = true
			o.TSVal = binary.BigEndian.Uint32(body[0:4])
			o.TSEcr = binary.BigEndian.Uint32(body[4:8])
		case tcpOptSACK:
			blocks := (n - tcpOptSACKBaseLen) / tcpOptSACKBlockLen
			if blocks > MaxSACKBlocks {
				if !tolerant {
					return ErrBadOption
				}
				bad = ErrBadOption
				blocks = MaxSACKBlocks
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
	}
	return bad
}

// optionLenOK reports whether a known option has the length its RFC gives it (unknown
// kinds take any length of 2 or more). SACK is 2+8n bytes with n >= 1 (RFC 2018 §3).
func optionLenOK(kind byte, n int) bool {
	switch kind {
	case tcpOptMSS:
		return n == tcpOptMSSLen
	case tcpOptWScale:
		return n == tcpOptWScaleLen
	case tcpOptSACKPermitted:
		return n == tcpOptSACKPermittedLen
	case tcpOptTimestamps:
		return n == tcpOptTimestampsLen
	case tcpOptSACK:
		return n >= tcpOptSACKBaseLen+tcpOptSACKBlockLen && (n-tcpOptSACKBaseLen)%tcpOptSACKBlockLen == 0
	}
	return true
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
	n := o.EncodedLen()
	encodeOptionWords(room(b, n), o)
	return n
}
