// Package flowtable is the open-addressing hash table that every per-shard flow table uses:
// the SYN table (requests), the established table and the TIME-WAIT table. Keys are flow keys
// (hash.Key) whose seeded hash the caller has already computed once per packet; the table only
// indexes by it.
//
// A Table has one writer and no internal synchronisation: it belongs to one shard. Linear
// probing keeps a lookup to one or two cache lines; deletion shifts later entries back instead
// of leaving tombstones, so a table that sees millions of inserts and deletes never degrades
// and never needs a rehash to clean up. It grows (the only allocation) when more than 3/4 full
// and never shrinks, so in steady state it allocates nothing.
package flowtable

import "github.com/shardstack/shardstack/pkg/hash"

// entry is one slot. tag is the flow hash with its lowest bit forced to 1, so that 0 marks an
// empty slot without a separate flag.
type entry[V any] struct {
	tag uint64
	key hash.Key
	val V
}

// Table maps flow keys to values of type V.
type Table[V any] struct {
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

// Get returns the value stored for k (whose hash is h).
func (t *Table[V]) Get(k *hash.Key, h uint64) (v V, ok bool) {
	tag := tagOf(h)
	for i := t.index(tag); ; i = (i + 1) & t.mask {
		e := &t.slots[i]
		if e.tag == 0 {
			return v, false
		}
		if e.tag == tag && e.key == *k {
			return e.val, true
		}
	}
}

// Contains reports whether k is present.
func (t *Table[V]) Contains(k *hash.Key, h uint64) bool {
	_, ok := t.Get(k, h)
	return ok
}

// Put stores v for k, replacing any value already there; it reports whether it replaced one.
func (t *Table[V]) Put(k *hash.Key, h uint64, v V) (replaced bool) {
	tag := tagOf(h)
	for i := t.index(tag); ; i = (i + 1) & t.mask {
		e := &t.slots[i]
		if e.tag == 0 {
			if t.n+1 > t.limit {
				t.grow()
				return t.Put(k, h, v)
			}
			e.tag, e.key, e.val = tag, *k, v
			t.n++
			return false
		}
		if e.tag == tag && e.key == *k {
			e.val = v
			return true
		}
	}
}

// Delete removes k and returns the value it had.
func (t *Table[V]) Delete(k *hash.Key, h uint64) (v V, ok bool) {
	tag := tagOf(h)
	i := t.index(tag)
	for {
		e := &t.slots[i]
		if e.tag == 0 {
			return v, false
		}
		if e.tag == tag && e.key == *k {
			v = e.val
			break
		}
		i = (i + 1) & t.mask
	}
	// Backward-shift deletion: move each later entry of the probe run into the hole when its
	// home slot does not lie (cyclically) between the hole and its current slot.
	hole := i
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		e := &t.slots[j]
		if e.tag == 0 {
			break
		}
		home := t.index(e.tag)
		if (j-home)&t.mask >= (j-hole)&t.mask {
			t.slots[hole] = *e
			hole = j
		}
	}
	var zero entry[V]
	t.slots[hole] = zero
	t.n--
	return v, true
}

func (t *Table[V]) grow() {
	old := t.slots
	t.init(len(old) * 2)
	for i := range old {
		e := &old[i]
		if e.tag == 0 {
			continue
		}
		for j := t.index(e.tag); ; j = (j + 1) & t.mask {
			if t.slots[j].tag == 0 {
				t.slots[j] = *e
				break
			}
		}
	}
}

// Range calls fn for every entry until fn returns false. fn must not modify the table.
func (t *Table[V]) Range(fn func(k *hash.Key, v V) bool) {
	for i := range t.slots {
		e := &t.slots[i]
		if e.tag != 0 && !fn(&e.key, e.val) {
			return
		}
	}
}

// Clear removes every entry, keeping the storage.
func (t *Table[V]) Clear() {
	clear(t.slots)
	t.n = 0
}
