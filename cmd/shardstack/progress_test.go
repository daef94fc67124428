package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProgressBar_FillsByCountOrTimeWhicheverIsFurther(t *testing.T) {
	for _, tc := range []struct {
		name    string
		total   int64
		span    time.Duration
		done    int64
		elapsed time.Duration
		want    string
	}{
		{"by count", 100, 10 * time.Second, 50, time.Second,
			"\r[###############...............]  50%  50 conns  50 conns/s "},
		{"by time", 1000, 10 * time.Second, 10, 5 * time.Second,
			"\r[###############...............]  50%  10 conns  2 conns/s "},
		{"count only", 200, 0, 50, 2 * time.Second,
			"\r[#######.......................]  25%  50 conns  25 conns/s "},
		{"time only", 0, 4 * time.Second, 7, time.Second,
			"\r[#######.......................]  25%  7 conns  7 conns/s "},
		{"past the end", 10, time.Second, 20, 2 * time.Second,
			"\r[##############################] 100%  20 conns  10 conns/s "},
	} {
		var buf bytes.Buffer
		newProgressBar(&buf, tc.total, tc.span, "conns").update(tc.done, tc.elapsed)
		require.Equal(t, tc.want, buf.String(), tc.name)
	}
}

func TestProgressBar_ClearErasesOnlyWhatItDrew(t *testing.T) {
	var buf bytes.Buffer
	b := newProgressBar(&buf, 10, 0, "conns")
	b.clear()
	require.Empty(t, buf.String(), "nothing drawn, nothing to erase")
	b.update(5, time.Second)
	b.update(6, time.Second)
	b.clear()
	require.Equal(t, 2, strings.Count(buf.String(), "\r["))
	require.True(t, strings.HasSuffix(buf.String(), "\r\033[K"), "%q", buf.String())
	b.clear()
	require.Equal(t, 1, strings.Count(buf.String(), "\033[K"), "a second clear erases nothing")

	var none *progressBar // what a command holds when its output is no terminal
	none.update(1, time.Second)
	none.clear()
}
