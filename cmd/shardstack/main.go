// Command shardstack shows shardstack off and reproduces its experiments.
//
//	shardstack demo [flags]          open, use and close connections between two stacks
//	shardstack lab backlog [flags]   the seed documents' listen-backlog experiments
//	shardstack help [command]        the commands, or one command's flags
//
// Exit status: 0 on success and for -h, --help or help; 1 when a run fails (for the demo,
// when any connection failed, --json or not); 2 for a mistake on the command line.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shardstack/shardstack/internal/demo"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line was wrong; nothing ran
)

// A command is one row of a command table: what follows the program name selects it.
type command struct {
	name    string
	summary string // one line for the table in the usage text
	run     func(e *env, args []string) error
}

// commands is the top-level table. A run func parses its args with newFlagSet, returns a
// usageError (through flagSet.parse or flagSet.errorf) for a bad command line and any other
// error for a failed run; run maps them to exit statuses.
var commands = []command{
	{"demo", "open, use and close connections between two stacks in one process", runDemo},
	{"lab", "replay experiments on a virtual clock (lab backlog)", runLab},
	{"serve", "serve an application on a real link (AF_PACKET) or on Linux's stack", runServe},
	{"load", "open, use and close connections to a server as fast as possible, over a real link", runLoad},
}

// env is what a command runs against: where it writes, and hooks for tests.
type env struct {
	stdout, stderr io.Writer
	// demoConfig, when set, edits the demo's configuration after its flags are read; tests
	// use it to point the clients at a port with no listener.
	demoConfig func(*demo.Config)
	// stop, when set, ends a serve when it is closed (tests; users send SIGINT).
	stop <-chan struct{}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args (without the program name) and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return (&env{stdout: stdout, stderr: stderr}).run(args)
}

func (e *env) run(args []string) int {
	err := dispatch(e, "shardstack", commands, args)
	var help *helpRequest
	var bad *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &help):
		help.usage(e.stdout)
		return exitOK
	case errors.As(err, &bad):
		fmt.Fprintf(e.stderr, "%s: %s\n", bad.prog, bad.msg)
		bad.usage(e.stderr)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "shardstack: %v\n", err)
		return exitFailure
	}
}

// dispatch runs the command of cmds that args[0] names; prog is the command line that led
// here ("shardstack", "shardstack lab"). "help NAME" is "NAME -h".
func dispatch(e *env, prog string, cmds []command, args []string) error {
	usage := func(w io.Writer) { commandUsage(w, prog, cmds) }
	if len(args) == 0 {
		return &usageError{prog, "no command given", usage}
	}
	name := args[0]
	switch {
	case isHelpFlag(name):
		return &helpRequest{usage}
	case name == "help":
		switch {
		case len(args) == 1 || isHelpFlag(args[1]) || args[1] == "help":
			return &helpRequest{usage}
		case len(args) > 2:
			return &usageError{prog, fmt.Sprintf("help takes one command, not %q", strings.Join(args[1:], " ")), usage}
		}
		name, args = args[1], []string{name, "-h"}
	}
	for _, c := range cmds {
		if c.name == name {
			return c.run(e, args[1:])
		}
	}
	return &usageError{prog, fmt.Sprintf("unknown command %q", name), usage}
}

func isHelpFlag(s string) bool {
	return s == "-h" || s == "--help" || s == "-help"
}

// commandUsage writes the usage of a command that takes a subcommand: its table.
func commandUsage(w io.Writer, prog string, cmds []command) {
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", prog)
	width := len("help")
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "help", "this text, or with a command's name that command's flags")
	fmt.Fprintf(w, "\n'%s <command> -h' lists a command's flags.\n", prog)
}
