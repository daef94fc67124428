package netns

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// sysctlPath maps "net.ipv4.tcp_syncookies" (or "net/ipv4/tcp_syncookies") to its file.
func sysctlPath(name string) (string, error) {
	if !strings.HasPrefix(name, "net.") && !strings.HasPrefix(name, "net/") || strings.Contains(name, "..") {
		return "", fmt.Errorf("netns: sysctl %q: only net.* settings belong to a network namespace", name)
	}
	if strings.Contains(name, "/") {
		return "/proc/sys/" + name, nil
	}
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/"), nil
}

// writeSysctl writes a net.* sysctl of the calling thread's namespace and reads it
// back; only a thread that Do moved into a namespace may call it.
func writeSysctl(name, value string) error {
	path, err := sysctlPath(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0); err != nil {
		return fmt.Errorf("netns: sysctl %s: %w", name, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("netns: sysctl %s: %w", name, err)
	}
	if !slices.Equal(strings.Fields(string(got)), strings.Fields(value)) {
		return fmt.Errorf("netns: sysctl %s: wrote %q, kernel kept %q", name, value, strings.TrimSpace(string(got)))
	}
	return nil
}

// Sysctl sets a net.* sysctl inside the namespace (net.ipv4.tcp_syncookies,
// net.ipv4.tcp_abort_on_overflow, net.core.somaxconn, ...) and checks that the kernel
// kept the value; any other name, which would change the host, fails the test.
func (ns *NS) Sysctl(t testing.TB, name, value string) {
	t.Helper()
	if _, err := sysctlPath(name); err != nil {
		t.Fatal(err)
	}
	if err := ns.Do(func() error { return writeSysctl(name, value) }); err != nil {
		t.Fatalf("%v (in %s)", err, ns.name)
	}
}
