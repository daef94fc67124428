package netns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// namespaces lists ip netns list's names.
func namespaces(t *testing.T) []string {
	t.Helper()
	out, err := run("", "ip", "netns", "list")
	require.NoError(t, err)
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func TestNew_CleanupDeletesNamespaces(t *testing.T) {
	Require(t)
	var names []string
	var sleeper *exec.Cmd
	ok := t.Run("inner", func(t *testing.T) {
		a, b := New(t, "cleanup-with-a-long-label"), New(t, "")
		for _, ns := range []*NS{a, b} {
			require.LessOrEqual(t, len(ns.Name()), maxName)
			require.True(t, strings.HasPrefix(ns.Name(), namePrefix), ns.Name())
			require.FileExists(t, ns.Path())
			require.Contains(t, namespaces(t), ns.Name())
			require.Contains(t, ns.Run(t, "ip", "-br", "link", "show", "dev", "lo"), ",UP", "lo is up")
			names = append(names, ns.Name())
		}
		// A process left running inside must not outlive the namespace.
		sleeper = a.Command(context.Background(), "sleep", "600")
		require.NoError(t, sleeper.Start())
		waitInside(t, a, sleeper.Process.Pid)
	})
	require.True(t, ok, "the subtest failed")
	for _, name := range names {
		require.NoFileExists(t, filepath.Join(runDir, name))
		require.NotContains(t, namespaces(t), name)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()
	select {
	case err := <-exited:
		require.ErrorContains(t, err, "killed")
	case <-time.After(wait):
		_ = sleeper.Process.Kill()
		t.Fatal("the process left in the namespace survived its cleanup")
	}
}

// waitInside waits until process pid has joined ns: Start returns once the command
// runs, which may be before it has entered the namespace.
func waitInside(t testing.TB, ns *NS, pid int) {
	t.Helper()
	want := fmt.Sprintf("net:[%d]", ns.ino)
	deadline := time.Now().Add(wait)
	for {
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		require.NoError(t, err)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d never joined %s", pid, ns.Name())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHelperProcess is the child of the tests below: it makes a namespace, says its
// name, then panics or (after starting a command inside and saying its pid) waits to be
// killed, as NETNS_TEST_HELPER says.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("NETNS_TEST_HELPER")
	if mode == "" {
		t.Skip("only run as the child of TestNew_CleanupAfterPanic and TestSweep_DeadProcess")
	}
	ns := New(t, mode)
	switch mode {
	case "panic":
		fmt.Printf("NETNS_NAME=%s\n", ns.Name())
		panic("the helper panics on purpose")
	case "hang":
		sleeper := ns.Command(context.Background(), "sleep", "600")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		waitInside(t, ns, sleeper.Process.Pid)
		fmt.Printf("NETNS_CHILD=%d\n", sleeper.Process.Pid)
		fmt.Printf("NETNS_NAME=%s\n", ns.Name())
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent kills this process
	}
}

// output collects a child's stdout and stderr.
type output struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// helper starts this test binary as TestHelperProcess in mode and returns the name of
// the namespace it made and the pid of the command it started inside (0 if none); the
// child's stdout and stderr go to out.
func helper(t *testing.T, mode string) (*exec.Cmd, string, int, *output) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NETNS_TEST_HELPER="+mode)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = stdin.Close() })
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	out := new(output)
	cmd.Stderr = out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	type said struct {
		name  string
		child int
	}
	named := make(chan said, 1)
	go func() {
		defer close(named)
		sc := bufio.NewScanner(stdout)
		child := 0
		for sc.Scan() {
			_, _ = out.Write([]byte(sc.Text() + "\n"))
			if pid, ok := strings.CutPrefix(sc.Text(), "NETNS_CHILD="); ok {
				child, _ = strconv.Atoi(pid)
			}
			if name, ok := strings.CutPrefix(sc.Text(), "NETNS_NAME="); ok {
				named <- said{name, child}
			}
		}
	}()
	select {
	case s, ok := <-named:
		require.True(t, ok, "the helper printed no name:\n%s", out.String())
		t.Cleanup(func() { // in case the test fails before they are gone
			if s.child > 0 {
				_ = syscall.Kill(s.child, syscall.SIGKILL)
			}
			_ = deleteNS(s.name)
		})
		return cmd, s.name, s.child, out
	case <-time.After(wait):
		t.Fatalf("the helper printed no name")
	}
	return nil, "", 0, nil
}

// gone reports whether a process has exited (it is no more, or a zombie).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}

func TestNew_CleanupAfterPanic(t *testing.T) {
	Require(t)
	cmd, name, _, out := helper(t, "panic")
	err := cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the helper should fail")
	require.NoFileExists(t, filepath.Join(runDir, name), "helper output:\n%s", out)
}

func TestSweep_DeadProcess(t *testing.T) {
	Require(t)
	cmd, name, child, _ := helper(t, "hang")
	require.Positive(t, child)
	require.FileExists(t, filepath.Join(runDir, name))
	removed, err := Sweep()
	require.NoError(t, err)
	require.NotContains(t, removed, name, "its process is alive")
	require.FileExists(t, filepath.Join(runDir, name))

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.False(t, gone(child), "the command outlives the process that started it")
	removed, err = Sweep()
	require.NoError(t, err)
	require.Contains(t, removed, name)
	require.NoFileExists(t, filepath.Join(runDir, name))
	waitFor(t, "the sweep to kill the command left inside", func() bool { return gone(child) })
}

func TestCommand_OutlivesTheThreadThatStartedIt(t *testing.T) {
	a := New(t, "cmd")
	cmd := a.Command(context.Background(), "sh", "-c", "read line && echo \"got $line\"")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var out bytes.Buffer
	cmd.Stdout = &out
	// Do's thread exits when fn returns: a child with a parent-death signal would get it then.
	var tid int
	require.NoError(t, a.Do(func() error {
		tid = unix.Gettid()
		return cmd.Start()
	}))
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitFor(t, "Do's thread to exit", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid))
		return errors.Is(err, fs.ErrNotExist)
	})
	_, err = io.WriteString(stdin, "ping\n")
	require.NoError(t, err)
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), "the child was killed when its starting thread exited")
	require.Equal(t, "got ping\n", out.String())
}

