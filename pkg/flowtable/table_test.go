package flowtable

import (
	"math/rand/v2"
	"testing"

	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/stretchr/testify/require"
)

func key(i uint32) hash.Key {
	return hash.KeyV4([4]byte{198, 18, 0, 1}, 80, [4]byte{198, 18, byte(i >> 16), byte(i >> 8)}, uint16(i))
}

// TestModel checks the table against a Go map through a long random sequence of puts and
// deletes, with a deliberately weak hash so that probe runs are long and wrap around.
func TestModel(t *testing.T) {
	for _, weak := range []bool{false, true} {
		h := hash.NewHasher(7)
		sum := func(k *hash.Key) uint64 {
			if weak {
				return h.Sum(k) & 0x3f // 64 distinct tags: long collision chains
			}
			return h.Sum(k)
		}
		tb := New[int](0)
		model := map[hash.Key]int{}
		r := rand.New(rand.NewPCG(1, 2))
		steps := 60000
		if testing.Short() {
			steps = 20000
		}
		for step := 0; step < steps; step++ {
			k := key(r.Uint32N(3000))
			switch r.IntN(3) {
			case 0, 1:
				v := r.Int()
				_, had := model[k]
				require.Equal(t, had, tb.Put(&k, sum(&k), v))
				model[k] = v
			case 2:
				v, ok := tb.Delete(&k, sum(&k))
				mv, mok := model[k]
				require.Equal(t, mok, ok)
				require.Equal(t, mv, v)
				delete(model, k)
			}
			if step%997 == 0 {
				require.Equal(t, len(model), tb.Len())
				for mk, mv := range model {
					v, ok := tb.Get(&mk, sum(&mk))
					require.True(t, ok)
					require.Equal(t, mv, v)
				}
				n := 0
				tb.Range(func(k *hash.Key, v int) bool { n++; require.Equal(t, model[*k], v); return true })
				require.Equal(t, len(model), n)
			}
		}
	}
}

func TestSteadyStateNoAllocs(t *testing.T) {
	h := hash.NewHasher(1)
	tb := New[*int](1024)
	x := 1
	keys := make([]hash.Key, 512)
	hs := make([]uint64, len(keys))
	for i := range keys {
		keys[i] = key(uint32(i))
		hs[i] = h.Sum(&keys[i])
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		k := &keys[i%len(keys)]
		tb.Put(k, hs[i%len(keys)], &x)
		tb.Get(k, hs[i%len(keys)])
		tb.Delete(k, hs[i%len(keys)])
		i++
	})
	require.Zero(t, allocs)
}

func TestClear(t *testing.T) {
	tb := New[int](4)
	k := key(1)
	tb.Put(&k, 5, 1)
	tb.Clear()
	require.Zero(t, tb.Len())
	_, ok := tb.Get(&k, 5)
	require.False(t, ok)
}
