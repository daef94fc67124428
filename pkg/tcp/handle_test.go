package tcp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/tcp"
)

const raceBytes = 2_400_000

// Two goroutines TryRead one handle at once while 2,400,000 bytes arrive: every byte is
// received exactly once (the receive ring has one consumer, so the second reader waits
// its turn or is told ErrWouldBlock, never consumes the same bytes again).
func TestHandle_ConcurrentTryRead(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	h := p.c.Handle
	var got atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1000)
			for {
				k, err := h.TryRead(buf)
				got.Add(int64(k))
				switch {
				case err == nil:
				case errors.Is(err, tcp.ErrWouldBlock):
					runtime.Gosched()
				case err == io.EOF:
					return
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	chunk := make([]byte, 8192)
	sent := 0
	for sent < raceBytes {
		k, err := p.s.TryWrite(chunk[:min(len(chunk), raceBytes-sent)])
		if err != nil {
			require.ErrorIs(t, err, tcp.ErrWouldBlock)
		}
		sent += k
		p.n.RunFor(time.Millisecond)
		runtime.Gosched()
	}
	require.NoError(t, p.s.Close())
	pump(t, p.n, done, time.Hour)
	require.Equal(t, int64(raceBytes), got.Load())
}

// Two goroutines TryWrite one handle at once: the send ring has one producer, so the
// peer receives every byte of both exactly once.
func TestHandle_ConcurrentTryWrite(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	h := p.c.Handle
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := make([]byte, 1000)
			for j := range chunk {
				chunk[j] = byte(i + 1)
			}
			for left := raceBytes / 2; left > 0; {
				k, err := h.TryWrite(chunk[:min(len(chunk), left)])
				left -= k
				if err != nil {
					if !errors.Is(err, tcp.ErrWouldBlock) {
						t.Error(err)
						return
					}
					runtime.Gosched()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var got [3]int
	buf := make([]byte, 16384)
	drain := func() {
		for {
			k, err := p.s.TryRead(buf)
			for _, b := range buf[:k] {
				got[min(int(b), 2)]++
			}
			if err != nil {
				return
			}
		}
	}
	pumpWith(t, p.n, done, drain)
	require.NoError(t, p.c.CloseWrite())
	for i := 0; got[1]+got[2]+got[0] < raceBytes && i < 100000; i++ {
		p.n.RunFor(time.Millisecond)
		drain()
	}
	require.Equal(t, [3]int{0, raceBytes / 2, raceBytes / 2}, got)
}

// pumpWith is pump with fn run after every step.
func pumpWith(t *testing.T, n *simnet.Net, done <-chan struct{}, fn func()) {
	t.Helper()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		require.Less(t, i, 10_000_000)
		n.RunFor(time.Millisecond)
		fn()
		runtime.Gosched()
	}
}

// A handle outlives its connection: once closed it gets ErrClosed or a zero value from
// every method and never touches the connection that reuses its endpoint. 1,200 closed
// handles writing user data while 1,200 new connections hold theirs leave the new ones'
// data alone.
func TestHandle_StaleUserData(t *testing.T) {
	n := newNet(t, simnetOpts())
	srv := &evRecorder{closeEOF: true}
	_, err := n.Server.ListenTCP(serverAP, tcp.ListenOptions{Backlog: 2048, Events: srv})
	require.NoError(t, err)
	const conns = 1200
	dialAll := func(base uint64) []tcp.Handle {
		hs := make([]tcp.Handle, conns)
		for i := range hs {
			h, err := n.Client.DialAsyncHandle(serverAP, tcp.DialOptions{})
			require.NoError(t, err)
			require.NoError(t, h.SetUserData(base+uint64(i)))
			hs[i] = h
		}
		n.RunFor(time.Millisecond)
		for _, h := range hs {
			require.Equal(t, tcp.StateEstablished, h.State())
		}
		return hs
	}
	old := dialAll(1 << 40)
	for _, h := range old {
		require.NoError(t, h.Abort())
	}
	n.RunFor(time.Millisecond) // every endpoint goes back to its pool
	live := dialAll(0)
	for _, h := range old {
		require.ErrorIs(t, h.SetUserData(0xdead), net.ErrClosed)
		require.Zero(t, h.UserData())
		require.Equal(t, -1, h.Shard())
		require.Equal(t, tcp.StateClosed, h.State())
		require.ErrorIs(t, h.SetKeepAlive(true), net.ErrClosed)
		require.ErrorIs(t, h.SetLinger(0), net.ErrClosed)
		require.ErrorIs(t, h.CloseWrite(), net.ErrClosed)
		require.ErrorIs(t, h.Close(), net.ErrClosed)
		c := tcp.NewConn(h)
		require.False(t, c.LocalAddrPort().IsValid(), "a Conn of a closed handle takes nothing from the endpoint's new connection")
		require.False(t, c.RemoteAddrPort().IsValid())
	}
	n.RunFor(time.Millisecond)
	for i, h := range live {
		require.Equal(t, uint64(i), h.UserData(), "connection %d", i)
		require.Equal(t, tcp.StateEstablished, h.State(), "connection %d", i)
		require.Equal(t, 0, h.Shard())
	}
}

// zeroArgs returns zero values for a method's parameters.
func zeroArgs(m reflect.Method) []reflect.Value {
	var args []reflect.Value
	for i := 1; i < m.Type.NumIn(); i++ { // 0 is the receiver
		args = append(args, reflect.Zero(m.Type.In(i)))
	}
	return args
}

// callAll calls every exported method of v with zero arguments and reports the ones that
// panicked.
func callAll(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := 0; i < rv.NumMethod(); i++ {
		m := rv.Type().Method(i)
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%v.%s panicked: %v", rv.Type(), m.Name, r)
				}
			}()
			out := rv.Method(i).Call(zeroArgs(m))
			for _, o := range out {
				if o.Type() == reflect.TypeFor[error]() {
					require.False(t, o.IsNil(), "%v.%s returned a nil error", rv.Type(), m.Name)
				}
			}
		}()
	}
}

// No method of the zero Handle (or of a Conn wrapping it) panics; each returns an error or
// a zero value.
func TestHandle_Zero(t *testing.T) {
	var h tcp.Handle
	callAll(t, h)
	callAll(t, tcp.NewConn(h))
	require.False(t, h.Valid())
	require.Equal(t, -1, h.Shard())
	require.Zero(t, h.UserData())
	require.ErrorIs(t, h.SetUserData(1), net.ErrClosed)
	require.Equal(t, tcp.StateClosed, h.State())
	require.ErrorIs(t, h.WaitConnected(context.Background()), net.ErrClosed)
	_, err := h.Read(nil)
	require.ErrorIs(t, err, net.ErrClosed)
}

// A closed handle, too: every method returns at once, with an error where it has one.
func TestHandle_ClosedMethods(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	h := p.c.Handle
	require.NoError(t, h.Close())
	callAll(t, h)
}
