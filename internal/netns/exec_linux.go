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

// run runs a command in the host's namespace with stdin (if any) and returns its stdout;
// a failure's error names the command and carries its stderr. Its errors have no
// "netns:" prefix: the exported function that surfaces one adds it.
func run(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return runCmd(exec.CommandContext(ctx, name, args...), stdin, "")
}

// runCmd runs cmd with stdin (if any) and returns its stdout, as run does; a failure's
// error names the command as what says, or by its arguments if what is "".
func runCmd(cmd *exec.Cmd, stdin, what string) (string, error) {
	if what == "" {
		what = strings.Join(cmd.Args, " ")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return stdout.String(), fmt.Errorf("%s: %w", what, err)
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", what, err, msg)
	}
	return stdout.String(), nil
}

// deleteNS removes a namespace's name; the namespace itself goes when nothing else
// (a process, an open socket, a descriptor) holds it.
func deleteNS(name string) error {
	_, err := run("", "ip", "netns", "delete", name)
	return err
}
