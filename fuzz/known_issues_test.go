package fuzz

import "testing"

// issue names a bug in pkg/ that a target of this package found and that is not fixed yet.
type issue int

const (
	issueAckUnsentLoop issue = iota + 1
	issueZeroWindowForever
)

// knownIssues is the one list of open bugs the targets step around. When pkg/ fixes one,
// delete its line: the fuzz targets then enforce the invariant it broke again, and the
// regression test that reproduces it stops skipping.
var knownIssues = map[issue]string{
	issueAckUnsentLoop: "pkg/tcp answers every ACK of data it never sent with an ACK (RFC 9293's rule, " +
		"without Linux's tcp_invalid_ratelimit or its silent drop in ESTABLISHED), so a peer that " +
		"likewise re-ACKs an unacceptable segment with the same acknowledgment ping-pongs with it " +
		"forever in one instant (two shardstack stacks do the same)",
	issueZeroWindowForever: "pkg/tcp probes a zero window for ever: a peer that stops answering never " +
		"makes it give up (Linux tcp_probe_timer aborts after tcp_retries2 unanswered probes, " +
		"tcp_orphan_retries once the socket is closed)",
}

// knownIssue reports whether id is still open; a rig that steps around it notes the fact.
func knownIssue(r *connRig, id issue) bool {
	_, open := knownIssues[id]
	if open && r != nil {
		r.known[id]++
		r.note("known issue %d: %s", id, knownIssues[id])
	}
	return open
}

// skipIfKnown skips a regression test whose bug is still open, with its description.
func skipIfKnown(t *testing.T, id issue) {
	t.Helper()
	if reason, open := knownIssues[id]; open {
		t.Skip("knownIssue: " + reason)
	}
}
