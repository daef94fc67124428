package hash

import "testing"

func benchKeyV4() Key {
	return KeyV4([4]byte{198, 18, 0, 1}, 80, [4]byte{198, 18, 0, 2}, 40000)
}

func benchKeyV6() Key {
	return KeyV6([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, 443, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}, 40000)
}

func BenchmarkSumV4(b *testing.B) {
	h := NewHasher(1)
	k := benchKeyV4()
	var sink uint64
	b.ReportAllocs()
	for b.Loop() {
		k.RemotePort++ // a new flow each time, as in a SYN flood
		sink += h.Sum(&k)
	}
	_ = sink
}

func BenchmarkSumV6(b *testing.B) {
	h := NewHasher(1)
	k := benchKeyV6()
	var sink uint64
	b.ReportAllocs()
	for b.Loop() {
		k.RemotePort++
		sink += h.Sum(&k)
	}
	_ = sink
}

func BenchmarkShard(b *testing.B) {
	var sink int
	h := uint64(0x9e3779b97f4a7c15)
	b.ReportAllocs()
	for b.Loop() {
		h += 0x9e3779b97f4a7c15
		sink += Shard(h, 6)
	}
	_ = sink
}
