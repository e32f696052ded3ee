package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// versioned returns a step that counts its runs and answers with the run's
// number, so a caller can tell a stored result from a new one.
func versioned(runs *atomic.Int64) func(context.Context, query) (string, error) {
	return func(_ context.Context, q query) (string, error) {
		return fmt.Sprintf("%s#%d", q.User, runs.Add(1)), nil
	}
}

func TestRefreshOverwrites(t *testing.T) {
	for _, tier := range tiers {
		for _, s := range scopes {
			t.Run(tier.name+"/"+s.String(), func(t *testing.T) {
				var runs atomic.Int64
				step := middleware.Wrap("fx", versioned(&runs), middleware.WithPersistence(tier.open(t), s, time.Hour))
				ctx, _ := inExecution(t, s, "e1")
				q := query{"eur", 1}
				for _, c := range []struct {
					ctx  context.Context
					want string
				}{
					{ctx, "eur#1"},
					{ctx, "eur#1"},                        // a hit
					{middleware.Refresh(ctx), "eur#2"},    // runs and overwrites
					{ctx, "eur#2"},                        // the new result
					{middleware.Refresh(ctx), "eur#3"},    // again
					{context.WithoutCancel(ctx), "eur#3"}, // a derived context without the marker
				} {
					got, err := step(c.ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if got != c.want {
						t.Fatalf("got %q, want %q", got, c.want)
					}
				}
			})
		}
	}
}

// TestRefreshKeepsResultOnFailure: a refresh whose step fails gives its
// callers the error and leaves the stored result served.
func TestRefreshKeepsResultOnFailure(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			errDown := errors.New("upstream down")
			var fail atomic.Bool
			step := middleware.Wrap("fx", func(_ context.Context, q query) (string, error) {
				if fail.Load() {
					return "", errDown
				}
				return "rate", nil
			}, middleware.WithPersistence(tier.open(t), scope.Global, time.Hour))
			ctx := context.Background()
			if _, err := step(ctx, query{"eur", 1}); err != nil {
				t.Fatal(err)
			}
			fail.Store(true)
			if _, err := step(middleware.Refresh(ctx), query{"eur", 1}); !errors.Is(err, errDown) {
				t.Fatalf("refresh: got %v, want %v", err, errDown)
			}
			if got, err := step(ctx, query{"eur", 1}); err != nil || got != "rate" {
				t.Fatalf("after a failed refresh: got %q, %v; want the stored result", got, err)
			}
		})
	}
}

// TestRefreshSharesOneFlight: 1,000 concurrent refreshing callers of one
// key run the step once, and all get the new result.
func TestRefreshSharesOneFlight(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			var runs atomic.Int64
			release := make(chan struct{})
			var started sync.Once
			running := make(chan struct{})
			step := middleware.Wrap("fx", func(_ context.Context, q query) (string, error) {
				n := runs.Add(1)
				if n > 1 {
					started.Do(func() { close(running) })
					<-release
				}
				return fmt.Sprintf("v%d", n), nil
			}, middleware.WithPersistence(tier.open(t), scope.Global, time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := step(ctx, query{"hot", 1}); err != nil {
				t.Fatal(err)
			}
			const callers = 1000
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			rctx := middleware.Refresh(ctx)
			var ready sync.WaitGroup
			ready.Add(callers)
			for range callers {
				wg.Go(func() {
					ready.Done()
					got, err := step(rctx, query{"hot", 1})
					if err == nil && got != "v2" {
						err = fmt.Errorf("got %q, want v2", got)
					}
					if err != nil {
						errs <- err
					}
				})
			}
			<-running
			ready.Wait()
			// Let the callers that are between ready and the flight join it.
			time.Sleep(50 * time.Millisecond)
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if n := runs.Load(); n != 2 {
				t.Fatalf("step ran %d times, want 2 (the first call, then one refresh)", n)
			}
		})
	}
}

func TestBypassReadsAndWritesNothing(t *testing.T) {
	for _, tier := range tiers {
		for _, s := range scopes {
			t.Run(tier.name+"/"+s.String(), func(t *testing.T) {
				var runs atomic.Int64
				step := middleware.Wrap("fx", versioned(&runs), middleware.WithPersistence(tier.open(t), s, time.Hour))
				ctx, _ := inExecution(t, s, "e1")
				q := query{"eur", 1}
				for _, c := range []struct {
					ctx  context.Context
					want string
				}{
					{middleware.Bypass(ctx), "eur#1"},                     // runs, stores nothing
					{ctx, "eur#2"},                                        // so this one runs too
					{middleware.Bypass(ctx), "eur#3"},                     // ignores the stored result
					{ctx, "eur#2"},                                        // which is still there
					{middleware.Bypass(middleware.Refresh(ctx)), "eur#4"}, // the innermost marker wins
					{ctx, "eur#2"},
				} {
					got, err := step(c.ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if got != c.want {
						t.Fatalf("got %q, want %q", got, c.want)
					}
				}
			})
		}
	}
}
