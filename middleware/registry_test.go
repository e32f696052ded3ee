package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// slowCharge is a step that counts its runs and takes long enough for every
// concurrent caller to arrive while it runs.
func slowCharge(runs *atomic.Int64) func(context.Context, query) (string, error) {
	return func(_ context.Context, q query) (string, error) {
		runs.Add(1)
		time.Sleep(20 * time.Millisecond)
		return "charged " + q.User, nil
	}
}

// callAll calls each step from its own goroutine, all at once, with a
// cancellable context, and fails the test on any error or differing result.
func callAll(t *testing.T, ctx context.Context, steps []middleware.Step[query, string], q query) {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]string, len(steps))
	errs := make([]error, len(steps))
	start := make(chan struct{})
	for i, step := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = step(ctx, q)
		}()
	}
	close(start)
	wg.Wait()
	for i := range steps {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Fatalf("caller %d got %q, caller 0 %q", i, results[i], results[0])
		}
	}
}

// TestFlightsArePerStoreAndKey: dedup belongs to (store, key), not to a
// Wrap: two Wraps of one step over one store, and a Wrap made per request,
// share one run.
func TestFlightsArePerStoreAndKey(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			ctx, exec := scope.Begin(context.Background(), "exec_charge")
			defer exec.End(nil)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()

			t.Run("two wraps", func(t *testing.T) {
				var runs atomic.Int64
				store := memory.New(100)
				a := middleware.Wrap("charge", slowCharge(&runs), middleware.WithPersistence(store, s, time.Hour), middleware.WithStrict())
				b := middleware.Wrap("charge", slowCharge(&runs), middleware.WithPersistence(store, s, time.Hour), middleware.WithStrict())
				steps := make([]middleware.Step[query, string], 100)
				for i := range steps {
					steps[i] = a
					if i%2 == 1 {
						steps[i] = b
					}
				}
				callAll(t, ctx, steps, query{User: "alice"})
				if n := runs.Load(); n != 1 {
					t.Fatalf("the charge ran %d times through two Wraps of one store, want 1", n)
				}
			})
			t.Run("wrap per request", func(t *testing.T) {
				var runs atomic.Int64
				store := memory.New(100)
				steps := make([]middleware.Step[query, string], 20)
				for i := range steps {
					steps[i] = func(ctx context.Context, q query) (string, error) {
						// The common mistake: the Wrap made inside the handler.
						return middleware.Wrap("charge", slowCharge(&runs), middleware.WithPersistence(store, s, time.Hour))(ctx, q)
					}
				}
				callAll(t, ctx, steps, query{User: "bob"})
				if n := runs.Load(); n != 1 {
					t.Fatalf("the charge ran %d times with a Wrap per request, want 1", n)
				}
			})
			t.Run("two stores", func(t *testing.T) {
				var runs atomic.Int64
				a := middleware.Wrap("charge", slowCharge(&runs), middleware.WithPersistence(memory.New(100), s, time.Hour))
				b := middleware.Wrap("charge", slowCharge(&runs), middleware.WithPersistence(memory.New(100), s, time.Hour))
				callAll(t, ctx, []middleware.Step[query, string]{a, b}, query{User: "carol"})
				if n := runs.Load(); n != 2 {
					t.Fatalf("two stores ran the step %d times, want once each", n)
				}
			})
		})
	}
}

