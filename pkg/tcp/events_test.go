package tcp_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// evRecorder is an Events implementation that logs what it saw and echoes data.
type evRecorder struct {
	log      []string
	echo     bool
	closeEOF bool
	got      []byte
	err      error
}

func (r *evRecorder) OnOpen(h tcp.Handle) { r.log = append(r.log, "open") }

func (r *evRecorder) OnWritable(h tcp.Handle) { r.log = append(r.log, "writable") }

func (r *evRecorder) OnData(h tcp.Handle) {
	r.log = append(r.log, "data")
	buf := make([]byte, 4096)
	for {
		n, err := h.TryRead(buf)
		r.got = append(r.got, buf[:n]...)
		if r.echo && n > 0 {
			h.TryWrite(buf[:n])
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, tcp.ErrWouldBlock):
			return
		case err == io.EOF:
			r.log = append(r.log, "eof")
			if r.closeEOF {
				h.Close()
			}
			return
		default:
			r.err = err
			r.log = append(r.log, "error")
			h.Close()
			return
		}
	}
}

// An event-driven listener and an event-driven dial talk without a single goroutine:
// OnOpen on both sides, data both ways, EOF, and nothing left afterwards.
func TestEvents_EchoBothSides(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	srv := &evRecorder{echo: true, closeEOF: true}
	_, err := n.Server.ListenTCP(serverAP, tcp.ListenOptions{Backlog: 8, Events: srv})
	require.NoError(t, err)
	cli := &evRecorder{}
	h, err := n.Client.DialAsyncHandle(serverAP, tcp.DialOptions{Events: cli, UserData: 42})
	require.NoError(t, err)
	require.Equal(t, uint64(42), h.UserData())
	n.RunFor(time.Millisecond)
	require.Equal(t, []string{"open"}, cli.log)
	require.Equal(t, []string{"open"}, srv.log)
	require.True(t, h.Opened())
	_, err = h.TryWrite([]byte("ping"))
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	require.Equal(t, "ping", string(srv.got))
	require.Equal(t, "ping", string(cli.got))
	require.NoError(t, h.Close())
	n.RunFor(time.Millisecond)
	require.Contains(t, srv.log, "eof")
	// The client closed first: it holds TIME-WAIT for 60 s, then nothing is left.
	n.RunFor(61 * time.Second)
	require.Len(t, n.Client.Sockets(), 0)
	require.Len(t, n.Server.Sockets(), 1)
	// The accept queue was never used.
	require.Zero(t, n.Server.Sockets()[0].RecvQ)
}

// A refused event-driven dial reports OnData without OnOpen, and the error.
func TestEvents_RefusedDial(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	cli := &evRecorder{}
	h, err := n.Client.DialAsyncHandle(serverAP, tcp.DialOptions{Events: cli})
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	require.Equal(t, []string{"data", "error"}, cli.log)
	require.ErrorIs(t, cli.err, tcp.ErrConnectionRefused)
	require.False(t, h.Opened())
}

// OnWritable comes when room returns after TryWrite ran out of it.
func TestEvents_Writable(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	cli := &evRecorder{}
	h, err := n.Client.DialAsyncHandle(serverAP, tcp.DialOptions{Events: cli})
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	s, err := l.TryAccept()
	require.NoError(t, err)
	// Fill the send buffer and the server's receive buffer until nothing moves.
	chunk := make([]byte, 8192)
	for i := 0; i < 100; i++ {
		h.TryWrite(chunk)
		n.RunFor(time.Millisecond)
	}
	_, err = h.TryWrite(chunk)
	require.ErrorIs(t, err, tcp.ErrWouldBlock)
	cli.log = nil
	n.RunFor(time.Second)
	require.NotContains(t, cli.log, "writable") // the reader is not reading: no room comes back
	buf := make([]byte, 64<<10)
	for i := 0; i < 20; i++ {
		s.TryRead(buf)
		n.RunFor(time.Millisecond)
	}
	require.Contains(t, cli.log, "writable")
}
