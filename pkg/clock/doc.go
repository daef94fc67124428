// Package clock owns the time sources the stack is given: the Clock and Timer
// interfaces, Real (the machine's monotonic clock) and Virtual (time that moves
// only when a test or simulation tells it to).
//
// Every timer in shardstack reads a Clock handed to it; nothing in the stack
// calls time.Now directly. That is what lets a test run 63 s of SYN-ACK
// retransmissions in microseconds. Times are int64 nanoseconds since the
// clock's epoch, not time.Time, so reading the clock never allocates and
// deadlines compare with a plain integer comparison.
//
// This package does not schedule the stack's own per-connection timers; those
// live in a per-shard pkg/wheel that is advanced with Clock.Now. Timers here
// are for goroutines that block (application deadlines, an idle shard waiting
// for its next wheel deadline).
package clock
