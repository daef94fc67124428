// Package queue owns the lock-free queues that connect shards, application
// goroutines and links: a bounded multi-producer multi-consumer ring (MPMC), a
// bounded single-producer single-consumer ring (SPSC) and an unbounded
// intrusive multi-producer single-consumer list (MPSCList).
//
// Every operation is lock-free on the fast path and allocates nothing after
// construction. The package knows nothing about packets, connections or
// shards: it moves values and pointers, and it must not grow knowledge of what
// they mean.
//
// Bounded rings round their capacity up to a power of two, at least 2 (see
// NewMPMC for why 1 is not allowed), so that a position maps to a slot with a
// mask instead of a division.
package queue
