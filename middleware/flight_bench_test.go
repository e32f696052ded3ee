package middleware

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sync/singleflight"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
)

// BenchmarkFlightPrimitive measures what a miss pays for in-flight dedup
// alone, with what the middleware promises its callers: each waits on the
// flight or its own context (so the step runs in a goroutine of the flight),
// the step gets a context with the starter's values that is cancelled when
// the last waiter leaves, and a step that calls runtime.Goexit releases its
// waiters. "singleflight" is the least x/sync/singleflight needs for that:
// DoChan (a goroutine, a channel per caller, a string key, the result boxed
// in any), a waiter count in a map of its own beside the Group's, the step's
// context made with the context package, and a channel closed on Goexit,
// which DoChan never reports. "typed" is the flight this package uses.
func BenchmarkFlightPrimitive(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		v   string
		ran bool
	}
	b.Run("singleflight", func(b *testing.B) {
		var g singleflight.Group
		type waiting struct {
			n      int
			cancel context.CancelFunc
		}
		waiters := map[string]*waiting{}
		var mu sync.Mutex
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			key := strconv.Itoa(i)
			mu.Lock()
			w := waiters[key]
			var sctx context.Context
			if w == nil {
				w = &waiting{}
				sctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
				waiters[key] = w
			}
			w.n++
			mu.Unlock()
			goexit := make(chan struct{})
			ch := g.DoChan(key, func() (any, error) {
				_ = sctx
				return result{v: "v", ran: true}, nil
			})
			select {
			case r := <-ch:
				_ = r.Val.(result)
			case <-goexit:
			case <-ctx.Done():
			}
			mu.Lock()
			if w.n--; w.n == 0 {
				delete(waiters, key)
				w.cancel()
			}
			mu.Unlock()
		}
	})
	b.Run("typed", func(b *testing.B) {
		store := memory.New(1)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var sum keyer.Sum
			sum[0], sum[1], sum[2] = byte(i), byte(i>>8), byte(i>>16)
			f, _ := join[string](flightKey{store: store, sum: sum}, ctx, keyer.Key{Sum: sum}, true)
			go func() {
				f.val = "v"
				f.unlist()
				close(f.done)
			}()
			select {
			case <-f.done:
			case <-ctx.Done():
			}
			f.leave()
		}
	})
}
