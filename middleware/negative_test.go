package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

var errNotFound = errors.New("no such user")

func notFound(err error) (string, bool) {
	if errors.Is(err, errNotFound) {
		return "not_found", true
	}
	return "", false
}

// failing returns a step that counts its runs and fails with what errp
// holds, or succeeds when it holds nil.
func failing(runs *atomic.Int64, errp *atomic.Pointer[error]) func(context.Context, query) (string, error) {
	return func(_ context.Context, q query) (string, error) {
		n := runs.Add(1)
		if e := errp.Load(); e != nil {
			return "", *e
		}
		return fmt.Sprintf("%s#%d", q.User, n), nil
	}
}

func TestErrorCaching(t *testing.T) {
	for _, tier := range tiers {
		for _, s := range scopes {
			t.Run(tier.name+"/"+s.String(), func(t *testing.T) {
				var runs atomic.Int64
				var errp atomic.Pointer[error]
				store := tier.open(t)
				h := middleware.New("user", failing(&runs, &errp), middleware.WithPersistence(store, s, time.Hour),
					middleware.WithErrorCaching(notFound, 200*time.Millisecond))
				ctx, _ := inExecution(t, s, "e1")
				q := query{"ghost", 1}
				wrapped := fmt.Errorf("lookup: %w", errNotFound)
				errp.Store(&wrapped)

				// Stored, then replayed from the front tier with the original
				// error inside.
				for i := range 3 {
					_, err := h.Call(ctx, q)
					if !errors.Is(err, errNotFound) {
						t.Fatalf("call %d: got %v, want %v", i, err, errNotFound)
					}
					if i > 0 {
						var se *middleware.StoredError
						if !errors.As(err, &se) || se.Code != "not_found" || se.Message != wrapped.Error() {
							t.Fatalf("call %d: got %#v, want a StoredError", i, err)
						}
					}
				}
				if n := runs.Load(); n != 1 {
					t.Fatalf("step ran %d times, want 1", n)
				}
				got, ok, err := h.Peek(ctx, q)
				if err != nil || !ok || !errors.Is(got.Err, errNotFound) {
					t.Fatalf("peek: %+v, %v, %v", got, ok, err)
				}
				if got.Expires.Sub(got.Created) != 200*time.Millisecond {
					t.Fatalf("a failure is stored for %v, want its own TTL", got.Expires.Sub(got.Created))
				}

				// From a byte tier: the code and the message.
				if tiered, ok := store.(*backends.TieredStore); ok {
					key, err := defaultKey(ctx, s, "user", q)
					if err != nil {
						t.Fatal(err)
					}
					if err := tiered.Front().Delete(ctx, key); err != nil {
						t.Fatal(err)
					}
					_, err = h.Call(ctx, q)
					var se *middleware.StoredError
					if !errors.As(err, &se) || se.Code != "not_found" || se.Message != wrapped.Error() || errors.Is(err, errNotFound) {
						t.Fatalf("from %s: got %#v, want a StoredError without the original", tiered.Back().Name(), err)
					}
					if n := runs.Load(); n != 1 {
						t.Fatalf("step ran %d times, want 1", n)
					}
				}

				// Expired: the step runs again.
				time.Sleep(250 * time.Millisecond)
				errp.Store(nil)
				if v, err := h.Call(ctx, q); err != nil || v != "ghost#2" {
					t.Fatalf("after the failure's TTL: %q, %v", v, err)
				}
			})
		}
	}
}

// TestErrorCachingStoresOnlyTerminalErrors: unclassified errors, context
// errors (also when the classifier marks them) and panics are never stored,
// and a terminal failure never replaces a stored result.
func TestErrorCachingStoresOnlyTerminalErrors(t *testing.T) {
	errOther := errors.New("upstream timeout")
	everything := func(err error) (string, bool) { return "any", true }
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			for _, c := range []struct {
				name     string
				err      error
				classify func(error) (string, bool)
			}{
				{"unclassified", errOther, notFound},
				{"canceled", fmt.Errorf("wrapped: %w", context.Canceled), everything},
				{"deadline", context.DeadlineExceeded, everything},
			} {
				t.Run(c.name, func(t *testing.T) {
					var runs atomic.Int64
					var errp atomic.Pointer[error]
					errp.Store(&c.err)
					h := middleware.New("user", failing(&runs, &errp), middleware.WithPersistence(tier.open(t), scope.Global, time.Hour),
						middleware.WithErrorCaching(c.classify, time.Minute))
					for range 2 {
						if _, err := h.Call(context.Background(), query{"a", 1}); !errors.Is(err, c.err) {
							t.Fatalf("got %v, want %v", err, c.err)
						}
					}
					if n := runs.Load(); n != 2 {
						t.Fatalf("step ran %d times, want 2: the failure must not be stored", n)
					}
					if _, ok, _ := h.Peek(context.Background(), query{"a", 1}); ok {
						t.Fatal("peek found a stored failure")
					}
				})
			}
			t.Run("panic", func(t *testing.T) {
				var runs atomic.Int64
				h := middleware.New("user", func(context.Context, query) (string, error) {
					runs.Add(1)
					panic(errNotFound)
				}, middleware.WithPersistence(tier.open(t), scope.Global, time.Hour), middleware.WithErrorCaching(everything, time.Minute))
				for range 2 {
					func() {
						defer func() { _ = recover() }()
						h.Call(context.Background(), query{"a", 1})
					}()
				}
				if n := runs.Load(); n != 2 {
					t.Fatalf("step ran %d times, want 2: a panic must not be stored", n)
				}
			})
			t.Run("never over a success", func(t *testing.T) {
				var runs atomic.Int64
				var errp atomic.Pointer[error]
				h := middleware.New("user", failing(&runs, &errp), middleware.WithPersistence(tier.open(t), scope.Global, time.Hour),
					middleware.WithErrorCaching(notFound, time.Minute))
				ctx := context.Background()
				if _, err := h.Call(ctx, query{"a", 1}); err != nil {
					t.Fatal(err)
				}
				errp.Store(&errNotFound)
				if _, err := h.Call(middleware.Refresh(ctx), query{"a", 1}); !errors.Is(err, errNotFound) {
					t.Fatalf("refresh: %v", err)
				}
				if v, err := h.Call(ctx, query{"a", 1}); err != nil || v != "a#1" {
					t.Fatalf("after a failed refresh: %q, %v; want the stored result", v, err)
				}
			})
		})
	}
}
