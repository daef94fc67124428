// Package wheel owns the per-shard hierarchical timing wheel: intrusive timers
// with O(1) arm and cancel, and expiry that skips empty time in O(levels).
//
// One Wheel belongs to one shard goroutine. It has no locks and no atomics and
// must not be shared. It reads no clock: the shard passes Clock.Now to Advance.
// Timers are embedded in their owners (requests, connections, TIME-WAIT
// entries), so arming never allocates; the owner sets Timer.Kind and
// Timer.Owner once and the fire callback dispatches on them without closures.
//
// # Structure
//
// Time is counted in ticks of the wheel's granularity from the time given to
// New. There are 6 levels of 64 slots; a slot of level l spans 64^l ticks, so
// with a 1 ms tick the levels reach 64 ms, 4 s, 4.4 min, 4.7 h, 12 days and
// 2.2 years. Each slot is a doubly linked list threaded through the Timers
// themselves, and each level has a uint64 occupancy bitmap with one bit per
// non-empty slot.
//
// A timer due at tick e, with the wheel at tick cur and delta = e-cur, lives at
// level l = floor(log64(delta)) (level 0 when delta < 64), in slot
// (e >> 6l) & 63. The slot's cascade time, (e >> 6l) << 6l, lies between 1 and
// 64 slot widths ahead of cur, so each occupied slot stands for exactly one
// future tick and rotating the bitmap by cur's slot index finds the nearest
// one with a single trailing-zeros count. When the wheel reaches a level-l
// slot's cascade time it re-files the slot's timers, which now land on lower
// levels; a level-0 slot holds only timers of one tick, which fire.
//
// Deadlines 64^6 ticks or more ahead are clamped to the top: they wait in an
// overflow list above the top level, with a lower bound of their earliest
// tick, and are filed into the levels when that tick comes within reach. A
// parked timer therefore costs nothing while time passes, even with a 1 ns
// tick, where the levels reach only 69 s.
//
// # Exact deadlines inside a tick
//
// Advance(now) fires exactly the timers with deadline <= now, so the tick that
// contains now can be partly due. The first time Advance stops inside a tick
// that has timers, that level-0 slot is merge-sorted by deadline (in place, no
// allocation); later Advance calls in the same tick pop due timers from its
// head, so a shard that advances many times per tick pays only for what fires.
// Timers armed with a deadline at or before the last Advance's now wait in a
// separate due list and fire, in deadline order, at the next Advance.
package wheel
