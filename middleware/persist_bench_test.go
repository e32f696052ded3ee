package middleware_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

const benchKeys = 10_000

// The stores get room for twice the keys: a sharded LRU fills its shards
// unevenly, and a benchmark of hits must not measure evictions.

// benchQueries returns the inputs in a fixed random order: walking them in
// the order they were stored would let the CPU prefetch the LRU's list
// nodes, which real traffic does not.
func benchQueries() []query {
	qs := make([]query, benchKeys)
	for i := range qs {
		qs[i] = query{User: fmt.Sprintf("user%05d", i), Limit: i % 100}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	return qs
}

// handKey is the floor a reflect keyer is measured against: the input
// written by hand into a stack buffer and hashed once.
func handKey(q *query) [32]byte {
	var arr [64]byte
	b := binary.AppendUvarint(arr[:0], uint64(len(q.User)))
	b = append(b, q.User...)
	b = binary.LittleEndian.AppendUint64(b, uint64(q.Limit))
	return sha256.Sum256(b)
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mops/s")
}

// BenchmarkHit compares a front-tier hit of a wrapped Global step with its
// floor: hand-written key + SHA-256 + golang-lru Get, over 10k keys.
func BenchmarkHit(b *testing.B) {
	qs := benchQueries()
	// A cancellable context, as a server request has.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	floor, _ := lru.New[[32]byte, string](benchKeys)
	for i := range qs {
		floor.Add(handKey(&qs[i]), qs[i].User)
	}
	floorGet := func(i int) {
		if _, ok := floor.Get(handKey(&qs[i%benchKeys])); !ok {
			panic("floor miss")
		}
	}

	step := middleware.Wrap("fetch", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(memory.New(2*benchKeys), scope.Global, time.Hour))
	for _, q := range qs {
		step(ctx, q)
	}
	docketGet := func(i int) {
		if _, err := step(ctx, qs[i%benchKeys]); err != nil {
			panic(err)
		}
	}

	wctx, exec := scope.Begin(ctx, "exec_bench")
	defer exec.End(nil)
	wstep := middleware.Wrap("fetch", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(memory.New(2*benchKeys), scope.Workflow, time.Hour))
	for _, q := range qs {
		wstep(wctx, q)
	}
	workflowGet := func(i int) {
		if _, err := wstep(wctx, qs[i%benchKeys]); err != nil {
			panic(err)
		}
	}

	for _, impl := range []struct {
		name string
		get  func(int)
	}{{"floor", floorGet}, {"docket-global", docketGet}, {"docket-workflow", workflowGet}} {
		b.Run(impl.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				impl.get(i)
			}
			reportRate(b)
		})
		b.Run(impl.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var seed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(7919))
				for pb.Next() {
					impl.get(i)
					i++
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkHotKey has 1,000 callers of one key whose step sleeps 10 ms: the
// step runs once per round and a round takes about one step duration.
func BenchmarkHotKey(b *testing.B) {
	const callers = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs atomic.Int64
	var wall time.Duration
	for i := 0; b.Loop(); i++ {
		step := middleware.Wrap("hot", func(_ context.Context, q query) (string, error) {
			runs.Add(1)
			time.Sleep(10 * time.Millisecond)
			return q.User, nil
		}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for c := 0; c < callers; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := step(ctx, query{"hot", i}); err != nil {
					panic(err)
				}
			}()
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		wall += time.Since(t0)
	}
	b.ReportMetric(float64(runs.Load())/float64(b.N), "runs/round")
	b.ReportMetric(float64(wall.Microseconds())/1000/float64(b.N), "ms/round")
}
