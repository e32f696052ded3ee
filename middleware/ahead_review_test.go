package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestRefreshAheadOnceUnderLoad: with a window that a fresh entry is not
// in, many callers that keep hitting a due entry start one refresh, also
// across the moment it stores its result and leaves the registry.
func TestRefreshAheadOnceUnderLoad(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			var runs atomic.Int64
			const ttl = time.Minute
			h := middleware.New("fx", versioned(&runs),
				middleware.WithPersistence(tier.open(t), scope.Global, ttl), middleware.WithRefreshAhead(ttl-300*time.Millisecond))
			ctx := context.Background()
			q := query{"eur", 1}
			if _, err := h.Call(ctx, q); err != nil {
				t.Fatal(err)
			}
			time.Sleep(350 * time.Millisecond) // due; a fresh entry is due 300 ms after it is stored
			stop := time.Now().Add(100 * time.Millisecond)
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for time.Now().Before(stop) {
						if _, err := h.Call(ctx, q); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			// A refresh is counted once it is over, its write included.
			waitFor(t, "the refresh", func() bool {
				st := h.Stats()
				return runs.Load() >= 2 && st.Misses[middleware.ReasonRefreshAhead] == uint64(runs.Load())-1
			})
			if n := runs.Load(); n != 2 {
				t.Fatalf("%d runs; want 2 (the first call and one refresh)", n)
			}
		})
	}
}

// panickyStore wraps a real store and panics on purpose (fault
// injection) in Get or Set while the matching flag is set.
type panickyStore struct {
	*memory.Store
	getPanics, setPanics atomic.Bool
}

func (s *panickyStore) Get(ctx context.Context, k keyerKey, c backends.Codec) (backends.Entry, error) {
	if s.getPanics.Load() {
		panic("get (injected)")
	}
	return s.Store.Get(ctx, k, c)
}

func (s *panickyStore) Set(ctx context.Context, k keyerKey, e backends.Entry, c backends.Codec) error {
	if s.setPanics.Load() {
		panic("set (injected)")
	}
	return s.Store.Set(ctx, k, e, c)
}

// TestRefreshAheadStorePanics: a store that panics in the refresh's look
// or write crashes nothing and leaves the key free for the next refresh.
func TestRefreshAheadStorePanics(t *testing.T) {
	store := &panickyStore{Store: memory.New(10)}
	var runs atomic.Int64
	obs := &recordingObserver{}
	h := middleware.New("fx", versioned(&runs), middleware.WithPersistence(store, scope.Global, aheadTTL),
		middleware.WithRefreshAhead(aheadWindow), middleware.WithObserver(obs))
	ctx := context.Background()
	q := query{"eur", 1}
	h.Call(ctx, q)
	time.Sleep(2 * time.Millisecond)
	store.setPanics.Store(true)
	h.Call(ctx, q) // refresh whose write panics
	waitFor(t, "the refresh whose write panics", func() bool { return h.Stats().Misses[middleware.ReasonRefreshAhead] == 1 })
	if st := h.Stats(); st.Errors != 1 {
		t.Fatalf("stats %+v: want the panicking write counted as an error", st)
	}
	store.setPanics.Store(false)
	h.Call(ctx, q) // the key is free: another refresh
	waitFor(t, "the next refresh", func() bool { return h.Stats().Misses[middleware.ReasonRefreshAhead] == 2 })
	time.Sleep(2 * time.Millisecond) // its result into the window
	if v, err := h.Call(ctx, q); err != nil || v != "eur#3" {
		t.Fatalf("after the refreshes: %q, %v", v, err)
	}
	waitFor(t, "the last refresh", func() bool { return h.Stats().Misses[middleware.ReasonRefreshAhead] == 3 })
}

// TestRefreshAheadHungRefreshDoesNotWedgeKey: a refresh whose step hangs
// (it waits on its context, which a refresh ahead's never ends) must not
// hold the key once its entry has expired: callers that joined it and
// gave up leave it, as they would leave a miss's flight, and the next call
// runs the step itself.
func TestRefreshAheadHungRefreshDoesNotWedgeKey(t *testing.T) {
	var runs atomic.Int64
	hang := make(chan struct{})
	defer close(hang)
	const ttl = 300 * time.Millisecond
	h := middleware.New("fx", func(ctx context.Context, q query) (string, error) {
		n := runs.Add(1)
		if n == 2 {
			select { // the refresh: an upstream that never answers
			case <-ctx.Done():
				return "", ctx.Err()
			case <-hang:
				return "", errors.New("released")
			}
		}
		return fmt.Sprintf("%s#%d", q.User, n), nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, ttl), middleware.WithRefreshAhead(ttl-time.Millisecond))
	ctx := context.Background()
	q := query{"eur", 1}
	if _, err := h.Call(ctx, q); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	h.Call(ctx, q) // starts the refresh, which hangs
	waitFor(t, "the refresh to start", func() bool { return runs.Load() == 2 })
	waitFor(t, "the entry to expire", func() bool {
		_, ok, _ := h.Peek(ctx, q)
		return !ok
	})
	for i := range 3 {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		v, err := h.Call(cctx, q)
		cancel()
		if err == nil {
			if runs.Load() < 3 {
				t.Fatalf("call %d: %q without a run", i, v)
			}
			return
		}
	}
	t.Fatalf("every call after expiry waited on the hung refresh (%d runs); the key is wedged", runs.Load())
}