// TestSameKeyOtherResultType: two steps that share a name and an input type
// but not a result type never hand one's result to the other.
func TestSameKeyOtherResultType(t *testing.T) {
	store := memory.New(100)
	release := make(chan struct{})
	str := middleware.Wrap("shared", func(context.Context, int) (string, error) { <-release; return "s", nil },
		middleware.WithPersistence(store, scope.Global, time.Hour))
	num := middleware.Wrap("shared", func(context.Context, int) (int, error) { return 7, nil },
		middleware.WithPersistence(store, scope.Global, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if got, err := str(ctx, 1); err != nil || got != "s" {
			t.Errorf("string step: %q, %v", got, err)
		}
	}()
	time.Sleep(10 * time.Millisecond) // the string flight is listed
	if got, err := num(ctx, 1); err != nil || got != 7 {
		t.Fatalf("int step while the string flight runs: %d, %v", got, err)
	}
	close(release)
	<-done
}

// TestNothingLandsAfterEnd: a flight whose callers all left and whose
// execution then ended with End(nil) stores nothing when its step, which
// ignores its context, finally returns: a later execution with the same ID
// runs the step again instead of hitting a stale entry. With retention
// too: what End(nil) keeps is what had landed before it.
func TestNothingLandsAfterEnd(t *testing.T) {
	inMemory := func(*testing.T) backends.Store { return memory.New(100) }
	behindBadger := func(t *testing.T) backends.Store {
		db, err := badger.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return backends.Tiered(memory.New(100), db)
	}
	retained := []scope.Option{scope.WithRetention(time.Hour)}
	for _, tier := range []struct {
		name string
		open func(t *testing.T) backends.Store
		ttl  time.Duration
		opts []scope.Option
	}{
		{"memory", inMemory, time.Hour, nil},
		{"memory/retention", inMemory, time.Hour, retained},
		{"memory+badger/ttl0", behindBadger, 0, nil},
		{"memory+badger/ttl0/retention", behindBadger, 0, retained},
	} {
		t.Run(tier.name, func(t *testing.T) {
			store := tier.open(t)
			var runs atomic.Int64
			release, finished := make(chan struct{}), make(chan struct{}, 2)
			step := middleware.Wrap("slow", func(_ context.Context, q query) (string, error) {
				defer func() { finished <- struct{}{} }()
				if runs.Add(1) == 1 {
					<-release // ignores its context
				}
				return q.User, nil
			}, middleware.WithPersistence(store, scope.Workflow, tier.ttl))

			ctx, exec := scope.Begin(context.Background(), "exec_abandoned", tier.opts...)
			tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			if _, err := step(tctx, query{User: "alice"}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the caller's deadline", err)
			}
			if err := exec.End(nil); err != nil {
				t.Fatal(err)
			}
			close(release)
			<-finished

			ctx, exec = scope.Begin(context.Background(), "exec_abandoned")
			defer exec.End(nil)
			if _, err := step(ctx, query{User: "alice"}); err != nil {
				t.Fatal(err)
			}
			<-finished
			if n := runs.Load(); n != 2 {
				t.Fatalf("step ran %d times, want 2: the abandoned flight's result landed after End(nil)", n)
			}
		})
	}
}

// TestEndDuringWrite: End(nil) racing a flight's write leaves nothing
// behind, whichever goes first.
func TestEndDuringWrite(t *testing.T) {
	store := memory.New(10_000)
	step := middleware.Wrap("race", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(store, scope.Workflow, time.Hour))
	for i := range 300 {
		ctx, exec := scope.Begin(context.Background(), "exec_race")
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = step(ctx, query{User: "u", Limit: i})
		}()
		_ = exec.End(nil)
		<-done
		cancel()
		if n, _ := store.PurgeExecution(context.Background(), "exec_race"); n != 0 {
			t.Fatalf("round %d: %d entries of an execution ended with End(nil) remained", i, n)
		}
	}
}

func TestFenceFromWithoutSharedStore(t *testing.T) {
	step := middleware.Wrap("fence", func(ctx context.Context, _ int) (bool, error) {
		_, ok := middleware.FenceFrom(ctx)
		return ok, nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	if ok, err := step(context.Background(), 1); err != nil || ok {
		t.Fatalf("FenceFrom in a step of a store that is not shared: ok=%v err=%v, want false", ok, err)
	}
	if _, ok := middleware.FenceFrom(context.Background()); ok {
		t.Fatal("FenceFrom outside a step: ok")
	}
}

// TestStepContextAsParent: contexts a step derives from its own are
// cancelled with it, and see the step's cancellation, not its starter's.
func TestStepContextAsParent(t *testing.T) {
	started := make(chan struct{})
	result := make(chan error, 1)
	step := middleware.Wrap("derive", func(ctx context.Context, _ int) (int, error) {
		child, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		stop := context.AfterFunc(ctx, func() {})
		defer stop()
		close(started)
		<-child.Done()
		if context.Cause(child) != context.Canceled {
			result <- fmt.Errorf("cause %v, want context.Canceled", context.Cause(child))
		} else {
			result <- child.Err()
		}
		return 0, child.Err()
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { <-started; cancel(errors.New("starter left")) }()
	if _, err := step(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("caller: %v", err)
	}
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from the step's was not cancelled when the last caller left")
	}
}

// TestErrorsSayDocketOnce: an error a call returns names the library once,
// however many layers wrap it.
func TestErrorsSayDocketOnce(t *testing.T) {
	wf := middleware.Wrap("wf", freeStep, middleware.WithPersistence(memory.New(10), scope.Workflow, time.Hour))
	_, noExec := wf(context.Background(), query{User: "a"})
	faulty := &faultyStore{Store: memory.New(10), setErr: backends.ErrClosed}
	strict := middleware.Wrap("strict", freeStep, middleware.WithPersistence(faulty, scope.Global, time.Hour),
		middleware.WithStrict(), middleware.WithLogger(nil))
	_, writeErr := strict(context.Background(), query{User: "a"})
	for _, err := range []error{noExec, writeErr} {
		if err == nil {
			t.Fatal("no error")
		}
		if n := strings.Count(err.Error(), "docket:"); n != 1 {
			t.Errorf("%q says \"docket:\" %d times, want once", err, n)
		}
	}
}
