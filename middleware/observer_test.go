package middleware_test

import (
	"context"
	"errors"
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

// recordingObserver keeps every outcome it is given; package tracing's tests
// cover the OpenTelemetry observer on the real SDK.
type recordingObserver struct {
	mu       sync.Mutex
	outcomes []middleware.Outcome
	faults   []string
	purged   map[string]int
}

type recordingSpan struct{ o *recordingObserver }

func (s recordingSpan) End(out middleware.Outcome) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	s.o.outcomes = append(s.o.outcomes, out)
}

func (o *recordingObserver) Start(ctx context.Context, _ middleware.CallInfo) (context.Context, middleware.CallSpan) {
	return ctx, recordingSpan{o}
}

func (o *recordingObserver) Origin(context.Context) []byte { return []byte("run-1") }

func (o *recordingObserver) Fault(_ context.Context, _ middleware.CallInfo, store, op string, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.faults = append(o.faults, store+"/"+op)
}

func (o *recordingObserver) Purged(_ context.Context, store, _ string, n int, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.purged == nil {
		o.purged = map[string]int{}
	}
	o.purged[store] += n
}

func (o *recordingObserver) last() middleware.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.outcomes[len(o.outcomes)-1]
}

func TestObserverOutcomes(t *testing.T) {
	obs := &recordingObserver{}
	var runs atomic.Int64
	release := make(chan struct{})
	fail := atomic.Bool{}
	step := middleware.Wrap("s", func(_ context.Context, q query) (string, error) {
		runs.Add(1)
		<-release
		if fail.Load() {
			return "", errors.New("boom")
		}
		return q.User, nil
	}, middleware.WithPersistence(memory.New(10), scope.Workflow, 40*time.Millisecond), middleware.WithObserver(obs))
	ctx, exec := scope.Begin(context.Background(), "e1")

	// A miss with a waiter that shares the flight.
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); step(ctx, query{"a", 1}) }()
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	obs.mu.Lock()
	var miss, shared middleware.Outcome
	for _, o := range obs.outcomes {
		switch o.Result {
		case middleware.ResultMiss:
			miss = o
		case middleware.ResultShared:
			shared = o
		}
	}
	obs.mu.Unlock()
	if !miss.Ran || miss.Waiters != 2 || miss.Reason != middleware.ReasonAbsent || miss.Flight == nil {
		t.Fatalf("miss outcome = %+v, want a run answering 2 waiters after an absent entry", miss)
	}
	if shared.Result != middleware.ResultShared || shared.Flight != miss.Flight || shared.Ran {
		t.Fatalf("shared outcome = %+v, want the waiter of the same flight", shared)
	}

	step(ctx, query{"a", 1})
	if h := obs.last(); h.Result != middleware.ResultHit || h.Tier != "memory" || string(h.Origin) != "run-1" || h.Key.Execution != "e1" {
		t.Fatalf("hit outcome = %+v", h)
	}

	time.Sleep(60 * time.Millisecond)
	fail.Store(true)
	step(ctx, query{"a", 1})
	if e := obs.last(); e.Result != middleware.ResultError || e.Reason != middleware.ReasonExpired || e.Err == nil {
		t.Fatalf("error outcome = %+v, want an error after an expired entry", e)
	}

	fail.Store(false)
	step(ctx, query{"b", 1})
	exec.End(nil)
	if obs.purged["memory"] != 1 {
		t.Fatalf("purged = %v, want 1 memory entry reported", obs.purged)
	}
}

func TestObserverSeesFaultsAndKeyErrors(t *testing.T) {
	obs := &recordingObserver{}
	store := &faultyStore{Store: memory.New(10), getErr: errDisk, setErr: errDisk}
	step := middleware.Wrap("s", counted(new(atomic.Int64)),
		middleware.WithPersistence(store, scope.Workflow, time.Hour), middleware.WithObserver(obs), middleware.WithLogger(nil))
	if _, err := step(context.Background(), query{"a", 1}); !errors.Is(err, scope.ErrNoExecution) {
		t.Fatal(err)
	}
	if e := obs.last(); e.Result != middleware.ResultError || !errors.Is(e.Err, scope.ErrNoExecution) {
		t.Fatalf("outcome = %+v", e)
	}
	ctx, _ := scope.Begin(context.Background(), "e")
	if _, err := step(ctx, query{"a", 1}); err != nil {
		t.Fatal(err)
	}
	if m := obs.last(); m.Result != middleware.ResultMiss || m.Reason != middleware.ReasonFault {
		t.Fatalf("outcome = %+v, want a miss for a store fault", m)
	}
	if len(obs.faults) != 2 || obs.faults[0] != "memory/read" || obs.faults[1] != "memory/write" {
		t.Fatalf("faults = %v", obs.faults)
	}
	var _ backends.Store = store
}

