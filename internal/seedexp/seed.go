package seedexp

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// Port is the port the seed's server listens on (SERVER_PORT).
const Port = 20000

// Message is what the seed's client sends each time (13 bytes).
const Message = "hello, world!"

// The seed programs' timing and buffers.
const (
	// SendEvery is the client's sleep(2) before each send.
	SendEvery = 2 * time.Second
	// ReplyPause is the server's sleep(1) between recv() and send().
	ReplyPause = time.Second
	// ClientBuffer is client.c's BUFFER_SIZE, the most one recv() takes.
	ClientBuffer = 256
	// ServerBuffer is server.c's BUFFER_SIZE, the most one recv() takes.
	ServerBuffer = 255
)

// ReplyLen is the length of the server's reply to Message: the message, " : " and ctime()'s
// 24 characters and newline.
const ReplyLen = len(Message) + len(replySep) + len(ctimeLayout) + 1

const (
	replySep    = " : "
	ctimeLayout = "Mon Jan _2 15:04:05 2006" // ctime(3) without its newline
)

// Epoch is the calendar time a virtual clock's zero stands for: 3 s before the seed's first
// reply in §1.5 ("Thu Oct 17 15:25:37 2013"), so a client started at 0, sending at 2 s,
// gets that very timestamp back at 3 s.
var Epoch = time.Date(2013, time.October, 17, 15, 25, 34, 0, time.UTC)

// Reply returns what server.c sends back for a received message: the message, " : " and
// ctime(now), newline included.
func Reply(msg []byte, now time.Time) []byte {
	out := make([]byte, 0, len(msg)+len(replySep)+len(ctimeLayout)+1)
	out = append(out, msg...)
	out = append(out, replySep...)
	out = now.AppendFormat(out, ctimeLayout)
	return append(out, '\n')
}

// Outcomes a client reports, worded as the backlog lab prints them ("CONNECT FAILED" is
// client.c's perror prefix).
const (
	OutcomeNotStarted = "not started"
	OutcomeConnecting = "still connecting"
	OutcomeConnected  = "connected"
	OutcomeClosed     = "closed by the server"
	OutcomeReset      = "CONNECT FAILED: connection reset by peer"
	OutcomeTimedOut   = "CONNECT FAILED: timed out"
	OutcomeRefused    = "CONNECT FAILED: connection refused"
)

// failure words an error as the lab reports a client's end; it matches the errnos that
// both shardstack's errors and Go's net errors wrap.
func failure(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return OutcomeReset
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimedOut
	case errors.Is(err, syscall.ECONNREFUSED):
		return OutcomeRefused
	}
	return "CONNECT FAILED: " + err.Error()
}
