package netns

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// offloads are the ethtool -k lines SetOffloads sets, by the -K keyword that sets each.
var offloads = []struct{ keyword, feature string }{
	{"tso", "tcp-segmentation-offload"},
	{"gso", "generic-segmentation-offload"},
	{"gro", "generic-receive-offload"},
	{"tx", "tx-checksumming"},
}

// SetOffloads turns TSO, GSO, GRO and transmit checksumming on dev on or off with
// ethtool -K and checks with ethtool -k that all four took. It returns the error rather
// than failing the test, so the caller decides whether offloads matter; when ethtool is
// not installed the error wraps exec.ErrNotFound.
func (ns *NS) SetOffloads(t testing.TB, dev string, on bool) error {
	t.Helper()
	if _, err := exec.LookPath("ethtool"); err != nil {
		return fmt.Errorf("netns: offloads of %s: %w", dev, err)
	}
	state := "off"
	if on {
		state = "on"
	}
	args := []string{"ethtool", "-K", dev}
	for _, o := range offloads {
		args = append(args, o.keyword, state)
	}
	if _, err := ns.run("", args...); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	out, err := ns.run("", "ethtool", "-k", dev)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	got := features(out)
	for _, o := range offloads {
		if got[o.feature] != state {
			return fmt.Errorf("netns: ethtool -K %s %s %s left %s %q", dev, o.keyword, state, o.feature, got[o.feature])
		}
	}
	return nil
}

// features parses ethtool -k output ("tcp-segmentation-offload: off [fixed]") into
// feature name and state.
func features(out string) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 {
			m[name] = f[0]
		}
	}
	return m
}
