package header

import "errors"

// IPv4 option types (RFC 791 §3.1, RFC 1108, RFC 2113), the values Linux's
// ip_options_compile dispatches on.
const (
	IPv4OptEOL         uint8 = 0   // IPv4OptEOL ends the option list.
	IPv4OptNOP         uint8 = 1   // IPv4OptNOP is one byte of padding.
	IPv4OptRR          uint8 = 7   // IPv4OptRR is record route.
	IPv4OptTimestamp   uint8 = 68  // IPv4OptTimestamp is the internet timestamp.
	IPv4OptSecurity    uint8 = 130 // IPv4OptSecurity is the basic security option (RFC 1108).
	IPv4OptLSRR        uint8 = 131 // IPv4OptLSRR is loose source and record route.
	IPv4OptCIPSO       uint8 = 134 // IPv4OptCIPSO is the commercial IP security option.
	IPv4OptSID         uint8 = 136 // IPv4OptSID is the stream identifier.
	IPv4OptSSRR        uint8 = 137 // IPv4OptSSRR is strict source and record route.
	IPv4OptRouterAlert uint8 = 148 // IPv4OptRouterAlert is router alert (RFC 2113).
)

// ErrIPv4Option means the IPv4 options are malformed as Linux's ip_options_compile judges
// them: an option runs past the header, has a length below 2 (or below its kind's minimum),
// a pointer below its minimum, appears twice where it may appear once, or is CIPSO (which
// Linux refuses without a configured DOI).
var ErrIPv4Option = errors.New("header: bad IPv4 option")

// IPv4OptionSet records where the interesting options sit, as offsets into the options
// (0 when absent), the way Linux's struct ip_options does (srr, rr, ts, router_alert).
type IPv4OptionSet struct {
	SRR         int   // offset of LSRR or SSRR + 1 (0: none)
	SRRType     uint8 // IPv4OptLSRR or IPv4OptSSRR when SRR != 0
	RR          int   // offset of record route + 1
	TS          int   // offset of timestamp + 1
	RouterAlert int   // offset of router alert + 1
}

// SourceRouted reports whether the options carry LSRR or SSRR.
func (s *IPv4OptionSet) SourceRouted() bool { return s.SRR != 0 }

// ParseIPv4Options walks the options of an IPv4 header (IPv4.Options) the way Linux's
// ip_options_compile does for a received packet, and fills set. It reads nothing past
// opts and never allocates or panics; any error is ErrIPv4Option.
func ParseIPv4Options(opts []byte, set *IPv4OptionSet) error {
	*set = IPv4OptionSet{}
	for i := 0; i < len(opts); {
		typ := opts[i]
		switch typ {
		case IPv4OptEOL:
			return nil // the rest is padding
		case IPv4OptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return ErrIPv4Option
		}
		l := int(opts[i+1])
		if l < 2 || l > len(opts)-i {
			return ErrIPv4Option
		}
		o := opts[i : i+l]
		switch typ {
		case IPv4OptLSRR, IPv4OptSSRR:
			// Linux: length at least 3, pointer at least 4, one source route only.
			if l < 3 || o[2] < 4 || set.SRR != 0 {
				return ErrIPv4Option
			}
			set.SRR, set.SRRType = i+1, typ
		case IPv4OptRR:
			if l < 3 || o[2] < 4 {
				return ErrIPv4Option
			}
			// A pointer inside the option must leave room for a whole address.
			if int(o[2]) <= l && int(o[2])+3 > l {
				return ErrIPv4Option
			}
			set.RR = i + 1
		case IPv4OptTimestamp:
			if l < 4 || o[2] < 5 || set.TS != 0 {
				return ErrIPv4Option
			}
			ptr, flag := int(o[2]), o[3]&0xf
			switch {
			case ptr <= l && ptr+3 > l:
				return ErrIPv4Option // no room for the next timestamp
			case ptr <= l && (flag == 1 || flag == 3) && ptr+7 > l:
				return ErrIPv4Option // no room for an address and a timestamp
			case ptr > l && flag != 3 && o[3]>>4 == 15:
				return ErrIPv4Option // the overflow count would overflow
			}
			set.TS = i + 1
		case IPv4OptRouterAlert:
			if l < 4 {
				return ErrIPv4Option
			}
			if o[2] == 0 && o[3] == 0 {
				set.RouterAlert = i + 1
			}
		case IPv4OptCIPSO:
			// Linux validates CIPSO against its configured DOIs (cipso_v4_validate); with
			// none configured every CIPSO option is an error.
			return ErrIPv4Option
		}
		// Other options (security, stream ID, unknown ones) are skipped, as Linux does
		// for a received packet.
		i += l
	}
	return nil
}
