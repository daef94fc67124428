package tcp_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// requireDialError checks the shape Go's net gives a failed Dial: a *net.OpError, Op "dial",
// Net "tcp", the remote address, the cause inside, and Timeout() as asked.
func requireDialError(t *testing.T, err error, cause error, timeout bool) *net.OpError {
	t.Helper()
	require.Error(t, err)
	var op *net.OpError
	require.True(t, errors.As(err, &op), "%T: %v", err, err)
	require.Equal(t, "dial", op.Op)
	require.Equal(t, "tcp", op.Net)
	require.Equal(t, serverAP.String(), op.Addr.String())
	require.ErrorIs(t, err, cause)
	var ne net.Error
	require.True(t, errors.As(err, &ne))
	require.Equal(t, timeout, ne.Timeout(), "Timeout() of %v", err)
	return op
}

// dialBlocking runs the blocking Dial on another goroutine (it waits on the stack's clock
// while the test drives the simnet) and returns once its SYN is being handled.
func dialBlocking(t *testing.T, n *simnet.Net, ctx context.Context) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() {
		c, err := n.Client.Dial(ctx, serverAP.String())
		if c != nil {
			c.Close()
		}
		res <- err
	}()
	settleUntil(t, n, func() bool {
		select {
		case err := <-res:
			res <- err
			return true
		default:
		}
		return len(n.Client.Sockets()) > 0
	})
	return res
}

// A refused Dial: ECONNREFUSED through errors.Is, not a timeout, with the local address
// it had picked.
func TestDial_RefusedIsOpError(t *testing.T) {
	n := newNet(t, simnetOpts())
	res := dialBlocking(t, n, context.Background())
	n.RunFor(time.Millisecond)
	err := <-res
	op := requireDialError(t, err, tcp.ErrConnectionRefused, false)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.NotNil(t, op.Source)
	require.Regexp(t, `^dial tcp 198\.18\.0\.2:\d+->198\.18\.0\.1:80: tcp: connection refused$`, err.Error())
}

// A Dial whose SYNs go unanswered until tcp_syn_retries is used up: ETIMEDOUT, a timeout.
func TestDial_SynTimeoutIsTimeout(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, ClientTCP: tcp.Settings{TCPSynRetries: 2}})
	w := newWire(n)
	w.cutToS = true
	res := dialBlocking(t, n, context.Background())
	n.RunUntil(at(10), nil)
	requireDialError(t, <-res, tcp.ErrTimedOut, true)
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// A cancelled Dial: context.Canceled inside, not a timeout; one whose context's deadline
// passes: context.DeadlineExceeded inside, a timeout.
func TestDial_ContextIsOpError(t *testing.T) {
	n := newNet(t, simnetOpts())
	w := newWire(n)
	w.cutToS = true
	_, err := n.Client.Dial(cancelled(), serverAP.String())
	requireDialError(t, err, context.Canceled, false)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := n.Client.DialTCP(ctx, serverAP)
		res <- err
	}()
	for done := false; !done; {
		select {
		case err = <-res:
			done = true
		default:
			n.Settle()
			runtime.Gosched()
		}
	}
	requireDialError(t, err, context.DeadlineExceeded, true)
	n.Settle()
	require.Empty(t, n.Client.Sockets(), "the attempt was dropped")
}

// The errors a Dial finds before sending anything have the same shape.
func TestDial_EarlyErrorsAreOpErrors(t *testing.T) {
	n := newNet(t, simnetOpts())
	_, err := n.Client.DialTCP(context.Background(), netip.AddrPortFrom(serverAP.Addr(), 0))
	var op *net.OpError
	require.True(t, errors.As(err, &op))
	require.ErrorIs(t, err, tcp.ErrInvalid)
	_, err = n.Client.Dial(context.Background(), "not an address")
	require.True(t, errors.As(err, &op))
	require.Equal(t, "dial", op.Op)
	var ae *net.AddrError
	require.True(t, errors.As(err, &ae))
	_, err = n.Client.TCP().DialAsyncHandle(serverAP, tcp.DialOptions{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: 40000 * time.Second}})
	requireDialError(t, err, tcp.ErrInvalid, false)
}
