package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// usageError is a mistake on the command line (an unknown command or flag, a bad or
// out-of-range value, a missing or extra argument): run prints it, one line, then the
// usage of the command it was made in, both to stderr, and exits 2.
type usageError struct {
	prog  string // the command, e.g. "shardstack demo"
	msg   string
	usage func(io.Writer)
}

// Error returns the one-line message, prefixed with the command.
func (e *usageError) Error() string { return e.prog + ": " + e.msg }

// helpRequest is an explicit -h, --help or help: run prints the usage to stdout and exits 0.
type helpRequest struct {
	usage func(io.Writer)
}

// Error says what happened, for a caller that only logs it.
func (h *helpRequest) Error() string { return "help requested" }

// flagSet is a command's flags and usage text. Its parse returns a helpRequest for -h and
// a usageError for anything else wrong, so that commands share one behaviour for both.
type flagSet struct {
	*flag.FlagSet
	prog  string // the command line that selects the command, e.g. "shardstack lab backlog"
	about string // what the command does, printed under the usage line
}

// newFlagSet returns an empty flag set for the command prog; about may be several lines.
func newFlagSet(prog, about string) *flagSet {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	// run prints errors and usage itself, to the stream the exit status calls for.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, prog: prog, about: about}
}

// usage writes the usage line, the about text and the flags with their defaults.
func (f *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s [flags]\n\n%s\n\nflags:\n", f.prog, f.about)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// parse parses args, which must be all flags: positional arguments are a usage error.
func (f *flagSet) parse(args []string) error {
	err := f.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return &helpRequest{f.usage}
	case err != nil:
		return &usageError{f.prog, err.Error(), f.usage}
	case f.NArg() > 0:
		return f.errorf("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// errorf returns a usageError of this command, for values the flags' own parsing cannot
// reject (ranges, combinations).
func (f *flagSet) errorf(format string, args ...any) error {
	return &usageError{f.prog, fmt.Sprintf(format, args...), f.usage}
}

// given reports whether the flag called name was set on the command line.
func (f *flagSet) given(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// multiFlag is a string flag that may be given more than once; each use appends its value,
// in command-line order (for flags such as --addr 198.18.0.1/24 --addr 198.18.1.1/24).
type multiFlag []string

// String returns the values joined by commas.
func (m *multiFlag) String() string {
	if m == nil { // the flag package may ask a zero value
		return ""
	}
	return strings.Join(*m, ",")
}

// Set appends v.
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// sysctlFlag is a repeatable name=value flag that sets each knob on a tcp.Settings as it is
// parsed, by the name sysctl -w uses (net.ipv4.tcp_synack_retries=3, or the short
// tcp_synack_retries=3): an unknown knob or a bad value is a usage error, caught by parse.
type sysctlFlag struct {
	settings *tcp.Settings
	icmp     *stack.ICMPSettings // net.ipv4.icmp_* knobs, where the command takes them
	given    multiFlag           // name=value as given, in order
}

// sysctlVar defines a sysctlFlag called name on fs that sets knobs on s.
func sysctlVar(fs *flag.FlagSet, s *tcp.Settings, name, usage string) *sysctlFlag {
	f := &sysctlFlag{settings: s}
	fs.Var(f, name, usage)
	return f
}

// String returns the name=value pairs as given, joined by commas.
func (f *sysctlFlag) String() string {
	if f == nil {
		return ""
	}
	return f.given.String()
}

// Set sets one name=value on the settings.
func (f *sysctlFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New("want name=value, e.g. net.ipv4.tcp_synack_retries=3")
	}
	name = strings.TrimSpace(name)
	if short := strings.TrimPrefix(strings.ReplaceAll(name, "/", "."), "net.ipv4."); f.icmp != nil && strings.HasPrefix(short, "icmp_") {
		if err := f.icmp.Set("net.ipv4."+short, value); err != nil {
			return err
		}
		return f.given.Set(v)
	}
	if err := f.settings.Set(name, value); err != nil {
		return err
	}
	return f.given.Set(v)
}

// secondsFlag is a duration flag that also takes a bare number of seconds, so that
// --seconds 10 and --seconds 10s mean the same.
func secondsFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Func(name, fmt.Sprintf("%s (default %v)", usage, def), func(v string) error {
		parsed, err := parseSeconds(v)
		if err != nil {
			return err
		}
		d = parsed
		return nil
	})
	return &d
}

func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if !(f >= 0 && f <= (1<<63-1)/float64(time.Second)) { // also NaN
			return 0, fmt.Errorf("%q seconds is out of range", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("want seconds (10, 0.5) or a duration (10s, 500ms)")
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

// startCPUProfile starts a CPU profile into path (none when path is empty) and returns the
// function that stops it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