func TestObserverSeesPanics(t *testing.T) {
	obs := &recordingObserver{}
	step := middleware.Wrap("s", func(context.Context, query) (string, error) { panic("kaboom") },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	func() {
		defer func() { recover() }()
		step(context.Background(), query{"a", 1})
	}()
	var pe *middleware.PanicError
	if e := obs.last(); e.Result != middleware.ResultError || !errors.As(e.Err, &pe) || pe.Value != "kaboom" {
		t.Fatalf("outcome = %+v, want the panic as an error", e)
	}
}

// TestPanickingRunsAreRuns: a run that panics is reported and counted as a
// run, and its call as an error, in a flight and under Bypass alike.
func TestPanickingRunsAreRuns(t *testing.T) {
	obs := &recordingObserver{}
	h := middleware.New("s", func(context.Context, query) (string, error) { panic("kaboom") },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	for _, tc := range []struct {
		name string
		ctx  context.Context
		why  middleware.Reason
	}{
		{"flight", context.Background(), middleware.ReasonAbsent},
		{"bypass", middleware.Bypass(context.Background()), middleware.ReasonBypass},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: the panic was not re-raised", tc.name)
				}
			}()
			h.Call(tc.ctx, query{"a", 1})
		}()
		var pe *middleware.PanicError
		if e := obs.last(); e.Result != middleware.ResultError || !errors.As(e.Err, &pe) || e.Reason != tc.why || !e.Ran || e.StepDuration <= 0 {
			t.Errorf("%s: outcome = %+v, want a panicking run", tc.name, e)
		}
	}
	if s := h.Stats(); s.Calls != 2 || s.Runs != 2 || s.Errors != 2 || s.Misses[middleware.ReasonAbsent] != 1 || s.Misses[middleware.ReasonBypass] != 1 {
		t.Fatalf("Stats() = %+v, want 2 calls, 2 runs, 2 errors", s)
	}
}

// TestObserverOutcomesOfFailedFlights: an outcome says what Stats counts of
// the call also when it failed: the run of a failed flight, the callers that
// joined it, the tier of a stored failure a flight found.
func TestObserverOutcomesOfFailedFlights(t *testing.T) {
	db, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errGone := errors.New("no such user")
	release := make(chan struct{})
	step := func(_ context.Context, q query) (string, error) {
		<-release
		return "", errGone
	}
	classify := func(err error) (string, bool) { return "gone", errors.Is(err, errGone) }
	obs := &recordingObserver{}
	h := middleware.New("s", step, middleware.WithPersistence(backends.Tiered(memory.New(10), db), scope.Global, time.Hour),
		middleware.WithErrorCaching(classify, 0), middleware.WithObserver(obs))

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.Call(context.Background(), query{"a", 1}) })
	}
	for h.Stats().SharedWaits < 1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	obs.mu.Lock()
	var starter, joiner middleware.Outcome
	for _, o := range obs.outcomes {
		if o.Joined {
			joiner = o
		} else {
			starter = o
		}
	}
	obs.mu.Unlock()
	if starter.Result != middleware.ResultError || !starter.Ran || starter.StepDuration <= 0 || starter.Waiters != 2 || starter.Tier != "" {
		t.Fatalf("starter's outcome = %+v, want a failed run answering 2 callers", starter)
	}
	if joiner.Result != middleware.ResultError || joiner.Ran || joiner.Waiters != 0 || joiner.Flight != starter.Flight || !errors.Is(joiner.Err, errGone) {
		t.Fatalf("joiner's outcome = %+v, want the failure of the flight it joined", joiner)
	}

	// A new process: the flight finds the stored failure in Badger.
	obs2 := &recordingObserver{}
	h2 := middleware.New("s", step, middleware.WithPersistence(backends.Tiered(memory.New(10), db), scope.Global, time.Hour),
		middleware.WithErrorCaching(classify, 0), middleware.WithObserver(obs2))
	if _, err := h2.Call(context.Background(), query{"a", 1}); err == nil {
		t.Fatal("no stored failure")
	}
	if o := obs2.last(); o.Result != middleware.ResultError || o.Tier != "badger" || o.Ran || o.Joined || o.Waiters != 1 {
		t.Fatalf("outcome = %+v, want the stored failure, from badger", o)
	}
	if s := h2.Stats(); s.Hits["badger"] != 1 || s.Errors != 1 || s.Runs != 0 {
		t.Fatalf("Stats() = %+v, want a hit of badger that is an error", s)
	}
}
