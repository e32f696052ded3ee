package middleware_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestFlightRunsItsStepOnce: a caller counted in a flight that reaches
// singleflight only after the flight ended must get that flight's result,
// not run the step again.
func TestFlightRunsItsStepOnce(t *testing.T) {
	obs := &recordingObserver{}
	var runs atomic.Int64
	step := middleware.Wrap("fails", func(context.Context, int) (int, error) {
		return 0, fmt.Errorf("run %d", runs.Add(1))
	}, middleware.WithPersistence(memory.New(1000), scope.Global, time.Hour), middleware.WithObserver(obs))
	ctx, cancel := context.WithCancel(context.Background()) // cancellable, never cancelled
	defer cancel()
	for r := 0; r < 500; r++ {
		obs.mu.Lock()
		obs.outcomes = obs.outcomes[:0]
		obs.mu.Unlock()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _ = step(ctx, r)
			}()
		}
		close(start)
		wg.Wait()
		byFlight := map[context.Context]map[string]bool{}
		obs.mu.Lock()
		for _, o := range obs.outcomes {
			if byFlight[o.Flight] == nil {
				byFlight[o.Flight] = map[string]bool{}
			}
			byFlight[o.Flight][o.Err.Error()] = true
		}
		obs.mu.Unlock()
		for _, errs := range byFlight {
			if len(errs) > 1 {
				t.Fatalf("round %d: one flight, several runs: %v", r, errs)
			}
		}
	}
}

func TestGoexitInlineWithObserver(t *testing.T) {
	obs := &recordingObserver{}
	step := middleware.Wrap("goexit", func(context.Context, int) (int, error) {
		runtime.Goexit()
		return 0, nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	var recovered any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { recovered = recover() }()
		_, _ = step(context.Background(), 1)
	}()
	<-done
	if recovered != nil {
		t.Fatalf("Goexit became a panic: %T %v", recovered, recovered)
	}
	if o := obs.last(); o.Err != middleware.ErrGoexit {
		t.Fatalf("outcome %+v, want ErrGoexit", o)
	}
}

func TestReturnedPanicErrorIsAnError(t *testing.T) {
	step := middleware.Wrap("wrapped", func(context.Context, int) (int, error) {
		return 0, fmt.Errorf("inner step failed: %w", &middleware.PanicError{Value: "boom"})
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("a returned error became a panic: %v", r)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := step(ctx, 1); err == nil || !strings.Contains(err.Error(), "inner step failed") {
		t.Fatalf("err = %v", err)
	}
}

// valueStore is a store with value receivers holding a slice: not
// comparable, so executions could not list it.
type valueStore struct {
	*memory.Store
	tags []string
}

func TestNonComparableStorePanicsAtConstruction(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "comparable store") {
			t.Fatalf("recovered %v, want a construction panic about the store", r)
		}
	}()
	var s backends.Store = valueStore{Store: memory.New(10), tags: []string{"a"}}
	middleware.Wrap("s", func(context.Context, int) (int, error) { return 0, nil }, middleware.WithPersistence(s, scope.Workflow, time.Hour))
}

func TestCancelledCallerStartsNothing(t *testing.T) {
	var runs atomic.Int64
	step := middleware.Wrap("s", func(context.Context, int) (int, error) { runs.Add(1); return 1, nil },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := step(ctx, 1); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if runs.Load() != 0 {
		t.Fatal("a caller whose context had ended started the step")
	}
}
