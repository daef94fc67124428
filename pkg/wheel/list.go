package wheel

// list is an intrusive doubly linked list of Timers, linked through
// Timer.next and Timer.prev; head.prev and tail.next are nil.
type list struct {
	head, tail *Timer
}

func (l *list) empty() bool { return l.head == nil }

// pushBack appends t, which must not be in any list.
func (l *list) pushBack(t *Timer) {
	t.list = l
	t.next = nil
	t.prev = l.tail
	if l.tail == nil {
		l.head = t
	} else {
		l.tail.next = t
	}
	l.tail = t
}

// insertSorted inserts t into a list sorted by deadline, keeping it sorted and
// placing t after timers with the same deadline. It walks from the tail: new
// deadlines are usually the latest, and an already-due one goes to the head in
// one step.
func (l *list) insertSorted(t *Timer) {
	if l.head == nil || t.when < l.head.when {
		t.list = l
		t.prev = nil
		t.next = l.head
		if l.head == nil {
			l.tail = t
		} else {
			l.head.prev = t
		}
		l.head = t
		return
	}
	p := l.tail
	for p.when > t.when {
		p = p.prev
	}
	t.list = l
	t.prev = p
	t.next = p.next
	if p.next == nil {
		l.tail = t
	} else {
		p.next.prev = t
	}
	p.next = t
}

// remove unlinks t, which must be in l, and marks it not pending.
func (l *list) remove(t *Timer) {
	if t.prev == nil {
		l.head = t.next
	} else {
		t.prev.next = t.next
	}
	if t.next == nil {
		l.tail = t.prev
	} else {
		t.next.prev = t.prev
	}
	t.next, t.prev, t.list = nil, nil, nil
}

// popFront removes and returns the head; l must not be empty.
func (l *list) popFront() *Timer {
	t := l.head
	l.remove(t)
	return t
}

// moveTo empties l into dst, which must be empty, in O(length) (each timer's
// list pointer is updated). Used to detach the due list before firing it.
func (l *list) moveTo(dst *list) {
	dst.head, dst.tail = l.head, l.tail
	l.head, l.tail = nil, nil
	for t := dst.head; t != nil; t = t.next {
		t.list = dst
	}
}

// detach empties l and returns its chain, still linked through next. The
// timers keep pointing at l; the caller re-files each of them.
func (l *list) detach() *Timer {
	h := l.head
	l.head, l.tail = nil, nil
	return h
}

// sort orders l by deadline, stably, with a bottom-up merge sort on the next
// links: O(n log n) and no allocation. prev links are rebuilt at the end.
func (l *list) sort() {
	if l.head == nil || l.head.next == nil {
		return
	}
	head := l.head
	for width := 1; ; width *= 2 {
		var out, outTail *Timer
		merges := 0
		p := head
		for p != nil {
			merges++
			// Split off run a (width timers) and run b (up to width timers).
			a := p
			aLen := 0
			for aLen < width && p != nil {
				aLen++
				p = p.next
			}
			b := p
			bLen := 0
			for bLen < width && p != nil {
				bLen++
				p = p.next
			}
			// Merge a and b onto out; ties take from a, which keeps it stable.
			for aLen > 0 || (bLen > 0 && b != nil) {
				var e *Timer
				switch {
				case aLen == 0:
					e, b = b, b.next
					bLen--
				case bLen == 0 || b == nil || a.when <= b.when:
					e, a = a, a.next
					aLen--
				default:
					e, b = b, b.next
					bLen--
				}
				if outTail == nil {
					out = e
				} else {
					outTail.next = e
				}
				outTail = e
			}
		}
		outTail.next = nil
		head = out
		if merges <= 1 {
			break
		}
	}
	var prev *Timer
	for t := head; t != nil; t = t.next {
		t.prev = prev
		prev = t
	}
	l.head, l.tail = head, prev
}
