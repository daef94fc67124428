package netns

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// NS is a network namespace that New made for one test.
type NS struct {
	name string
}

// New creates a network namespace named "ss-<pid>-<seq>-<label>" (at most 15 bytes, the
// label cut to fit), brings its lo up, disables IPv6 in it so that a link carries only
// IPv4 and ARP, and registers a t.Cleanup, run even if the test fails or panics, that
// kills any process left inside and deletes it. It skips the test as Require does.
func New(t testing.TB, label string) *NS {
	t.Helper()
	Require(t)
	ns := &NS{name: newName(os.Getpid(), seq.Add(1), label)}
	if _, err := run("", "ip", "netns", "add", ns.name); err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(func() { ns.remove(t) })
	ns.ip(t, "link", "set", "dev", "lo", "up")
	for _, name := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		err := ns.Do(func() error { return writeSysctl(name, "1") })
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // no IPv6 in this kernel at all
			t.Fatalf("%v (in %s)", err, ns.name)
		}
	}
	return ns
}

// Name returns the namespace's name, as ip netns list shows it.
func (ns *NS) Name() string { return ns.name }

// Path returns the file that names the namespace, for setns(2) or nsenter --net.
func (ns *NS) Path() string { return filepath.Join(runDir, ns.name) }

// remove kills what still runs inside the namespace and deletes it. A socket that Do
// made and nobody closed keeps the namespace (and its links) alive, nameless, until
// that socket is closed or the process exits.
func (ns *NS) remove(t testing.TB) {
	for _, pid := range killInside(ns.name) {
		t.Logf("netns: %s: killed process %d left inside", ns.name, pid)
	}
	if err := deleteNS(ns.name); err != nil {
		t.Errorf("netns: %v", err)
	}
}

// killInside sends SIGKILL to every process, other than this one, that ip netns pids
// finds inside the named namespace, and returns their pids.
func killInside(name string) []int {
	out, err := run("", "ip", "netns", "pids", name)
	if err != nil {
		return nil
	}
	var killed []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// ip runs "ip -n <ns> args..." and fails the test if it fails.
func (ns *NS) ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := run("", "ip", append([]string{"-n", ns.name}, args...)...)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	return out
}

// Command returns a command that runs name inside the namespace (ip netns exec). Start
// it from any goroutine, inside Do too; the namespace's cleanup kills it if it is still
// running, and so does the next process's Sweep if this one is killed first.
//
// The child has no parent-death signal (Pdeathsig): Linux sends that signal when the
// thread that started the child exits, not the process, and threads do exit here (every
// Do's, a pinned stack core's), so a command started on a thread that later ran one of
// them would die mid-test (https://go.dev/issue/27505).
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// Run runs args[0] with args[1:] inside the namespace, waiting at most a minute, and
// returns its stdout; if it fails, the test fails with its stdout and stderr.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("netns: Run needs a command")
	}
	out, err := run("", "ip", append([]string{"netns", "exec", ns.name}, args...)...)
	if err != nil {
		t.Fatalf("netns: %v\nstdout:\n%s", err, out)
	}
	return out
}
