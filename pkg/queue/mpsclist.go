package queue

import "sync/atomic"

// Link is the hook an element carries to sit in an MPSCList. Its zero value
// is ready; only the list reads and writes it.
type Link[E any] struct{ next *E }

// Linker is satisfied by *E when E has a QueueLink method returning the
// element's Link, usually the address of an embedded or contained field.
type Linker[E any] interface {
	*E
	QueueLink() *Link[E]
}

// MPSCList is an unbounded, intrusive, lock-free multi-producer
// single-consumer list of *E. Application goroutines use it to tell a shard
// that a connection has work. Its zero value is an empty list ready to use.
//
// Producers push with a CAS loop onto a stack; the single consumer detaches
// the whole stack with one atomic swap and reverses it, so it gets elements
// in push (FIFO) order per producer and across the whole batch. Nothing is
// ever allocated: the links live in the elements.
//
// Rules the caller keeps:
//   - An element is in at most one list at a time. The list does not check;
//     the owner keeps its own "queued" flag and pushes only when it flips it.
//   - The consumer walks the batch TakeAll returned with Next, and must read
//     Next(e) before it lets e be pushed again (for example before clearing
//     e's queued flag), because a new Push overwrites e's link.
//   - Only one goroutine at a time calls TakeAll.
type MPSCList[E any, P Linker[E]] struct {
	_    linePad
	head atomic.Pointer[E] // most recently pushed element, links point to older ones
	_    pad
}

// Push adds e to the list; any goroutine. e must not already be in a list.
func (l *MPSCList[E, P]) Push(e *E) {
	link := P(e).QueueLink()
	for {
		old := l.head.Load()
		link.next = old
		// No ABA hazard: nothing but TakeAll removes elements, and it takes
		// all of them, so a successful CAS always links onto the true top.
		if l.head.CompareAndSwap(old, e) {
			return
		}
	}
}

// TakeAll detaches every element and returns the first one in push order, or
// nil when the list is empty; walk the rest with Next. Consumer only.
func (l *MPSCList[E, P]) TakeAll() *E {
	top := l.head.Swap(nil)
	// Reverse the stack (newest first) into FIFO order.
	var first *E
	for top != nil {
		link := P(top).QueueLink()
		next := link.next
		link.next = first
		first = top
		top = next
	}
	return first
}

// Empty reports whether the list has no elements at the moment of the call.
func (l *MPSCList[E, P]) Empty() bool { return l.head.Load() == nil }

// Next returns the element after e in a batch returned by TakeAll, or nil at
// its end. Read it before e may be pushed again.
func Next[E any, P Linker[E]](e *E) *E { return P(e).QueueLink().next }

// Chain is a batch of elements that one goroutine links through their Links and then
// pushes onto an MPSCList with a single CAS (PushChain). Its zero value is empty.
type Chain[E any, P Linker[E]] struct {
	first, last *E
	n           int
}

// Add puts e in the chain; e must not be in any list or chain.
func (c *Chain[E, P]) Add(e *E) {
	P(e).QueueLink().next = c.first
	if c.first == nil {
		c.last = e
	}
	c.first = e
	c.n++
}

// Len returns the number of elements in the chain.
func (c *Chain[E, P]) Len() int { return c.n }

// PushChain pushes every element of c onto the list at once and empties c; any goroutine.
func (l *MPSCList[E, P]) PushChain(c *Chain[E, P]) {
	if c.first == nil {
		return
	}
	link := P(c.last).QueueLink()
	for {
		old := l.head.Load()
		link.next = old
		if l.head.CompareAndSwap(old, c.first) {
			break
		}
	}
	*c = Chain[E, P]{}
}
