package tcp

import (
	"net"
	"os"
	"syscall"
)

// Errors returned at the API edge. They wrap the errno Linux would give, so errors.Is works
// against both (errors.Is(err, syscall.ECONNREFUSED) is true for ErrConnectionRefused).
var (
	ErrConnectionRefused = &Error{"connection refused", syscall.ECONNREFUSED}
	ErrConnectionReset   = &Error{"connection reset by peer", syscall.ECONNRESET}
	ErrTimedOut          = &Error{"connection timed out", syscall.ETIMEDOUT}
	ErrAddrInUse         = &Error{"address already in use", syscall.EADDRINUSE}
	ErrAddrNotAvail      = &Error{"cannot assign requested address", syscall.EADDRNOTAVAIL}
	errBufferSize        = &Error{"invalid argument", syscall.EINVAL}
	ErrNetUnreachable    = &Error{"network is unreachable", syscall.ENETUNREACH}
	ErrNotConnected      = &Error{"socket is not connected", syscall.ENOTCONN}
	ErrBrokenPipe        = &Error{"broken pipe", syscall.EPIPE}
	ErrAborted           = &Error{"software caused connection abort", syscall.ECONNABORTED}
	ErrInvalid           = &Error{"invalid argument", syscall.EINVAL}
	// ErrNoBufferSpace is ENOBUFS: the shard had no packet buffer for the SYN of a Dial (the
	// link's pool is exhausted), as Linux's connect(2) fails when it cannot allocate one.
	ErrNoBufferSpace = &Error{"no buffer space available", syscall.ENOBUFS}
	// ErrWouldBlock is returned by the non-blocking variants (TryRead, TryAccept, ...)
	// when the operation would have to wait.
	ErrWouldBlock = &Error{"operation would block", syscall.EAGAIN}
	// ErrClosed is net.ErrClosed: the Conn or Listener was closed by this side.
	ErrClosed = net.ErrClosed
	// ErrDeadline is os.ErrDeadlineExceeded.
	ErrDeadline = os.ErrDeadlineExceeded
)

// Error is a TCP error with its errno.
type Error struct {
	msg   string
	errno syscall.Errno
}

// Error implements error with the tcp: prefix.
func (e *Error) Error() string { return "tcp: " + e.msg }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.errno }

// Timeout reports whether the error is a timeout (net.Error).
func (e *Error) Timeout() bool { return e.errno == syscall.ETIMEDOUT || e.errno == syscall.EAGAIN }

// Temporary is part of net.Error (deprecated there, kept for old callers).
func (e *Error) Temporary() bool { return e.errno == syscall.EAGAIN }

// errno codes stored in connections (an atomic int32 cannot hold an error).
const (
	errNone int32 = iota
	errRefused
	errReset
	errTimedOut
	errAddrNotAvail
	errNetUnreach
	errAborted
	errPipe
	errAddrInUse
	errNoBufs
	errHostUnreach // the ICMP errors' errnos (icmp.go)
	errProto
	errNoProtoOpt
	errMsgSize
	errOpNotSupp
	errHostDown
	errNoNet
)

var errTable = [...]error{
	errNone:         nil,
	errRefused:      ErrConnectionRefused,
	errReset:        ErrConnectionReset,
	errTimedOut:     ErrTimedOut,
	errAddrNotAvail: ErrAddrNotAvail,
	errNetUnreach:   ErrNetUnreachable,
	errAborted:      ErrAborted,
	errPipe:         ErrBrokenPipe,
	errAddrInUse:    ErrAddrInUse,
	errNoBufs:       ErrNoBufferSpace,
	errHostUnreach:  ErrHostUnreachable,
	errProto:        ErrProtocol,
	errNoProtoOpt:   ErrProtocolNotAvailable,
	errMsgSize:      ErrMessageTooLong,
	errOpNotSupp:    ErrOperationNotSupported,
	errHostDown:     ErrHostDown,
	errNoNet:        ErrNoNetwork,
}

func errOf(code int32) error {
	if code <= 0 || int(code) >= len(errTable) {
		return nil
	}
	return errTable[code]
}

var _ net.Error = (*Error)(nil)
