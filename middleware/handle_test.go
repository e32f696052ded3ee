package middleware_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func TestPeekAndForget(t *testing.T) {
	for _, tier := range tiers {
		for _, s := range scopes {
			t.Run(tier.name+"/"+s.String(), func(t *testing.T) {
				var runs atomic.Int64
				h := middleware.New("fx", versioned(&runs), middleware.WithPersistence(tier.open(t), s, time.Hour), middleware.WithVersion("v7"))
				ctx, _ := inExecution(t, s, "e1")
				q := query{"eur", 1}
				if _, ok, err := h.Peek(ctx, q); ok || err != nil {
					t.Fatalf("peek before any call: ok %v, err %v; want nothing stored", ok, err)
				}
				before := time.Now()
				if _, err := h.Call(ctx, q); err != nil {
					t.Fatal(err)
				}
				got, ok, err := h.Peek(ctx, q)
				if err != nil || !ok {
					t.Fatalf("peek after a call: ok %v, err %v", ok, err)
				}
				if got.Value != "eur#1" || got.Err != nil || got.Tier != "memory" || got.Version != "v7" || got.Execution != "e1" {
					t.Fatalf("peek: %+v", got)
				}
				if got.Created.Before(before) || got.Expires.Sub(got.Created) != time.Hour {
					t.Fatalf("peek: created %v, expires %v; want now and an hour later", got.Created, got.Expires)
				}
				if n := runs.Load(); n != 1 {
					t.Fatalf("peek ran the step: %d runs", n)
				}
				if err := h.Forget(ctx, q); err != nil {
					t.Fatal(err)
				}
				if _, ok, err := h.Peek(ctx, q); ok || err != nil {
					t.Fatalf("peek after forget: ok %v, err %v", ok, err)
				}
				if v, err := h.Step()(ctx, q); err != nil || v != "eur#2" {
					t.Fatalf("call after forget: %q, %v; want a new run", v, err)
				}
				if err := h.Forget(ctx, query{"never", 0}); err != nil {
					t.Fatalf("forget of a missing entry: %v", err)
				}
			})
		}
	}
}

// TestPeekFindsTheBackTier: after a restart (an empty front tier) Peek
// answers from the durable tier and names it.
func TestPeekFindsTheBackTier(t *testing.T) {
	for _, tier := range tiers[1:] {
		t.Run(tier.name, func(t *testing.T) {
			var runs atomic.Int64
			store := tier.open(t).(*backends.TieredStore)
			h := middleware.New("fx", versioned(&runs), middleware.WithPersistence(store, scope.Global, time.Hour))
			ctx := context.Background()
			if _, err := h.Call(ctx, query{"eur", 1}); err != nil {
				t.Fatal(err)
			}
			key, err := defaultKey(ctx, scope.Global, "fx", query{"eur", 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Front().Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			got, ok, err := h.Peek(ctx, query{"eur", 1})
			if err != nil || !ok || got.Value != "eur#1" || got.Tier != store.Back().Name() {
				t.Fatalf("peek: %+v, %v, %v; want the back tier's entry", got, ok, err)
			}
		})
	}
}

func TestPeekAndForgetNeedAnExecution(t *testing.T) {
	var runs atomic.Int64
	h := middleware.New("fx", versioned(&runs), middleware.WithPersistence(tiers[0].open(t), scope.Workflow, time.Hour))
	if _, _, err := h.Peek(context.Background(), query{}); !errors.Is(err, scope.ErrNoExecution) {
		t.Fatalf("peek: %v", err)
	}
	if err := h.Forget(context.Background(), query{}); !errors.Is(err, scope.ErrNoExecution) {
		t.Fatalf("forget: %v", err)
	}
}

// TestForgetMatching: the bulk form removes the step's own entries, of one
// version when asked, in every tier, and leaves other steps' entries alone.
func TestForgetMatching(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			ctx := context.Background()
			store := tier.open(t)
			var runs atomic.Int64
			h := middleware.New("fx", versioned(&runs), middleware.WithPersistence(store, scope.Global, time.Hour))
			other := middleware.New("other", versioned(&runs), middleware.WithPersistence(store, scope.Global, time.Hour))
			for i := range 3 {
				if _, err := h.Call(ctx, query{"a", i}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := other.Call(ctx, query{"a", 0}); err != nil {
				t.Fatal(err)
			}
			n, err := h.ForgetMatching(ctx, backends.Filter{})
			if err != nil || n != 3 {
				t.Fatalf("ForgetMatching: %d, %v; want 3 removed", n, err)
			}
			if _, ok, err := h.Peek(ctx, query{"a", 1}); err != nil || ok {
				t.Fatalf("a forgotten entry is still there (ok=%v, err=%v)", ok, err)
			}
			if _, ok, err := other.Peek(ctx, query{"a", 0}); err != nil || !ok {
				t.Fatalf("another step's entry went too (ok=%v, err=%v)", ok, err)
			}
		})
	}
}
