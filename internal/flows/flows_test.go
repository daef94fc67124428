package flows

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loopback serves s on 127.0.0.1 and returns a dialer that wraps each connection with wrap.
func loopback(t *testing.T, s *Server, wrap func(net.Conn) net.Conn) Dialer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go s.Serve(l)
	t.Cleanup(func() { l.Close(); s.Wait() })
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", l.Addr().String())
		if err != nil || wrap == nil {
			return c, err
		}
		return wrap(c), nil
	}
}

func TestRun_EveryFlowCompletes(t *testing.T) {
	for _, check := range []bool{true, false} {
		w, err := New(4, 300_001, 7, check)
		require.NoError(t, err)
		s := &Server{Deadline: time.Minute}
		dial := loopback(t, s, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res := w.Run(ctx, dial)
		cancel()
		require.NoError(t, res.Err)
		require.Equal(t, 4, res.Completed)
		require.Equal(t, w.Total(), res.Written)
		require.Positive(t, res.Elapsed)
		for _, d := range res.FlowTimes {
			require.Positive(t, d)
		}
		require.Eventually(t, func() bool { return s.Answered() == 4 }, 10*time.Second, time.Millisecond)
		require.Equal(t, w.Total(), s.Received())
		require.NoError(t, s.Err())
	}
}

// flipper corrupts one byte the sender writes, as a stack that delivered a wrong byte would.
type flipper struct {
	net.Conn
	at, seen int
}

func (f *flipper) Write(p []byte) (int, error) {
	if f.at >= f.seen && f.at < f.seen+len(p) {
		q := append([]byte(nil), p...)
		q[f.at-f.seen] ^= 1
		p = q
	}
	f.seen += len(p)
	return f.Conn.Write(p)
}

func TestRun_CorruptByteFailsTheFlow(t *testing.T) {
	w, err := New(1, 100_000, 7, true)
	require.NoError(t, err)
	s := &Server{Deadline: time.Minute}
	dial := loopback(t, s, func(c net.Conn) net.Conn { return &flipper{Conn: c, at: headerLen + 54_321} })
	res := w.Run(context.Background(), dial)
	require.ErrorContains(t, res.Err, "SHA-256")
	require.Zero(t, res.Completed)
}

// A receiver that never reads makes the run fail at the context's deadline, not hang.
func TestRun_StallFailsAtTheDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never read
		}
	}()
	w, err := New(2, 64<<20, 1, false)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := w.Run(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", l.Addr().String())
	})
	require.Error(t, res.Err)
	require.Zero(t, res.Completed)
	require.Less(t, res.Written, w.Total())
	require.Less(t, res.Elapsed, 20*time.Second)
}

func TestPattern_DiffersByFlowAndSeed(t *testing.T) {
	a, b, c := Pattern(1, 0, 64), Pattern(1, 1, 64), Pattern(2, 0, 64)
	require.Equal(t, a, Pattern(1, 0, 64))
	require.NotEqual(t, a, b)
	require.NotEqual(t, a, c)
	_, err := New(0, 1, 1, true)
	require.Error(t, err)
}

func TestMedian(t *testing.T) {
	require.Zero(t, Median(nil))
	xs := []float64{30, 10, 20}
	require.Equal(t, 20.0, Median(xs))
	require.Equal(t, []float64{30, 10, 20}, xs, "the input keeps its order")
	require.Equal(t, 15.0, Median([]float64{20, 10}))
	require.Equal(t, 25.0, Median([]float64{40, 10, 20, 30}))
}
