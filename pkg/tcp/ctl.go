package tcp

import (
	"sync"
	"sync/atomic"
)

// ctlQueue carries rare control work to a shard (a listener closing, a socket-table or
// counter snapshot). It takes a mutex and closures: it is never on the packet path, and the
// shard checks it with one atomic load per iteration.
type ctlQueue struct {
	mu  sync.Mutex
	n   atomic.Int32
	fns []func(*shard)
}

func (q *ctlQueue) push(fn func(*shard)) {
	q.mu.Lock()
	q.fns = append(q.fns, fn)
	q.n.Store(int32(len(q.fns)))
	q.mu.Unlock()
}

func (q *ctlQueue) pending() bool { return q.n.Load() != 0 }

func (q *ctlQueue) run(s *shard) int {
	q.mu.Lock()
	fns := q.fns
	q.fns = nil
	q.n.Store(0)
	q.mu.Unlock()
	for _, fn := range fns {
		fn(s)
	}
	return len(fns)
}

// control runs fn on the shard's goroutine at its next iteration.
func (s *shard) control(fn func(*shard)) {
	s.ctl.push(fn)
	s.env.Wake()
}

// Control implements tcpdrv.Shard (the stack's snapshots).
func (s *shard) Control(fn func()) { s.control(func(*shard) { fn() }) }
