package middleware_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// faultyCoordinator is a fault-injection stand-in for a shared tier, over a
// real memory store: it hands out leases with growing tokens and can be told
// to fail Acquire, to have another process win the commit, or to lose the
// lease while the step runs. backends/redis tests the real thing.
type faultyCoordinator struct {
	*memory.Store
	mu         sync.Mutex
	token      uint64
	acquireErr error
	winner     *backends.Entry // committed by "another process" first
	loseLease  bool
	released   int
	committed  int
}

func (c *faultyCoordinator) EncodesValues() bool { return false }

func (c *faultyCoordinator) Acquire(ctx context.Context, key keyer.Key, cd backends.Codec) (backends.Entry, backends.Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acquireErr != nil {
		return backends.Entry{}, nil, c.acquireErr
	}
	if e, err := c.Store.Get(ctx, key, cd); err == nil {
		return e, nil, nil
	}
	c.token++
	l := &faultyLease{c: c, key: key, token: c.token, lost: make(chan struct{})}
	if c.loseLease {
		close(l.lost)
	}
	return backends.Entry{}, l, nil
}

type faultyLease struct {
	c     *faultyCoordinator
	key   keyer.Key
	token uint64
	lost  chan struct{}
}

func (l *faultyLease) Token() uint64         { return l.token }
func (l *faultyLease) Lost() <-chan struct{} { return l.lost }

func (l *faultyLease) Commit(ctx context.Context, e backends.Entry, cd backends.Codec) (backends.Entry, error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.c.winner != nil {
		return *l.c.winner, nil
	}
	l.c.committed++
	return e, l.c.Store.Set(ctx, l.key, e, cd)
}

func (l *faultyLease) Release(context.Context) error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.c.released++
	return nil
}

func TestLeasedFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	newStep := func(c *faultyCoordinator, store backends.Store, runs *atomic.Int64, opts ...middleware.Option) middleware.Step[query, string] {
		return middleware.Wrap("leased", func(ctx context.Context, q query) (string, error) {
			runs.Add(1)
			tok, ok := middleware.FenceFrom(ctx)
			if !ok && c.acquireErr == nil {
				return "", errors.New("no fencing token in a leased step")
			}
			if c.loseLease {
				select {
				case <-ctx.Done():
					return "", ctx.Err()
				case <-time.After(5 * time.Second):
					return "", errors.New("the step's context outlived its lease")
				}
			}
			if q.User == "fail" {
				return "", errors.New("step failed")
			}
			return q.User + ":" + string(rune('0'+tok)), nil
		}, append([]middleware.Option{middleware.WithPersistence(store, scope.Global, time.Hour), middleware.WithLogger(nil)}, opts...)...)
	}

	t.Run("commit, then hits", func(t *testing.T) {
		for _, tiered := range []bool{false, true} {
			c := &faultyCoordinator{Store: memory.New(10)}
			var store backends.Store = c
			if tiered {
				store = backends.Tiered(memory.New(10), c)
			}
			var runs atomic.Int64
			step := newStep(c, store, &runs)
			for range 3 {
				if got, err := step(ctx, query{User: "a"}); err != nil || got != "a:1" {
					t.Fatalf("tiered=%v: %q, %v", tiered, got, err)
				}
			}
			if runs.Load() != 1 || c.committed != 1 {
				t.Fatalf("tiered=%v: %d runs, %d commits, want 1 and 1", tiered, runs.Load(), c.committed)
			}
		}
	})
	t.Run("late writer gets the winner's result", func(t *testing.T) {
		c := &faultyCoordinator{Store: memory.New(10)}
		c.winner = &backends.Entry{Value: "winner", Created: time.Now()}
		var runs atomic.Int64
		front := memory.New(10)
		step := newStep(c, backends.Tiered(front, c), &runs)
		if got, err := step(ctx, query{User: "a"}); err != nil || got != "winner" {
			t.Fatalf("late writer: %q, %v; want the winner's result", got, err)
		}
		c.winner = nil
		if got, _ := step(ctx, query{User: "a"}); got != "winner" {
			t.Fatalf("the front tier holds %q, want the winner's result", got)
		}
	})
	t.Run("failed step releases its lease", func(t *testing.T) {
		c := &faultyCoordinator{Store: memory.New(10)}
		var runs atomic.Int64
		step := newStep(c, c, &runs)
		if _, err := step(ctx, query{User: "fail"}); err == nil {
			t.Fatal("no error")
		}
		if c.released != 1 || c.committed != 0 {
			t.Fatalf("released %d, committed %d; want 1, 0", c.released, c.committed)
		}
	})
	t.Run("panicking step releases its lease", func(t *testing.T) {
		c := &faultyCoordinator{Store: memory.New(10)}
		step := middleware.Wrap("leased-panic", func(context.Context, query) (string, error) { panic("boom") },
			middleware.WithPersistence(c, scope.Global, time.Hour))
		func() {
			defer func() { _ = recover() }()
			_, _ = step(ctx, query{User: "a"})
		}()
		if c.released != 1 {
			t.Fatalf("released %d leases after a panic, want 1", c.released)
		}
	})
	t.Run("lost lease cancels the step", func(t *testing.T) {
		c := &faultyCoordinator{Store: memory.New(10), loseLease: true}
		var runs atomic.Int64
		step := newStep(c, c, &runs)
		if _, err := step(ctx, query{User: "a"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the step's context cancelled", err)
		}
	})
	t.Run("shared tier down", func(t *testing.T) {
		down := errors.New("connection refused (injected)")
		c := &faultyCoordinator{Store: memory.New(10), acquireErr: down}
		var runs atomic.Int64
		if got, err := newStep(c, c, &runs)(ctx, query{User: "a"}); err != nil || got != "a:0" {
			t.Fatalf("fail-open: %q, %v; want the step's result", got, err)
		}
		if _, err := newStep(c, c, &runs, middleware.WithStrict())(ctx, query{User: "b"}); !errors.Is(err, middleware.ErrStore) || !errors.Is(err, down) {
			t.Fatalf("strict: err = %v, want ErrStore wrapping the fault", err)
		}
		if runs.Load() != 1 {
			t.Fatalf("%d runs, want 1 (strict must not run the step)", runs.Load())
		}
	})
}
