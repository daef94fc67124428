//go:build !linux

package netns

import (
	"runtime"
	"testing"
)

// Require skips the test: network namespaces exist only on Linux.
func Require(t testing.TB) {
	t.Helper()
	t.Skipf("netns: network namespaces need Linux, not %s", runtime.GOOS)
}