func TestCommandAndRun(t *testing.T) {
	a := New(t, "cmd")
	a.Run(t, "ip", "link", "add", "ssd0", "type", "veth", "peer", "name", "ssd1")
	out, err := a.Command(context.Background(), "ip", "-br", "link").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "ssd0")
	host, err := exec.Command("ip", "-br", "link").Output()
	require.NoError(t, err)
	require.NotContains(t, string(host), "ssd0", "the command ran inside, not in the host's namespace")

	require.Equal(t, "inside\n", a.Run(t, "echo", "inside"))
	msg := fatalOf(t, func(tb testing.TB) { a.Run(tb, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3") })
	require.Contains(t, msg, "exit status 3")
	require.Contains(t, msg, "to-stdout")
	require.Contains(t, msg, "to-stderr")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.Run(tb) }), "needs a command")
}

func TestSysctl(t *testing.T) {
	a, b := New(t, "a"), New(t, "b")
	const syncookies = "/proc/sys/net/ipv4/tcp_syncookies"
	host, err := os.ReadFile(syncookies) // this goroutine's thread is in the host's namespace
	require.NoError(t, err)
	flip := "0"
	if string(bytes.TrimSpace(host)) == "0" {
		flip = "1"
	}
	a.Sysctl(t, "net.ipv4.tcp_syncookies", flip)
	a.Sysctl(t, "net.ipv4.tcp_abort_on_overflow", "1")
	a.Sysctl(t, "net.ipv4.ip_local_port_range", "40000 40999")
	require.Equal(t, flip+"\n", a.Run(t, "cat", syncookies))
	require.Equal(t, "1\n", a.Run(t, "cat", "/proc/sys/net/ipv4/tcp_abort_on_overflow"))
	require.Equal(t, []string{"40000", "40999"}, strings.Fields(a.Run(t, "cat", "/proc/sys/net/ipv4/ip_local_port_range")))
	require.Equal(t, "0\n", b.Run(t, "cat", "/proc/sys/net/ipv4/tcp_abort_on_overflow"), "b keeps its own")
	after, err := os.ReadFile(syncookies)
	require.NoError(t, err)
	require.Equal(t, host, after, "the host keeps its own")

	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		require.Equal(t, "1\n", a.Run(t, "cat", "/proc/sys/net/ipv6/conf/lo/disable_ipv6"), "New disables IPv6")
	}
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.Sysctl(tb, "kernel.hostname", "x") }), "only net.*")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.Sysctl(tb, "net.ipv4.tcp_syncookies", "300") }), "invalid argument")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.Sysctl(tb, "net.ipv4.ip_local_port_range", "50000 40000") }), "invalid argument")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.Sysctl(tb, "net.ipv4.no_such_thing", "1") }), "no such file")
}

