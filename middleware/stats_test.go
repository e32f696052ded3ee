package middleware_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func TestStats(t *testing.T) {
	errBad := errors.New("bad input")
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			ctx := context.Background()
			release := make(chan struct{})
			step := func(_ context.Context, q query) (string, error) {
				switch q.User {
				case "bad":
					return "", errBad
				case "slow":
					<-release
				}
				return q.User, nil
			}
			store := tier.open(t)
			front := store
			tiered, durable := store.(*backends.TieredStore)
			if durable {
				front = tiered.Front()
			}
			key := func(user string) keyerKey {
				k, err := defaultKey(ctx, scope.Global, "stats", query{User: user})
				if err != nil {
					t.Fatal(err)
				}
				return k
			}
			h := middleware.New("stats", step, middleware.WithPersistence(store, scope.Global, time.Hour), middleware.WithLogger(nil))
			a := query{User: "a"}
			h.Call(ctx, a)                     // miss (absent), run
			h.Call(ctx, a)                     // hit (memory)
			h.Call(ctx, query{User: "bad"})    // miss (absent), run, error
			h.Call(middleware.Refresh(ctx), a) // miss (refresh), run
			h.Call(middleware.Bypass(ctx), a)  // miss (bypass), run
			h.Call(ctx, query{User: "bad"})    // failures are not stored: a run again
			// miss (expired), run: an entry with a short TTL, waited past.
			now := time.Now()
			if err := front.Set(ctx, key("old"), backends.Entry{Value: "old", Created: now, Expires: now.Add(time.Millisecond)}, nil); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
			h.Call(ctx, query{User: "old"})
			// miss (corrupt), run: the front holds a value of another type.
			if err := front.Set(ctx, key("odd"), backends.Entry{Value: 42, Created: now}, nil); err != nil {
				t.Fatal(err)
			}
			if v, err := h.Call(ctx, query{User: "odd"}); err != nil || v != "odd" {
				t.Fatalf("over a corrupt entry: %q, %v", v, err)
			}
			// Three concurrent calls of one slow key: one miss (absent) that
			// runs, two shared waits on it (misses too).
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() { h.Call(ctx, query{User: "slow"}) })
			}
			for h.Stats().SharedWaits < 2 {
				time.Sleep(time.Millisecond)
			}
			close(release)
			wg.Wait()
			checkStats(t, h.Stats(), middleware.Stats{
				Calls: 11, Runs: 8, Errors: 2, SharedWaits: 2,
				Hits: map[string]uint64{"memory": 1},
				Misses: map[middleware.Reason]uint64{
					middleware.ReasonAbsent: 6, middleware.ReasonExpired: 1, middleware.ReasonCorrupt: 1,
					middleware.ReasonRefresh: 1, middleware.ReasonBypass: 1,
				},
			})
			if !durable {
				return
			}
			// A new process: an empty front over the same durable store.
			back := tiered.Back()
			h2 := middleware.New("stats", step, middleware.WithPersistence(backends.Tiered(memory.New(100), back), scope.Global, time.Hour), middleware.WithLogger(nil))
			h2.Call(ctx, a) // hit (back tier), copied into the front
			h2.Call(ctx, a) // hit (memory)
			// Damaged bytes in the back tier: the front has nothing (absent),
			// and the flight's read of the back tier is a fault: a run.
			bk, err := backends.EntryKey(nil, key("rot"))
			if err != nil {
				t.Fatal(err)
			}
			rec := backends.Record{Key: bk, Value: []byte("garbage that is long enough to be an entry"), Meta: backends.Meta{Step: "stats", Scope: scope.Global}}
			if err := back.(interface{ ByteStore() backends.ByteStore }).ByteStore().Put(ctx, []backends.Record{rec}); err != nil {
				t.Fatal(err)
			}
			if v, err := h2.Call(ctx, query{User: "rot"}); err != nil || v != "rot" {
				t.Fatalf("over a damaged entry: %q, %v", v, err)
			}
			checkStats(t, h2.Stats(), middleware.Stats{
				Calls: 3, Runs: 1,
				Hits:   map[string]uint64{back.Name(): 1, "memory": 1},
				Misses: map[middleware.Reason]uint64{middleware.ReasonAbsent: 1},
			})
		})
	}
}

func checkStats(t *testing.T, got, want middleware.Stats) {
	t.Helper()
	if got.Calls != want.Calls || got.Runs != want.Runs || got.Errors != want.Errors || got.SharedWaits != want.SharedWaits ||
		!maps.Equal(got.Hits, want.Hits) || !maps.Equal(got.Misses, want.Misses) {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if got.Runs > 0 && (got.RunTime <= 0 || got.MeanRunTime() != got.RunTime/time.Duration(got.Runs)) {
		t.Errorf("RunTime %v, MeanRunTime %v for %d runs", got.RunTime, got.MeanRunTime(), got.Runs)
	}
}

func TestStatsConcurrent(t *testing.T) {
	const goroutines, calls, keys = 8, 200, 10
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := middleware.New("stats", func(_ context.Context, q query) (string, error) {
		time.Sleep(time.Millisecond)
		return q.User, nil
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				if _, err := h.Call(ctx, query{User: "u", Limit: (g + i) % keys}); err != nil {
					t.Error(err)
				}
				if i%50 == 0 {
					h.Stats() // snapshots race with calls
				}
			}
		})
	}
	wg.Wait()
	s := h.Stats()
	var hits, misses uint64
	for _, n := range s.Hits {
		hits += n
	}
	for _, n := range s.Misses {
		misses += n
	}
	if s.Calls != goroutines*calls || hits+misses != s.Calls || s.Runs != keys || s.Errors != 0 {
		t.Errorf("Stats() = %+v: want %d calls, each a hit or a miss, %d runs, no errors", s, goroutines*calls, keys)
	}
	if s.Misses[middleware.ReasonAbsent] < s.Runs {
		t.Errorf("Stats() = %+v: fewer misses than runs", s)
	}
}
