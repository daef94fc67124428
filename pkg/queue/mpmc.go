package queue

import "sync/atomic"

// mpmcSlot is one ring cell. seq tells which position the cell belongs to and
// whether it is free or filled: for position p it is p when the cell is free
// for a producer at p, and p+1 once that producer published its value. A
// consumer at p sets it to p+capacity, freeing it for the next lap.
//
// val is written and read without atomics; seq's store (by the side that
// finished) and load (by the side that starts) order those accesses, which
// is what keeps the race detector and the memory model satisfied.
type mpmcSlot[T any] struct {
	seq atomic.Uint64
	val T
}

// MPMC is a bounded lock-free multi-producer multi-consumer ring with a
// sequence number per slot (D. Vyukov's bounded MPMC queue). It serves as a
// listener's accept ring and as a free list shared between shards.
//
// A producer claims a position by moving tail with a CAS and a consumer by
// moving head; neither touches the other's counter, and the counters sit on
// separate cache lines. All methods may be called from any goroutine.
type MPMC[T any] struct {
	slots []mpmcSlot[T]
	mask  uint64
	_     linePad
	head  atomic.Uint64 // next position to pop
	_     pad
	tail  atomic.Uint64 // next position to push
	_     pad
}

// NewMPMC returns an empty ring holding capacity values, rounded up to a
// power of two and at least 2. It panics if capacity is negative or larger
// than MaxCapacity.
func NewMPMC[T any](capacity int) *MPMC[T] {
	n := ringSize(capacity)
	q := &MPMC[T]{slots: make([]mpmcSlot[T], n), mask: uint64(n - 1)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// Push adds v and reports whether there was room; it returns false when the
// ring is full. Under concurrency "full" includes the instant in which a
// consumer has claimed the oldest value but not yet released its cell.
func (q *MPMC[T]) Push(v T) bool {
	pos := q.tail.Load()
	for {
		s := &q.slots[pos&q.mask]
		seq := s.seq.Load()
		switch diff := int64(seq - pos); {
		case diff == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				s.val = v
				s.seq.Store(pos + 1)
				return true
			}
			pos = q.tail.Load()
		case diff < 0:
			// The cell still holds the value pushed one lap ago.
			return false
		default:
			// Another producer took pos; catch up.
			pos = q.tail.Load()
		}
	}
}

// Pop removes the oldest value. It returns the zero value and false when the
// ring is empty, which under concurrency includes the instant in which a
// producer has claimed the next cell but not yet published its value. The
// slot is cleared so the ring keeps nothing alive for the garbage collector.
func (q *MPMC[T]) Pop() (v T, ok bool) {
	pos := q.head.Load()
	for {
		s := &q.slots[pos&q.mask]
		seq := s.seq.Load()
		switch diff := int64(seq - (pos + 1)); {
		case diff == 0:
			if q.head.CompareAndSwap(pos, pos+1) {
				v = s.val
				var zero T
				s.val = zero
				s.seq.Store(pos + q.mask + 1)
				return v, true
			}
			pos = q.head.Load()
		case diff < 0:
			// Not yet filled for this lap: empty, or a producer is still
			// writing it, which looks the same to the caller.
			return v, false
		default:
			pos = q.head.Load()
		}
	}
}

// PushBatch pushes a prefix of vs, as long as there is room, and returns how
// many values it pushed. Values are pushed in order.
//
// It claims runs of free cells with one CAS: it checks the cells from tail
// onward and moves tail past all the free ones at once. A cell whose sequence
// number says "free at position p" cannot change until someone owns p, and
// owning p needs the CAS that this call then makes, so the check stays true.
func (q *MPMC[T]) PushBatch(vs []T) int {
	done := 0
	for done < len(vs) {
		want := min(uint64(len(vs)-done), q.mask+1)
		pos := q.tail.Load()
		k := uint64(0)
		for k < want && q.slots[(pos+k)&q.mask].seq.Load() == pos+k {
			k++
		}
		if k == 0 {
			if int64(q.slots[pos&q.mask].seq.Load()-pos) < 0 {
				return done // full
			}
			continue // tail moved under us
		}
		if !q.tail.CompareAndSwap(pos, pos+k) {
			continue
		}
		for i := uint64(0); i < k; i++ {
			s := &q.slots[(pos+i)&q.mask]
			s.val = vs[done+int(i)]
			s.seq.Store(pos + i + 1)
		}
		done += int(k)
	}
	return done
}

// PopBatch pops up to len(out) values into out, oldest first, and returns how
// many it popped. It claims runs of filled cells with one CAS, as PushBatch
// does for free ones, and clears every slot it empties.
func (q *MPMC[T]) PopBatch(out []T) int {
	var zero T
	done := 0
	for done < len(out) {
		want := min(uint64(len(out)-done), q.mask+1)
		pos := q.head.Load()
		k := uint64(0)
		for k < want && q.slots[(pos+k)&q.mask].seq.Load() == pos+k+1 {
			k++
		}
		if k == 0 {
			if int64(q.slots[pos&q.mask].seq.Load()-(pos+1)) < 0 {
				return done // empty
			}
			continue
		}
		if !q.head.CompareAndSwap(pos, pos+k) {
			continue
		}
		for i := uint64(0); i < k; i++ {
			s := &q.slots[(pos+i)&q.mask]
			out[done+int(i)] = s.val
			s.val = zero
			s.seq.Store(pos + i + q.mask + 1)
		}
		done += int(k)
	}
	return done
}

// Len returns the number of values in the ring. It is exact when no call is
// in flight and approximate otherwise (it counts claimed positions, and the
// two counters are read at different instants).
func (q *MPMC[T]) Len() int {
	head := q.head.Load()
	tail := q.tail.Load() // read second: tail >= head always holds
	return int(min(tail-head, q.mask+1))
}

// Cap returns the number of values the ring can hold.
func (q *MPMC[T]) Cap() int { return int(q.mask + 1) }
