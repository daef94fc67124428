package netns

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// cmdTimeout bounds every command this package runs for itself and every Run.
const cmdTimeout = time.Minute

// run runs a command with stdin (if any) and returns its stdout; a failure's error
// names the command and carries its stderr. Its errors have no "netns:" prefix: the
// exported function that surfaces one adds it.
func run(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return stdout.String(), fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, msg)
	}
	return stdout.String(), nil
}

// deleteNS removes a namespace's name; the namespace itself goes when nothing else
// (a process, an open socket) holds it.
func deleteNS(name string) error {
	_, err := run("", "ip", "netns", "delete", name)
	return err
}
