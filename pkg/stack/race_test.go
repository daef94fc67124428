//go:build race

package stack_test

// raceEnabled shortens the long floods under the race detector, which slows them tenfold.
const raceEnabled = true
