package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// runDir is where iproute2 keeps the bind mounts that name namespaces.
	runDir = "/run/netns"
	// namePrefix starts every namespace name this package makes.
	namePrefix = "ss-"
	// maxName keeps names short enough to serve as interface names too (IFNAMSIZ-1).
	maxName = 15
)

// seq numbers the namespaces of this process.
var seq atomic.Uint64

// newName names a namespace "ss-<pid>-<n>-<label>", pid and n in base 36, the label
// cleaned to [A-Za-z0-9_.] and cut so that the whole name fits in maxName bytes.
// The pid is what lets a later process tell a stale namespace from a live one.
func newName(pid int, n uint64, label string) string {
	base := namePrefix + strconv.FormatInt(int64(pid), 36) + "-" + strconv.FormatUint(n, 36)
	clean := []byte(label)
	for i, c := range clean {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			clean[i] = '_'
		}
	}
	room := maxName - len(base) - 1
	if room <= 0 || len(clean) == 0 {
		return base
	}
	if len(clean) > room {
		clean = clean[:room]
	}
	return base + "-" + string(clean)
}

// ownerPID returns the pid encoded in a name newName made, and false for any other name.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	parts := strings.SplitN(rest, "-", 3)
	if len(parts) < 2 {
		return 0, false
	}
	pid, err := strconv.ParseInt(parts[0], 36, 32)
	if err != nil || pid <= 0 {
		return 0, false
	}
	if _, err := strconv.ParseUint(parts[1], 36, 64); err != nil {
		return 0, false
	}
	return int(pid), true
}

// alive reports whether a process with this pid exists (EPERM means it does).
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// Sweep deletes the namespaces this package named for processes that no longer exist
// (a test binary killed before its cleanups ran), first killing what still runs inside
// them (a Command that outlived its test), and returns their names; namespaces of live
// processes, this one included, are left alone. It assumes that every process using
// /run/netns shares this process's pid namespace.
func Sweep() ([]string, error) {
	return sweep(func(pid int) bool { return !alive(pid) })
}

// sweepAtStart is Sweep before this process has made any namespace: one carrying this
// process's own pid must then be left by an earlier process that had the same pid.
func sweepAtStart() ([]string, error) {
	self := os.Getpid()
	return sweep(func(pid int) bool { return pid == self || !alive(pid) })
}

func sweep(stale func(pid int) bool) ([]string, error) {
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: sweep: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || !stale(pid) {
			continue
		}
		if f, ino, err := openNS(filepath.Join(runDir, e.Name())); err == nil {
			killInside(ino)
			f.Close()
		}
		if err := deleteNS(e.Name()); err != nil {
			if _, serr := os.Stat(filepath.Join(runDir, e.Name())); errors.Is(serr, fs.ErrNotExist) {
				continue // another process swept it first
			}
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("netns: sweep: %w", errors.Join(errs...))
	}
	return removed, nil
}
