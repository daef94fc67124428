package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// NS is a network namespace that New made for one test.
//
// The namespace is held open by a descriptor from New to its cleanup, and Do, Command,
// Run and every command this package runs inside it enter it through that descriptor,
// never through its name: the name is a bind mount under /run/netns that another process
// can delete while the test runs (a sweep, ip netns delete), and one looked up in the
// instant between its unmount and unlink is an empty file that setns(2) refuses with
// EINVAL.
type NS struct {
	name string
	f    *os.File // the namespace, open until the cleanup
	ino  uint64   // its inode on nsfs, as /proc/PID/ns/net names it: "net:[ino]"
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
	f, ino, err := openNS(ns.Path())
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	ns.f, ns.ino = f, ino
	ns.ip(t, "link", "set", "dev", "lo", "up")
	for _, name := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		err := ns.Do(func() error { return writeSysctl(name, "1") })
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // no IPv6 in this kernel at all
			t.Fatalf("%v (in %s)", err, ns.name)
		}
	}
	return ns
}

// openNS opens a network namespace's file and checks that it is one (and not, say, the
// empty file a name is before its bind mount); it returns the file and its inode.
func openNS(path string) (*os.File, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	var st unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	if err == nil {
		var kind int
		kind, err = unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
		if err == nil && kind != unix.CLONE_NEWNET {
			err = fmt.Errorf("namespace of type %#x", kind)
		}
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a network namespace: %w", path, err)
	}
	return f, st.Ino, nil
}

// Name returns the namespace's name, as ip netns list shows it.
func (ns *NS) Name() string { return ns.name }

// Path returns the file that names the namespace (for a tool that wants a name's
// path). This package itself goes through the descriptor it holds, which keeps
// working if the name is deleted.
func (ns *NS) Path() string { return filepath.Join(runDir, ns.name) }

// remove kills what still runs inside the namespace, deletes its name and closes the
// descriptor. A socket that Do made and nobody closed keeps the namespace (and its
// links) alive, nameless, until that socket is closed or the process exits.
func (ns *NS) remove(t testing.TB) {
	if ns.f != nil {
		for _, pid := range killInside(ns.ino) {
			t.Logf("netns: %s: killed process %d left inside", ns.name, pid)
		}
	}
	if err := deleteNS(ns.name); err != nil {
		if _, serr := os.Stat(ns.Path()); !errors.Is(serr, fs.ErrNotExist) {
			t.Errorf("netns: %v", err)
		} else {
			t.Logf("netns: %s: its name was already deleted", ns.name)
		}
	}
	if ns.f != nil {
		ns.f.Close()
	}
}

// killInside sends SIGKILL to every process, other than this one, in the network
// namespace with inode ino, and returns their pids.
func killInside(ino uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := fmt.Sprintf("net:[%d]", ino)
	var killed []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if got, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err != nil || got != want {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// enterArgs starts every command this package runs inside a namespace: nsenter joins
// the namespace open as the child's descriptor 3 (ExtraFiles[0]) and execs the rest.
var enterArgs = []string{"--net=/proc/self/fd/3", "--"}

// command returns args as a command that runs inside the namespace.
func (ns *NS) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append(enterArgs[:len(enterArgs):len(enterArgs)], args...)...)
	cmd.ExtraFiles = []*os.File{ns.f}
	return cmd
}

// run runs args inside the namespace as the package-level run runs a command; its
// errors name the namespace and args, not nsenter.
func (ns *NS) run(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return runCmd(ns.command(ctx, args...), stdin, "in "+ns.name+": "+strings.Join(args, " "))
}

// ip runs "ip args..." inside the namespace and fails the test if it fails.
func (ns *NS) ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.run("", append([]string{"ip"}, args...)...)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	return out
}

// Command returns a command that runs name inside the namespace: nsenter(1) joins it
// through the descriptor the namespace is held open by, passed as the child's
// descriptor 3, and execs name, which keeps that descriptor. Append to the command's
// ExtraFiles rather than replace them. Unlike ip netns exec, nsenter does not mount a
// /sys of the namespace; /proc/sys/net, /proc/net and netlink are the namespace's.
//
// Start it from any goroutine, inside Do too; the namespace's cleanup kills it if it is
// still running, and so does the next process's Sweep if this one is killed first. The
// child has no parent-death signal (Pdeathsig): Linux sends that signal when the thread
// that started the child exits, not the process, and threads do exit here (every Do's,
// a pinned stack core's), so a command started on a thread that later ran one of them
// would die mid-test (https://go.dev/issue/27505).
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return ns.command(ctx, append([]string{name}, args...)...)
}

// Run runs args[0] with args[1:] inside the namespace, as Command does, waiting at most
// a minute, and returns its stdout; if it fails, the test fails with its stdout and
// stderr.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("netns: Run needs a command")
	}
	out, err := ns.run("", args...)
	if err != nil {
		t.Fatalf("netns: %v\nstdout:\n%s", err, out)
	}
	return out
}
