package tcp

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// wakeCounter is an Env that only counts wake-ups.
type wakeCounter struct{ wakes int }

func (w *wakeCounter) NewPacket() *dpdkshim.Packet            { return nil }
func (w *wakeCounter) Output(p *dpdkshim.Packet, _ *hash.Key) { p.Free() }
func (w *wakeCounter) Wake()                                  { w.wakes++ }
func (w *wakeCounter) TxBacklogged() bool                     { return false }

// A post after a lazy one wakes the shard: the lazy post queued the endpoint without waking
// it, and work that needs doing now must not wait behind it (a Read that emptied the
// buffer, then a Write, over a link whose shard sleeps in epoll, stalled a transfer).
func TestPostWakesAfterLazyPost(t *testing.T) {
	e, err := NewEngine(Config{Shards: 1})
	require.NoError(t, err)
	env := &wakeCounter{}
	var ctr stats.Counters
	s := e.newShard(0, env, wheel.New(0, 1e6), &ctr)
	ep := s.allocEndpoint()
	ep.postLazy(pendTrim)
	require.Zero(t, env.wakes, "housekeeping does not wake the shard")
	ep.post(pendSend)
	require.Equal(t, 1, env.wakes, "work that is due does")
	require.Equal(t, 1, s.ProcessWork(), "queued once")
}
