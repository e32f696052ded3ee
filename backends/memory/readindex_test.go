package memory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/storetest"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestZeroStore: a Store not made by New works, bounded by
// DefaultMaxEntries, also when its first uses race.
func TestZeroStore(t *testing.T) {
	t.Run("methods", func(t *testing.T) {
		for name, first := range map[string]func(s *memory.Store){
			"Get":            func(s *memory.Store) { miss(t, s, globalKey(0)) },
			"Set":            func(s *memory.Store) { set(t, s, globalKey(0), 0, time.Time{}) },
			"Delete":         func(s *memory.Store) { _ = s.Delete(ctx, globalKey(0)) },
			"PurgeExecution": func(s *memory.Store) { _, _ = s.PurgeExecution(ctx, "exec") },
			"DeleteExpired":  func(s *memory.Store) { s.DeleteExpired() },
			"Len":            func(s *memory.Store) { s.Len() },
		} {
			t.Run(name, func(t *testing.T) {
				s := &memory.Store{}
				first(s)
				k := workflowKey("exec", 1)
				set(t, s, k, "v", time.Time{})
				if got := hit(t, s, k); got != "v" {
					t.Fatalf("Get = %v", got)
				}
				if n, _ := s.PurgeExecution(ctx, "exec"); n != 1 {
					t.Fatalf("PurgeExecution = %d, want 1", n)
				}
				miss(t, s, k)
			})
		}
	})

	t.Run("bound", func(t *testing.T) {
		var s memory.Store
		for i := range memory.DefaultMaxEntries + 500 {
			set(t, &s, globalKey(i), i, time.Time{})
		}
		total := 0
		for _, c := range s.ShardCapacities() {
			total += c
		}
		// Shards fill unevenly: some evict while others have room.
		if n := s.Len(); total != memory.DefaultMaxEntries || n > total || n < total*9/10 {
			t.Errorf("Len = %d of a capacity of %d, want DefaultMaxEntries = %d", n, total, memory.DefaultMaxEntries)
		}
		if want := memory.New(memory.DefaultMaxEntries).NumShards(); s.NumShards() != want {
			t.Errorf("%d shards, New(DefaultMaxEntries) has %d", s.NumShards(), want)
		}
	})

	t.Run("racing first uses", func(t *testing.T) {
		s := &memory.Store{}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() { set(t, s, globalKey(g), g, time.Time{}) })
		}
		wg.Wait()
		for g := range 8 {
			if got := hit(t, s, globalKey(g)); got != g {
				t.Errorf("Get(%d) = %v", g, got)
			}
		}
	})

	t.Run("conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) backends.Store { return &memory.Store{} })
	})

	t.Run("Wrap", func(t *testing.T) {
		var runs atomic.Int64
		step := middleware.Wrap("double", func(_ context.Context, n int) (int, error) {
			runs.Add(1)
			return 2 * n, nil
		}, middleware.WithPersistence(&memory.Store{}, scope.Global, time.Hour))
		for range 3 {
			if out, err := step(ctx, 21); err != nil || out != 42 {
				t.Fatalf("step = %v, %v", out, err)
			}
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("the step ran %d times, want 1", n)
		}
	})
}

// TestGetTakesNoLock: a hit returns while its shard's lock is held, as by
// a Set that is evicting; a miss does too.
func TestGetTakesNoLock(t *testing.T) {
	s := memory.New(100, memory.WithShards(1))
	k := globalKey(1)
	set(t, s, k, "v", time.Now().Add(time.Hour))
	unlock := s.LockShard(k)
	defer unlock()
	done := make(chan error, 1)
	go func() {
		if _, err := s.Get(ctx, k, nil); err != nil {
			done <- err
			return
		}
		_, err := s.Get(ctx, globalKey(2), nil)
		if err == backends.ErrNotFound {
			err = nil
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get blocked on the shard's lock")
	}
}

// TestReadIndexMatchesLRU replays random operations on a small store and
// checks after each that Get answers exactly what the LRU holds.
func TestReadIndexMatchesLRU(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			const keys, capacity = 300, 64
			s := memory.New(capacity, memory.WithShards(shards))
			r := rand.New(rand.NewPCG(7, uint64(shards)))
			value := map[keyer.Key]int{}
			key := func(i int) keyer.Key {
				if i%2 == 0 {
					return workflowKey(fmt.Sprint("exec", i%3), i)
				}
				return globalKey(i)
			}
			for op := range 20_000 {
				i := r.IntN(keys)
				k := key(i)
				switch n := r.IntN(100); {
				case n < 45:
					set(t, s, k, op, time.Time{})
					value[k] = op
				case n < 90:
					_, _ = s.Get(ctx, k, nil)
				case n < 98:
					_ = s.Delete(ctx, k)
				default:
					_, _ = s.PurgeExecution(ctx, fmt.Sprint("exec", i%3))
				}
				if op%97 != 0 {
					continue
				}
				for j := range keys {
					k := key(j)
					e, err := s.Get(ctx, k, nil)
					if held := s.Holds(k); held != (err == nil) {
						t.Fatalf("op %d: key %d held by the LRU: %v, Get: %v", op, j, held, err)
					}
					if err == nil && e.Value != value[k] {
						t.Fatalf("op %d: Get(%d) = %v, last stored %v", op, j, e.Value, value[k])
					}
				}
			}
			// Churn leaves the read index proportional to what is held.
			for i, n := range s.TableSlots() {
				if n > 8*capacity {
					t.Errorf("shard %d: read index of %d slots for at most %d entries", i, n, capacity)
				}
			}
		})
	}
}

// TestHitsDuringChurn: readers of a stable set of keys always hit, with the
// right value, while writers churn other keys of the same shard, growing,
// cleaning and rebuilding its read index.
func TestHitsDuringChurn(t *testing.T) {
	const stable, capacity = 32, 4096
	s := memory.New(capacity, memory.WithShards(1))
	for i := range stable {
		set(t, s, globalKey(i), i, time.Time{})
	}
	var stop atomic.Bool
	var writers, readers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for n := 0; !stop.Load(); n++ {
				k := workflowKey(fmt.Sprint("churn", w), stable+r.IntN(capacity/2))
				if n%3 == 0 {
					_ = s.Delete(ctx, k)
				} else {
					set(t, s, k, n, time.Time{})
				}
				if n%1000 == 0 {
					_, _ = s.PurgeExecution(ctx, fmt.Sprint("churn", w))
				}
			}
		})
	}
	for g := range 2 {
		readers.Go(func() {
			for n := range 50_000 {
				i := (n + g) % stable
				e, err := s.Get(ctx, globalKey(i), nil)
				if err != nil || e.Value != i {
					t.Errorf("Get(%d) = %v, %v", i, e.Value, err)
					break
				}
			}
		})
	}
	readers.Wait()
	stop.Store(true)
	writers.Wait()
}

// TestHotEntriesSurviveAScan: entries hit between inserts stay while a
// stream of entries read once goes through, as with LRU, although hits move
// nothing themselves.
func TestHotEntriesSurviveAScan(t *testing.T) {
	const capacity, hot = 100, 50
	s := memory.New(capacity, memory.WithShards(1))
	for i := range hot {
		set(t, s, globalKey(i), i, time.Time{})
	}
	for i := hot; i < 2000; i++ {
		set(t, s, globalKey(i), i, time.Time{})
		for j := range hot {
			hit(t, s, globalKey(j))
		}
	}
	if n := s.Len(); n != capacity {
		t.Errorf("Len = %d, want %d", n, capacity)
	}
}
