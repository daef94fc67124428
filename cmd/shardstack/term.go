package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal, where a progress bar may redraw its line.
// x/term asks each GOOS its own way (TCGETS on Linux, TIOCGETA on the BSDs and darwin,
// GetConsoleMode on Windows); a raw TCGETS ioctl builds on Linux only.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
