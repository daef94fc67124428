package demo

import (
	"errors"

	"github.com/shardstack/shardstack/pkg/tcp"
)

// The event-driven demo: the same exchange, written against tcp.Events, so that the
// application's code runs inside the shards' run-to-completion loops and no goroutine
// blocks, wakes or switches per connection.

// EventServer reads the request, writes the reply and closes, all from callbacks. A
// connection's UserData counts the request bytes seen so far.
type EventServer struct{}

// OnOpen implements tcp.Events.
func (EventServer) OnOpen(tcp.Handle) {}

// OnWritable implements tcp.Events.
func (EventServer) OnWritable(tcp.Handle) {}

// OnData implements tcp.Events.
func (EventServer) OnData(h tcp.Handle) {
	var buf [64]byte
	got := int(h.UserData())
	for {
		n, err := h.TryRead(buf[:])
		got += n
		if got >= len(Request) {
			h.TryWrite(Reply)
			h.Close()
			return
		}
		if errors.Is(err, tcp.ErrWouldBlock) {
			h.SetUserData(uint64(got))
			return
		}
		if err != nil {
			h.Close()
			return
		}
	}
}