// TestNS_EntersThroughItsDescriptor: while other namespaces come and go around it (as
// other test processes make and delete theirs) and its own name is deleted under it (as
// another process's sweep or ip netns delete would), every way into a namespace keeps
// reaching that namespace: Run, Command, the package's own commands, Do and Veth. By name
// (ip netns exec, ip -n, setns on /run/netns/NAME) these fail with ENOENT, or EINVAL from
// setns when they open the name between its unmount and its unlink.
func TestNS_EntersThroughItsDescriptor(t *testing.T) {
	a := New(t, "held")
	a.Run(t, "ip", "link", "add", "ssd0", "type", "veth", "peer", "name", "ssd1")
	want := fmt.Sprintf("net:[%d]", a.ino)
	check := func() error {
		var out string
		if msg := fatalOf(t, func(tb testing.TB) { out = a.Run(tb, "ip", "-br", "link", "show", "dev", "ssd0") }); msg != "" {
			return errors.New(msg)
		}
		if !strings.HasPrefix(out, "ssd0") {
			return fmt.Errorf("Run: ip -br link printed %q", out)
		}
		if msg := fatalOf(t, func(tb testing.TB) { a.SetMTU(tb, "ssd1", 1400) }); msg != "" {
			return errors.New(msg)
		}
		b, err := a.Command(context.Background(), "ip", "-br", "link", "show", "dev", "ssd1").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(b), "ssd1") {
			return fmt.Errorf("Command: %v: %s", err, b)
		}
		return a.Do(func() error {
			got, err := os.Readlink("/proc/thread-self/ns/net")
			if err != nil || got != want {
				return fmt.Errorf("Do: the thread is in %s (%v), want %s", got, err, want)
			}
			_, err = net.InterfaceByName("ssd0")
			return err
		})
	}

	const churners, rounds = 3, 16
	var churned sync.WaitGroup
	errs := make(chan error, churners)
	for c := range churners {
		churned.Add(1)
		go func() {
			defer churned.Done()
			for r := range rounds {
				if c == 0 && r == rounds/2 {
					if err := deleteNS(a.Name()); err != nil {
						errs <- err
						return
					}
				}
				name := newName(os.Getpid(), seq.Add(1), "churn") // a sweep deletes it if this test is killed
				if _, err := run("", "ip", "netns", "add", name); err != nil {
					errs <- err
					return
				}
				if err := deleteNS(name); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	go func() {
		churned.Wait()
		close(stop)
	}()
	var checked sync.WaitGroup
	var checks atomic.Int64
	failures := make(chan error, 64)
	for range 3 {
		checked.Add(1)
		go func() {
			defer checked.Done()
			for {
				if err := check(); err != nil {
					select {
					case failures <- err:
					default:
					}
				}
				checks.Add(1)
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	checked.Wait()
	close(errs)
	close(failures)
	for err := range errs {
		t.Errorf("churn: %v", err)
	}
	for err := range failures {
		t.Errorf("%v", err)
	}
	t.Logf("%d checks while %d namespaces came and went", checks.Load(), churners*rounds)
	require.NotContains(t, namespaces(t), a.Name(), "its name is gone")
	require.NoFileExists(t, a.Path())

	// With its name gone the namespace is still all there, and a veth still reaches it.
	require.NoError(t, check())
	b := New(t, "peer")
	Veth(t, a, "ssv0", b, "ssv1")
	require.Contains(t, a.Run(t, "ip", "-br", "link", "show", "dev", "ssv0"), "ssv0@")
	require.Contains(t, b.Run(t, "ip", "-br", "link", "show", "dev", "ssv1"), "ssv1@")
}
