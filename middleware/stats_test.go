package middleware_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func TestStats(t *testing.T) {
	errBad := errors.New("bad input")
	step := func(_ context.Context, q query) (string, error) {
		if q.User == "bad" {
			return "", errBad
		}
		return q.User, nil
	}
	for _, tc := range []struct {
		name    string
		durable bool
	}{{"memory", false}, {"memory+badger", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var db *badger.Store
			store := func() backends.Store { return memory.New(100) }
			if tc.durable {
				var err error
				if db, err = badger.Open(t.TempDir()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				store = func() backends.Store { return backends.Tiered(memory.New(100), db) }
			}
			h := middleware.New("stats", step, middleware.WithPersistence(store(), scope.Global, time.Hour))
			a := query{User: "a"}
			h.Call(ctx, a)                     // miss (absent), run
			h.Call(ctx, a)                     // hit (memory)
			h.Call(ctx, query{User: "bad"})    // miss (absent), run, error
			h.Call(middleware.Refresh(ctx), a) // miss (refresh), run
			h.Call(middleware.Bypass(ctx), a)  // miss (bypass), run
			h.Call(ctx, query{User: "bad"})    // failures are not stored: a run again
			checkStats(t, h.Stats(), middleware.Stats{
				Calls: 6, Runs: 5, Errors: 2,
				Hits:   map[string]uint64{"memory": 1},
				Misses: map[middleware.Reason]uint64{middleware.ReasonAbsent: 3, middleware.ReasonRefresh: 1, middleware.ReasonBypass: 1},
			})
			if !tc.durable {
				return
			}
			// A new process: an empty front over the same Badger store.
			h2 := middleware.New("stats", step, middleware.WithPersistence(store(), scope.Global, time.Hour))
			h2.Call(ctx, a) // hit (badger), copied into the front
			h2.Call(ctx, a) // hit (memory)
			checkStats(t, h2.Stats(), middleware.Stats{
				Calls:  2,
				Hits:   map[string]uint64{"badger": 1, "memory": 1},
				Misses: map[middleware.Reason]uint64{},
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
