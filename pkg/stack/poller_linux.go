package stack

import (
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// poller is a core's sleep in the kernel: an epoll set of its shards' link descriptors and
// an eventfd that Wake writes, so an idle core costs nothing until a frame, a waker or a
// timer needs it.
type poller struct {
	epfd   int
	evfd   int
	events [8]unix.EpollEvent
	one    [8]byte
}

func newPoller(fds []int) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p := &poller{epfd: epfd, evfd: evfd}
	for _, fd := range append(fds, evfd) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			p.close()
			return nil, fmt.Errorf("epoll_ctl add %d: %w", fd, err)
		}
	}
	binary.NativeEndian.PutUint64(p.one[:], 1)
	return p, nil
}

// wait sleeps until a descriptor is readable, the eventfd is written, or d passes (d < 0:
// no limit). epoll counts in milliseconds, so d is rounded up: a timer is never early.
func (p *poller) wait(d time.Duration) {
	ms := -1
	if d >= 0 {
		ms = int((d + time.Millisecond - 1) / time.Millisecond)
	}
	n, err := unix.EpollWait(p.epfd, p.events[:], ms)
	if err != nil {
		return // EINTR: the caller looks again
	}
	for i := 0; i < n; i++ {
		if int(p.events[i].Fd) == p.evfd {
			var b [8]byte
			_, _ = unix.Read(p.evfd, b[:]) // drain: the wake-up is taken
		}
	}
}

// wake makes a wait return (any goroutine).
func (p *poller) wake() { _, _ = unix.Write(p.evfd, p.one[:]) }

func (p *poller) close() {
	unix.Close(p.evfd)
	unix.Close(p.epfd)
}

// pinThread binds the calling (locked) thread to the i-th CPU the process may run on.
func pinThread(i int) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return
	}
	var one unix.CPUSet
	one.Set(cpus[i%len(cpus)])
	_ = unix.SchedSetaffinity(0, &one)
}

// sleepThread sleeps the calling thread for d, precisely (nanosleep), without the Go
// timer's granularity.
func sleepThread(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_ = unix.Nanosleep(&ts, nil)
}
