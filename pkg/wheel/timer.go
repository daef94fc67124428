package wheel

// noLevel marks a timer filed in a list that is not a wheel slot (the due and
// firing lists).
const noLevel = 0xff

// Timer is a wheel timer embedded by its owner. Kind and Owner are set once by
// the owner and read by the fire callback to dispatch without closures. The
// zero Timer is ready to use. A Timer belongs to at most one Wheel at a time
// and must not be copied while pending.
type Timer struct {
	// Kind tells the fire callback what kind of timer this is.
	Kind uint8
	// Owner is the object that embeds the timer, for the fire callback.
	Owner any

	next, prev *Timer
	list       *list // nil when not pending
	when       int64
	level      uint8 // wheel level, or noLevel
	slot       uint8
}

// Pending reports whether t is armed and has not fired or been cancelled.
// Inside its own fire callback a timer is no longer pending.
func (t *Timer) Pending() bool { return t.list != nil }

// When returns the deadline, in nanoseconds, that t was last armed with.
func (t *Timer) When() int64 { return t.when }
