// Package flowtable is the open-addressing hash table that every per-shard flow table uses:
// the SYN table (requests), the established table and the TIME-WAIT table. Keys are flow keys
// (hash.Key) whose seeded hash the caller has already computed once per packet; the table only
// indexes by it.
//
// A Table has one writer and no internal synchronisation: it belongs to one shard. It probes
// linearly over a dense array of 8-byte tags (the flow hash), eight to a cache line, and
// touches a slot's key and value only when its tag matches: a lookup that misses - every
// new SYN in the established and TIME-WAIT tables - reads one or two lines of tags however
// full the table is. Deletion shifts later entries back instead of leaving tombstones, so a
// table that sees millions of inserts and deletes never degrades. It grows (the only
// allocation) when more than 3/4 full and never shrinks, so in steady state it allocates
// nothing.
package flowtable

import "github.com/shardstack/shardstack/pkg/hash"

// entry is a slot's key and value; its tag lives in the parallel tags array.
type entry[V any] struct {
	key hash.Key
	val V
}

// Table maps flow keys to values of type V.
type Table[V any] struct {
	tags  []uint64 // the flow hash with its lowest bit forced to 1; 0 marks an empty slot
	slots []entry[V]
	mask  uint64
	n     int
	limit int // grow when n reaches it
}

// New returns a table sized for at least capacity entries before it first grows.
func New[V any](capacity int) *Table[V] {
	t := &Table[V]{}
	size := 16
	for size*3/4 < capacity {
		size <<= 1
	}
	t.init(size)
	return t
}

func (t *Table[V]) init(size int) {
	t.tags = make([]uint64, size)
	t.slots = make([]entry[V], size)
	t.mask = uint64(size - 1)
	t.limit = size * 3 / 4
}

func tagOf(h uint64) uint64 { return h | 1 }

// index uses bits 1.. of the hash: bit 0 is forced in the tag, and the shard choice uses the
// high 32 bits, so the low bits are the ones independent of both.
func (t *Table[V]) index(tag uint64) uint64 { return (tag >> 1) & t.mask }

// Len returns the number of entries.
func (t *Table[V]) Len() int { return t.n }

// find returns the slot holding k, or -1.
func (t *Table[V]) find(k *hash.Key, tag uint64) int {
	for i := t.index(tag); ; i = (i + 1) & t.mask {
		g := t.tags[i]
		if g == 0 {
			return -1
		}
		if g == tag && t.slots[i].key == *k {
			return int(i)
		}
	}
}

// Get returns the value stored for k (whose hash is h).
func (t *Table[V]) Get(k *hash.Key, h uint64) (v V, ok bool) {
	if i := t.find(k, tagOf(h)); i >= 0 {
		return t.slots[i].val, true
	}
	return v, false
}

// Contains reports whether k is present.
func (t *Table[V]) Contains(k *hash.Key, h uint64) bool {
	return t.find(k, tagOf(h)) >= 0
}

// Put stores v for k, replacing any value already there; it reports whether it replaced one.
func (t *Table[V]) Put(k *hash.Key, h uint64, v V) (replaced bool) {
	tag := tagOf(h)
	for i := t.index(tag); ; i = (i + 1) & t.mask {
		g := t.tags[i]
		if g == 0 {
			if t.n+1 > t.limit {
				t.grow()
				return t.Put(k, h, v)
			}
			t.tags[i] = tag
			t.slots[i] = entry[V]{key: *k, val: v}
			t.n++
			return false
		}
		if g == tag && t.slots[i].key == *k {
			t.slots[i].val = v
			return true
		}
	}
}

// Delete removes k and returns the value it had.
func (t *Table[V]) Delete(k *hash.Key, h uint64) (v V, ok bool) {
	i := t.find(k, tagOf(h))
	if i < 0 {
		return v, false
	}
	v = t.slots[i].val
	// Backward-shift deletion: move each later entry of the probe run into the hole when its
	// home slot does not lie (cyclically) between the hole and its current slot.
	hole := uint64(i)
	for j := (hole + 1) & t.mask; ; j = (j + 1) & t.mask {
		g := t.tags[j]
		if g == 0 {
			break
		}
		home := t.index(g)
		if (j-home)&t.mask >= (j-hole)&t.mask {
			t.tags[hole], t.slots[hole] = g, t.slots[j]
			hole = j
		}
	}
	var zero entry[V]
	t.tags[hole], t.slots[hole] = 0, zero
	t.n--
	return v, true
}

func (t *Table[V]) grow() {
	oldTags, oldSlots := t.tags, t.slots
	t.init(len(oldTags) * 2)
	for i, g := range oldTags {
		if g == 0 {
			continue
		}
		for j := t.index(g); ; j = (j + 1) & t.mask {
			if t.tags[j] == 0 {
				t.tags[j], t.slots[j] = g, oldSlots[i]
				break
			}
		}
	}
}

// Range calls fn for every entry until fn returns false. fn must not modify the table.
func (t *Table[V]) Range(fn func(k *hash.Key, v V) bool) {
	for i, g := range t.tags {
		if g != 0 && !fn(&t.slots[i].key, t.slots[i].val) {
			return
		}
	}
}

// Clear removes every entry, keeping the storage.
func (t *Table[V]) Clear() {
	clear(t.tags)
	clear(t.slots)
	t.n = 0
}
