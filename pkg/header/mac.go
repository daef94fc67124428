package header

// MAC is an Ethernet hardware address.
type MAC [6]byte

// Broadcast is the Ethernet broadcast address ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats m as six lower-case hex pairs separated by colons ("02:00:5e:10:00:01").
func (m MAC) String() string {
	const hexDigits = "0123456789abcdef"
	var b [17]byte
	for i, x := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i] = hexDigits[x>>4]
		b[3*i+1] = hexDigits[x&0xf]
	}
	return string(b[:])
}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == Broadcast }

// IsMulticast reports whether m has the group bit set (IEEE 802.3 §3.2.3); broadcast is one.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }
