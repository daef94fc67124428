package stack

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestPoller: a wait returns when a watched descriptor is readable, when wake is called
// (from another goroutine, before or during the wait), or when its time is up; a wake-up is
// consumed by the wait it ends.
func TestPoller(t *testing.T) {
	var fds [2]int
	require.NoError(t, unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	p, err := newPoller([]int{fds[0]})
	require.NoError(t, err)
	defer p.close()

	// A timed wait with nothing ready ends by itself.
	p.wait(time.Millisecond)

	// A wake before the wait ends it at once, and only that one wait: the next timed wait
	// runs to its end (no wake-up left over), which a 0 timeout shows without a clock.
	p.wake()
	p.wait(-1)
	n, err := unix.EpollWait(p.epfd, p.events[:], 0)
	require.NoError(t, err)
	require.Zero(t, n, "the eventfd was drained")

	// A wake from another goroutine ends an unbounded wait.
	done := make(chan struct{})
	go func() {
		p.wait(-1)
		close(done)
	}()
	p.wake()
	<-done

	// A readable link descriptor ends it too, and stays readable until read (level).
	_, err = unix.Write(fds[1], []byte{1})
	require.NoError(t, err)
	p.wait(-1)
	n, err = unix.EpollWait(p.epfd, p.events[:], 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, int32(fds[0]), p.events[0].Fd)
}
