package memory

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

const benchKeys = 10_000

// benchCapacity leaves room for uneven spreading: each shard holds its share
// of the capacity, and with exactly benchKeys some shards would overflow and
// evict while others have room, turning hits into misses.
const benchCapacity = 2 * benchKeys

func benchKeySet() []keyer.Key {
	keys := make([]keyer.Key, benchKeys)
	for i := range keys {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		keys[i] = keyer.Key{Scope: scope.Global, Step: "step", Sum: sha256.Sum256(b[:])}
	}
	return keys
}

// reportRate adds throughput, the figure to compare between the serial and
// parallel runs of one store (ns/op hides that RunParallel ops overlap).
func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mops/s")
}

// getter is the hit path under test: a Store, or golang-lru's locked Cache
// holding the same items under the same keys.
type getter func(k keyer.Key) bool

// traceLen random key indices make the access order: a cyclic scan of the
// keys would favour one big LRU list, whose list neighbours (touched by the
// move to the front) are then the very entries read next.
const (
	traceLen  = 1 << 16
	traceMask = traceLen - 1
)

func benchTrace() []uint16 {
	r := rand.New(rand.NewPCG(1, 2))
	trace := make([]uint16, traceLen)
	for i := range trace {
		trace[i] = uint16(r.IntN(benchKeys))
	}
	return trace
}

// BenchmarkGetHit measures a hit over 10k keys, in uniformly random order,
// from one goroutine and from GOMAXPROCS goroutines, for the sharded Store
// against a one-shard Store and golang-lru's Cache (one lock for
// everything). Hits that write no shared memory scale when the parallel
// rate is about GOMAXPROCS times the serial one, whatever the shard count.
func BenchmarkGetHit(b *testing.B) {
	keys, trace := benchKeySet(), benchTrace()
	ctx := context.Background()
	fromStore := func(s *Store, ttl time.Duration) getter {
		for _, k := range keys {
			e := backends.Entry{Value: k.Sum[0], Created: time.Now()}
			if ttl > 0 {
				e.Expires = e.Created.Add(ttl)
			}
			_ = s.Set(ctx, k, e, nil)
		}
		return func(k keyer.Key) bool {
			_, err := s.Get(ctx, k, nil)
			return err == nil
		}
	}
	fromLRU := func() getter {
		c, _ := lru.New[mapKey, item](benchCapacity)
		for _, k := range keys {
			c.Add(mapKey{exec: k.Execution, sum: k.Sum}, item{entry: backends.Entry{Value: k.Sum[0]}, deadline: noDeadline})
		}
		return func(k keyer.Key) bool {
			_, ok := c.Get(mapKey{exec: k.Execution, sum: k.Sum})
			return ok
		}
	}
	for _, tc := range []struct {
		name string
		get  getter
	}{
		{"sharded", fromStore(New(benchCapacity), 0)},
		// With a TTL a hit also reads the clock, as the middleware's do.
		{"sharded-ttl", fromStore(New(benchCapacity), time.Hour)},
		{"one-shard", fromStore(New(benchCapacity, WithShards(1)), 0)},
		{"golang-lru", fromLRU()},
	} {
		b.Run(tc.name+"/serial", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if !tc.get(keys[trace[i]]) {
					b.Fatal("miss")
				}
				i = (i + 1) & traceMask
			}
			reportRate(b)
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			var start atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				// Goroutines start far apart in the trace, as
				// independent callers would be.
				i := int(start.Add(7919)) & traceMask
				for pb.Next() {
					if !tc.get(keys[trace[i]]) {
						b.Error("miss")
						return
					}
					i = (i + 1) & traceMask
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkSet measures replacing entries (no eviction) and inserting with
// eviction, both with a TTL, so sweeping is included.
func BenchmarkSet(b *testing.B) {
	keys := benchKeySet()
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		maxEntries int
	}{
		{"replace", benchCapacity},
		{"evict", benchKeys / 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(tc.maxEntries)
			e := backends.Entry{Value: 1, Expires: time.Now().Add(time.Hour)}
			i := 0
			for b.Loop() {
				_ = s.Set(ctx, keys[i], e, nil)
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	}
}

var sinkInt64 int64

// BenchmarkClock is why expiry uses monoNow: time.Since on a time with a
// monotonic reading reads only the monotonic clock, time.Now reads both.
func BenchmarkClock(b *testing.B) {
	b.Run("monoNow", func(b *testing.B) {
		for b.Loop() {
			sinkInt64 = monoNow()
		}
	})
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			sinkInt64 = time.Now().UnixNano()
		}
	})
}
