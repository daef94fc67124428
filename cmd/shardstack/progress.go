package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar is a one-line bar redrawn in place on a terminal: how far a run is toward its
// target count or its time span, whichever is further along, with the count and the rate
// so far. A nil *progressBar draws nothing, so a command can keep one whether or not its
// output is a terminal (isTerminal) and call it unconditionally.
type progressBar struct {
	w     io.Writer
	total int64         // the count that fills the bar (0: none)
	span  time.Duration // the time that fills the bar (0: none)
	unit  string        // what is counted, e.g. "conns"

	mu    sync.Mutex // update may run on a ticker's goroutine, clear on the command's
	drawn bool
}

// progressWidth is the bar's length in characters between its brackets.
const progressWidth = 30

// newProgressBar returns a bar on w that is full at total units or after span, whichever
// comes first; either may be 0 for "no such limit".
func newProgressBar(w io.Writer, total int64, span time.Duration, unit string) *progressBar {
	return &progressBar{w: w, total: total, span: span, unit: unit}
}

// update redraws the bar for done units after elapsed; its signature is the demo's
// Config.Progress, so a method value plugs in directly.
func (b *progressBar) update(done int64, elapsed time.Duration) {
	if b == nil {
		return
	}
	frac := 0.0
	if b.span > 0 {
		frac = float64(elapsed) / float64(b.span)
	}
	if b.total > 0 {
		frac = max(frac, float64(done)/float64(b.total))
	}
	frac = min(max(frac, 0), 1)
	n := int(frac * progressWidth)
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%  %d %s  %.0f %s/s ",
		strings.Repeat("#", n), strings.Repeat(".", progressWidth-n), frac*100, done, b.unit, rate, b.unit)
	b.drawn = true
}

// clear erases the bar's line, if it drew one, so that what follows starts on a clean line.
func (b *progressBar) clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}
