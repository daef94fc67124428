//go:build !linux

package stack

import (
	"errors"
	"time"
)

// poller exists on Linux only; elsewhere links have no descriptors to wait on.
type poller struct{}

func newPoller([]int) (*poller, error) {
	return nil, errors.New("waiting on link descriptors needs Linux")
}

func (p *poller) wait(time.Duration) {}
func (p *poller) wake()              {}
func (p *poller) close()             {}

// pinThread is a no-op off Linux: the goroutine stays locked to its thread only.
func pinThread(int) {}

// sleepThread sleeps for d.
func sleepThread(d time.Duration) { time.Sleep(d) }
