package stack_test

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// TestTinyPoolNoSilentStall: with four packet buffers per queue, 200 dials at once cannot
// all get a buffer for their SYN. Each one either connects or fails at once with ENOBUFS
// (as Linux's connect does when it cannot allocate the SYN), the shortage is counted as
// tx_no_buffer, and 40 connections made two at a time then move 20 KB each way at once
// through the same four buffers: whatever could not be built when it was due is sent again by TCP's own
// timers. Nothing hangs: by a bounded virtual time every client has its answer.
func TestTinyPoolNoSilentStall(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true, Pool: dpdkshim.PoolConfig{Size: 4, Max: 4}})
	l, err := n.Server.Listen(":80", 4096)
	require.NoError(t, err)
	const N = 200
	cs := make([]*tcp.Conn, N)
	for i := range cs {
		cs[i], err = n.Client.DialAsync(serverAP, tcp.DialOptions{})
		require.NoError(t, err)
	}
	n.RunFor(10 * time.Second)
	var ok []*tcp.Conn
	nobufs := 0
	for i, c := range cs {
		switch st := c.State(); st {
		case tcp.StateEstablished:
			ok = append(ok, c)
		case tcp.StateClosed:
			require.ErrorIs(t, c.Err(), tcp.ErrNoBufferSpace, "client %d", i)
			require.True(t, errors.Is(c.Err(), syscall.ENOBUFS))
			nobufs++
		default:
			t.Fatalf("client %d still %v after 10 s", i, st)
		}
	}
	require.NotEmpty(t, ok, "some dials got a buffer")
	require.Positive(t, nobufs, "four buffers cannot carry 200 SYNs at once")
	require.Equal(t, uint64(nobufs), n.Client.Counters()[stats.TcpAttemptFails])
	require.Positive(t, n.Client.Counters()[stats.TxNoBuffer])

	// Dialled two at a time, 40 more connect.
	for len(ok) < 40 {
		for i := 0; i < 2; i++ {
			c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
			require.NoError(t, err)
			ok = append(ok, c)
		}
		n.RunFor(10 * time.Millisecond)
	}
	n.RunFor(5 * time.Second)
	for i, c := range ok {
		require.Equal(t, tcp.StateEstablished, c.State(), "client %d: %v", i, c.Err())
	}

	// Every connection that was made moves 20 KB to the server and gets it back.
	const size = 20000
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	var srv []*tcp.Conn
	for {
		s, err := l.TryAccept()
		if err != nil {
			break
		}
		srv = append(srv, s)
	}
	require.Len(t, srv, len(ok))
	sent := make([]int, len(ok))
	echoed := make([]int, len(srv))
	got := make([]int, len(ok))
	buf := make([]byte, 4096)
	deadline := n.Now() + int64(120*time.Second)
	done := func() bool {
		for i := range got {
			if got[i] < size {
				return false
			}
		}
		return true
	}
	for !done() {
		require.Less(t, n.Now(), deadline, "exchange stalled: %v", n.Client.Counters()[stats.TxNoBuffer])
		for i, c := range ok {
			if sent[i] < size {
				k, _ := c.TryWrite(msg[sent[i]:])
				sent[i] += k
			}
			for {
				k, err := c.TryRead(buf)
				if k > 0 {
					require.Equal(t, msg[got[i]:got[i]+k], buf[:k])
					got[i] += k
				}
				if err != nil || k == 0 {
					break
				}
			}
		}
		for i, s := range srv {
			k, _ := s.TryRead(buf)
			if k > 0 {
				w, err := s.TryWrite(buf[:k])
				require.NoError(t, err)
				require.Equal(t, k, w, "the echo fits: what it read freed as much room")
				echoed[i] += k
			}
		}
		n.RunFor(10 * time.Millisecond)
	}
	ctr := n.Client.Counters()
	srvCtr := n.Server.Counters()
	t.Logf("%d connected, %d ENOBUFS; tx_no_buffer client %d server %d; retransmitted %d + %d",
		len(ok), nobufs, ctr[stats.TxNoBuffer], srvCtr[stats.TxNoBuffer], ctr[stats.TcpRetransSegs], srvCtr[stats.TcpRetransSegs])
	require.Positive(t, ctr[stats.TxNoBuffer]+srvCtr[stats.TxNoBuffer])
}

// TestNoBufferDataSentByTimer: data that found no buffer when it was due, with nothing else
// coming to prompt it (no ACK in flight, no further write), goes out when the
// retransmission timer fires; so does a FIN.
func TestNoBufferDataSentByTimer(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, Pool: dpdkshim.PoolConfig{Size: 8, Max: 8}})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunFor(10 * time.Millisecond)
	require.Equal(t, tcp.StateEstablished, c.State())
	s, err := l.TryAccept()
	require.NoError(t, err)

	pool := n.PortC.Pool(0)
	var held []*dpdkshim.Packet
	hold := func() {
		for p := pool.Get(); p != nil; p = pool.Get() {
			held = append(held, p)
		}
	}
	release := func() {
		for _, p := range held {
			p.Free()
		}
		held = held[:0]
	}
	before := n.Client.Counters()[stats.TxNoBuffer]
	hold()
	_, err = c.TryWrite([]byte("late"))
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	require.Greater(t, n.Client.Counters()[stats.TxNoBuffer], before, "the missing buffer is counted")
	buf := make([]byte, 16)
	_, err = s.TryRead(buf)
	require.ErrorIs(t, err, tcp.ErrWouldBlock, "nothing could be sent")
	release()
	n.RunFor(100 * time.Millisecond)
	_, err = s.TryRead(buf)
	require.ErrorIs(t, err, tcp.ErrWouldBlock, "nothing prompts a send before the timer")
	n.RunFor(2 * time.Second)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "late", string(buf[:k]), "the retransmission timer sent it")

	hold()
	require.NoError(t, c.Close())
	n.RunFor(time.Millisecond)
	release()
	n.RunFor(3 * time.Second)
	_, err = s.TryRead(buf)
	require.ErrorIs(t, err, io.EOF, "the FIN went out on the timer too")
}
