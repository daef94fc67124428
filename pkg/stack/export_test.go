package stack

import (
	"testing"

	"github.com/shardstack/shardstack/pkg/hash"
)

// SetTCPICMPErrorHookForTest makes tcpICMPError call fn (with the flow as a string) for the
// rest of the test.
func SetTCPICMPErrorHookForTest(t *testing.T, fn func(k string, typ, code uint8, info, seq uint32)) {
	tcpICMPErrorHook = func(_ int, k *hash.Key, typ, code uint8, info, seq uint32) { fn(k.String(), typ, code, info, seq) }
	t.Cleanup(func() { tcpICMPErrorHook = nil })
}
