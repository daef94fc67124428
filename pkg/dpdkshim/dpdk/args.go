package dpdk

import (
	"errors"
	"fmt"
	"strings"
)

// Config is what Open needs to bring up a port.
type Config struct {
	// EAL are the EAL's arguments, without a program name: --no-huge, -m 256, --in-memory,
	// --lcores, --vdev=net_af_packet0,iface=veth0,qpairs=2, ...
	EAL []string
	// Port names the ethdev (rte_eth_dev_get_port_by_name): default the first device of
	// EAL's --vdev arguments, else the first port no other Open holds.
	Port string
	// Queues is the number of receive/transmit queue pairs: one per shard (default 1).
	Queues int
	// RxDesc and TxDesc are the descriptors of each receive and transmit ring (default
	// 1024, adjusted to what the PMD accepts).
	RxDesc, TxDesc int
	// Mbufs is the size of the port's mempool (default: enough for every ring, every
	// shard's bursts and 4096 packets in flight per queue).
	Mbufs int
}

// SplitArgs splits a command line into words the way a shell would without expanding
// anything: blanks separate words, single quotes keep everything, double quotes keep
// everything but a backslash before " or \, and a backslash outside quotes keeps the next
// character.
func SplitArgs(s string) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated \" quote")
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out, nil
}

// splitVdevs separates the --vdev arguments (--vdev=X or --vdev X) from the others and
// returns the others and the devices' argument strings.
func splitVdevs(args []string) (rest, vdevs []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--vdev":
			if i+1 == len(args) {
				return nil, nil, errors.New("--vdev without a device")
			}
			vdevs = append(vdevs, args[i+1])
			i++
		case strings.HasPrefix(a, "--vdev="):
			vdevs = append(vdevs, strings.TrimPrefix(a, "--vdev="))
		default:
			rest = append(rest, a)
		}
	}
	for _, v := range vdevs {
		if vdevName(v) == "" {
			return nil, nil, fmt.Errorf("--vdev %q: no device name", v)
		}
	}
	return rest, vdevs, nil
}

// vdevName is the device name of a --vdev argument: what comes before its first comma.
func vdevName(v string) string {
	name, _, _ := strings.Cut(v, ",")
	return name
}

// txKind is the checksum offload a packet asks for, as the mbuf's ol_flags say it.
type txKind uint8

const (
	txNone txKind = iota
	txTCP4
	txTCP6
	txUDP4
	txUDP6
)

// txCsum says what checksum offload an Ethernet frame asks for whose transport bytes
// start at start and whose checksum field is at field (Packet.TxCsumOffsets), and the
// header lengths the mbuf needs (l2_len, l3_len); txNone if the frame is neither IPv4 nor
// IPv6 carrying TCP or UDP where the offsets say.
func txCsum(frame []byte, start, field int) (kind txKind, l2, l3 int) {
	const eth = 14
	if len(frame) < eth || start <= eth || start-eth > 511 || field < start || field+2 > len(frame) {
		return txNone, 0, 0
	}
	v6 := false
	switch uint16(frame[12])<<8 | uint16(frame[13]) {
	case 0x0800:
	case 0x86dd:
		v6 = true
	default:
		return txNone, 0, 0
	}
	switch field - start {
	case 16:
		kind = txTCP4
	case 6:
		kind = txUDP4
	default:
		return txNone, 0, 0
	}
	if v6 {
		kind++
	}
	return kind, eth, start - eth
}
