package bench

import (
	"sync"

	"github.com/shardstack/shardstack/pkg/flowtable"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
)

// microHasher is the fixed-seed flow hasher of the micro-benchmarks, so runs compare.
var microHasher = hash.NewHasher(1)

// microLocal is the listener's address and port the SYN-table keys share, as they do on a
// busy listener: only the remote side varies.
var (
	microLocal     = [4]byte{198, 18, 0, 1}
	microLocalPort = uint16(80)
)

// microKey returns the i-th remote endpoint's key: addresses walk 10.0.0.0/8 and ports
// 1024..65023, so every i below 2^24 * 64000 is distinct. miss selects a disjoint space
// (11.0.0.0/8) for keys that are never inserted.
func microKey(i int, miss bool) hash.Key {
	a := uint32(i / 64000)
	first := byte(10)
	if miss {
		first = 11
	}
	remote := [4]byte{first, byte(a >> 16), byte(a >> 8), byte(a)}
	return hash.KeyV4(microLocal, microLocalPort, remote, uint16(1024+i%64000))
}

// synReq stands in for a request sock: what a SYN-table entry points to.
type synReq struct {
	isn uint32
	mss uint16
}

// microMisses is how many never-inserted keys LookupMiss cycles through.
const microMisses = 1 << 16

// synTableFixture is a SYN table holding n live requests, shared by every sub-benchmark of
// one size so that the big tables are built once.
//
// keys is a ring of 2n keys; the live ones are the window keys[start], ...,
// keys[start+n-1] (indexes mod 2n), so the keys just after the window are known to be absent.
// A benchmark that changes the table either restores the window or moves start with it.
type synTableFixture struct {
	n      int
	table  *flowtable.Table[*synReq]
	keys   []hash.Key
	hashes []uint64
	reqs   []synReq
	misses []hash.Key
	missH  []uint64
	start  int
}

// newSYNTableFixture builds a table with n live entries and room to churn without growing.
func newSYNTableFixture(n int) *synTableFixture {
	f := &synTableFixture{
		n:      n,
		keys:   make([]hash.Key, 2*n),
		hashes: make([]uint64, 2*n),
		reqs:   make([]synReq, 2*n),
		misses: make([]hash.Key, microMisses),
		missH:  make([]uint64, microMisses),
	}
	for i := range f.keys {
		f.keys[i] = microKey(i, false)
		f.hashes[i] = microHasher.Sum(&f.keys[i])
		f.reqs[i] = synReq{isn: uint32(i) * 2654435761, mss: 1460}
	}
	for i := range f.misses {
		f.misses[i] = microKey(i, true)
		f.missH[i] = microHasher.Sum(&f.misses[i])
	}
	// Sized for the live window plus one insert batch, so no benchmark makes it grow.
	f.table = flowtable.New[*synReq](n + microBatch(n))
	for i := range n {
		f.table.Put(&f.keys[i], f.hashes[i], &f.reqs[i])
	}
	return f
}

// microBatch is how many inserts (or deletes) run between two untimed restorations: large
// enough that stopping the timer costs little per op, small against n so that the load
// factor hardly moves.
func microBatch(n int) int { return min(4096, max(n/8, 1)) }

// slot returns the ring index of the j-th key after the window's start.
func (f *synTableFixture) slot(j int) int { return (f.start + j) % len(f.keys) }

// synFixtures caches one fixture per size across the benchmark's repeated runs.
var (
	synFixturesMu sync.Mutex
	synFixtures   = map[int]*synTableFixture{}
)

// synTableFor returns the shared fixture with n live entries, building it on first use.
func synTableFor(n int) *synTableFixture {
	synFixturesMu.Lock()
	defer synFixturesMu.Unlock()
	f, ok := synFixtures[n]
	if !ok {
		f = newSYNTableFixture(n)
		synFixtures[n] = f
	}
	return f
}

// acceptedConn stands in for an accepted child connection: what the accept ring carries.
type acceptedConn struct {
	shard int
}

// Addresses and ports of the parse benchmark's frames: a client's SYN to the server and an
// ACK carrying 100 bytes of data.
var (
	microClientMAC = header.MAC{0x02, 0, 0, 0, 0, 2}
	microServerMAC = header.MAC{0x02, 0, 0, 0, 0, 1}
	microClientIP  = [4]byte{198, 18, 0, 2}
	microServerIP  = [4]byte{198, 18, 0, 1}
)

