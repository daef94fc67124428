package netns

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// result is what one Do's goroutine hands back.
type result struct {
	err      error
	panicked bool
	value    any    // what fn panicked with
	stack    []byte // where
}

// Do runs fn on a new goroutine locked to an OS thread that has joined the namespace
// with setns(2), and returns fn's error; once the namespace's cleanup has run, Do fails
// without calling fn. Sockets that fn creates (net.Listen, net.Dial, an AF_PACKET
// socket) belong to the namespace for their whole life, so they keep working on any
// goroutine after Do returns. Goroutines that fn starts run on other threads, in the
// host's namespace.
//
// The thread is never unlocked: when fn returns its goroutine exits still locked and
// the Go runtime destroys the thread rather than hand a thread in another namespace
// to unrelated goroutines. If fn panics, Do panics with the value and fn's stack on the
// caller's goroutine, so a test's cleanups still run.
func (ns *NS) Do(fn func() error) error {
	done := make(chan result, 1)
	go ns.enterAndRun(fn, done)
	r := <-done
	if r.panicked {
		panic(fmt.Sprintf("netns: panic inside %s: %v\n\n%s", ns.name, r.value, r.stack))
	}
	return r.err
}

// enterAndRun is Do's goroutine.
func (ns *NS) enterAndRun(fn func() error, done chan<- result) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread never exits: a locked goroutine ending on it wedges it, and it
		// would hold the namespace (and count as a process inside it) until the process
		// exits. While this goroutine holds the main thread, the next one cannot run
		// there, so hand fn over and give back the thread, which never left the host.
		inner := make(chan result, 1)
		go ns.enterAndRun(fn, inner)
		done <- <-inner
		runtime.UnlockOSThread()
		return
	}
	finished := false
	defer func() {
		if finished {
			return
		}
		if v := recover(); v != nil {
			done <- result{panicked: true, value: v, stack: debug.Stack()}
			return
		}
		done <- result{err: errors.New("netns: fn called runtime.Goexit (t.FailNow inside Do?)")}
	}()
	if err := ns.enter(); err != nil {
		finished = true
		done <- result{err: err}
		return
	}
	err := fn()
	finished = true
	done <- result{err: err}
}

// enter moves the calling thread into the namespace, through the descriptor it is held
// open by (Control keeps the descriptor from being closed, and so reused, meanwhile).
func (ns *NS) enter() error {
	if ns.f == nil {
		return fmt.Errorf("netns: %s was never opened", ns.name)
	}
	rc, err := ns.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("netns: setns %s: %w", ns.name, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Setns(int(fd), unix.CLONE_NEWNET) }); err != nil {
		return fmt.Errorf("netns: setns %s: %w", ns.name, err)
	}
	if serr != nil {
		return fmt.Errorf("netns: setns %s: %w", ns.name, serr)
	}
	return nil
}
