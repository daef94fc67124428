package netns

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// setup is what the first Require does once per process: sweep stale namespaces and
// find out whether this process can make new ones.
var setup struct {
	once sync.Once
	skip string // why tests must skip, or ""
}

// Require skips the test, saying why, unless this process can create network namespaces
// with iproute2's ip and enter them with util-linux's nsenter; it finds out by creating
// and deleting one. The first call also sweeps namespaces left by killed processes (see
// Sweep). New calls Require.
func Require(t testing.TB) {
	t.Helper()
	setup.once.Do(func() {
		if _, err := exec.LookPath("ip"); err != nil {
			setup.skip = fmt.Sprintf("netns: needs iproute2's ip: %v", err)
			return
		}
		if _, err := exec.LookPath("nsenter"); err != nil {
			setup.skip = fmt.Sprintf("netns: needs util-linux's nsenter: %v", err)
			return
		}
		removed, err := sweepAtStart()
		if len(removed) > 0 {
			t.Logf("netns: removed namespaces of dead processes: %v", removed)
		}
		if err != nil {
			t.Logf("%v", err)
		}
		probe := newName(os.Getpid(), seq.Add(1), "probe")
		if _, err := run("", "ip", "netns", "add", probe); err != nil {
			setup.skip = fmt.Sprintf("netns: needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root): %v", err)
			return
		}
		if err := deleteNS(probe); err != nil {
			setup.skip = fmt.Sprintf("netns: cannot delete probe namespace: %v", err)
		}
	})
	if setup.skip != "" {
		t.Skip(setup.skip)
	}
}