// buildMicroFrame encodes an Ethernet + IPv4 + TCP frame with the given options and payload,
// both checksums set, and returns it.
func buildMicroFrame(tcpf *header.TCPFields, opts *header.TCPOptions, payload []byte) []byte {
	var ob [header.MaxTCPOptionsLen]byte
	on := header.EncodeTCPOptions(ob[:], opts)
	frame := make([]byte, header.EthernetLen+header.IPv4MinLen+header.TCPMinLen+on+len(payload))
	header.EncodeEthernet(frame, microServerMAC, microClientMAC, header.EtherTypeIPv4)
	seg := frame[header.EthernetLen+header.IPv4MinLen:]
	hl := header.EncodeTCP(seg, tcpf, ob[:on])
	copy(seg[hl:], payload)
	header.EncodeIPv4(frame[header.EthernetLen:], &header.IPv4Fields{
		TotalLen: uint16(header.IPv4MinLen + len(seg)),
		ID:       0x1c46,
		Flags:    header.IPv4FlagDontFragment,
		TTL:      64,
		Protocol: header.ProtoTCP,
		Src:      microClientIP,
		Dst:      microServerIP,
	})
	header.TCP(seg).SetChecksumIPv4(microClientIP, microServerIP)
	return frame
}

// microSYN is a Linux-like SYN: MSS, SACK-permitted, timestamps and window scale.
func microSYN() []byte {
	return buildMicroFrame(
		&header.TCPFields{SrcPort: 40000, DstPort: 80, Seq: 3408088258, Flags: header.TCPFlagSYN, Window: 64240},
		&header.TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSVal: 681852075},
		nil)
}

// microACK100 is an ACK with timestamps and 100 bytes of data, as the first request after a
// handshake would be.
func microACK100() []byte {
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	return buildMicroFrame(
		&header.TCPFields{SrcPort: 40000, DstPort: 80, Seq: 3408088259, Ack: 2291341088,
			Flags: header.TCPFlagACK | header.TCPFlagPSH, Window: 502},
		&header.TCPOptions{WScale: -1, TS: true, TSVal: 681852076, TSEcr: 3981935946},
		payload)
}

// parseVerdict is what the receive path learns from one frame.
type parseVerdict struct {
	ok      bool
	flags   uint8
	payload int
}

// parseAndCheck is the receive path's header work for one frame: every layer parsed, the
// options parsed into o, the TCP checksum verified.
func parseAndCheck(frame []byte, o *header.TCPOptions) parseVerdict {
	eth, err := header.ParseEthernet(frame)
	if err != nil || eth.Type() != header.EtherTypeIPv4 {
		return parseVerdict{}
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil || ip.Protocol() != header.ProtoTCP {
		return parseVerdict{}
	}
	tcp, err := header.ParseTCP(ip.Payload())
	if err != nil {
		return parseVerdict{}
	}
	if header.ParseTCPOptions(tcp.Options(), o) != nil {
		return parseVerdict{}
	}
	if !tcp.ChecksumValidIPv4(ip.Src(), ip.Dst()) {
		return parseVerdict{}
	}
	return parseVerdict{ok: true, flags: tcp.Flags(), payload: len(tcp.Payload())}
}

// insertBatch puts the k keys just after the live window. retireAfterInsert then deletes
// the k oldest and moves the window on, so the table is back to n live entries and the next
// batch touches other slots, as real traffic would.
func (f *synTableFixture) insertBatch(k int) {
	for j := range k {
		s := f.slot(f.n + j)
		f.table.Put(&f.keys[s], f.hashes[s], &f.reqs[s])
	}
}

func (f *synTableFixture) retireAfterInsert(k int) {
	f.deleteBatch(k)
	f.start = (f.start + k) % len(f.keys)
}

// deleteBatch deletes the k oldest live keys. refillAfterDelete then inserts k new keys after
// the window and moves the window on.
func (f *synTableFixture) deleteBatch(k int) {
	for j := range k {
		s := f.slot(j)
		f.table.Delete(&f.keys[s], f.hashes[s])
	}
}

func (f *synTableFixture) refillAfterDelete(k int) {
	f.insertBatch(k)
	f.start = (f.start + k) % len(f.keys)
}

// cycle is one request's life in steady state: the SYN inserts a new request, the final ACK
// looks it up and removes the oldest one (as requests are completed or expire), so the
// table keeps n live entries while its contents rotate. It reports whether the lookup found
// the request it had just inserted.
func (f *synTableFixture) cycle() bool {
	s := f.slot(f.n)
	f.table.Put(&f.keys[s], f.hashes[s], &f.reqs[s])
	r, ok := f.table.Get(&f.keys[s], f.hashes[s])
	old := f.slot(0)
	f.table.Delete(&f.keys[old], f.hashes[old])
	f.start = (f.start + 1) % len(f.keys)
	return ok && r == &f.reqs[s]
}
