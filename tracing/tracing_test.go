package tracing_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
	"github.com/docket-go/docket/tracing"
)

// fetch is a step that starts a span of its own, so that tests can see it
// nest under the call's span.
func fetch(tm *telemetry, runs *atomic.Int64) func(context.Context, query) (string, error) {
	return func(ctx context.Context, q query) (string, error) {
		runs.Add(1)
		_, span := tm.tp.Tracer("app").Start(ctx, "inner")
		span.End()
		return q.User, nil
	}
}

func TestMissThenHit(t *testing.T) {
	tm := newTelemetry(t)
	var runs atomic.Int64
	step := middleware.Wrap("fetch_user", fetch(tm, &runs),
		middleware.WithPersistence(memory.New(100), scope.Global, time.Hour), middleware.WithObserver(tm.obs))

	ctx, req := tm.tp.Tracer("app").Start(context.Background(), "request")
	for range 2 {
		if got, err := step(ctx, query{"alice", 10}); err != nil || got != "alice" {
			t.Fatalf("step = %q, %v", got, err)
		}
	}
	req.End()
	if runs.Load() != 1 {
		t.Fatalf("step ran %d times, want 1", runs.Load())
	}

	calls := tm.ended("fetch_user")
	if len(calls) != 2 {
		t.Fatalf("%d fetch_user spans, want 2", len(calls))
	}
	miss, hit := calls[0], calls[1]
	got := wantAttrs(t, miss, map[string]string{
		"docket.step": "fetch_user", "docket.scope": "global", "docket.result": "miss",
		"docket.miss_reason": "absent", "docket.flight.waiters": "1",
		"docket.tier": "", "docket.execution_id": "", "docket.step.version": "",
	})
	if len(got["docket.key_hash"]) != 16 {
		t.Fatalf("key_hash = %q, want 16 hex digits", got["docket.key_hash"])
	}
	wantAttrs(t, hit, map[string]string{
		"docket.step": "fetch_user", "docket.scope": "global", "docket.result": "hit",
		"docket.tier": "memory", "docket.miss_reason": "", "docket.flight.waiters": "",
		"docket.key_hash": got["docket.key_hash"],
	})
	for _, s := range calls {
		if s.Parent().SpanID() != req.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindInternal {
			t.Fatalf("span %v: parent %v kind %v, want a child of the request span, kind internal", s.Name(), s.Parent().SpanID(), s.SpanKind())
		}
		if s.Status().Code != codes.Unset {
			t.Fatalf("status = %+v", s.Status())
		}
		if s.InstrumentationScope().Name != tracing.ScopeName || s.InstrumentationScope().Version != tracing.Version {
			t.Fatalf("scope = %+v", s.InstrumentationScope())
		}
	}
	if inner := tm.only(t, "inner"); inner.Parent().SpanID() != miss.SpanContext().SpanID() {
		t.Fatalf("the step's own span is a child of %v, want the miss span %v", inner.Parent().SpanID(), miss.SpanContext().SpanID())
	}
	if l := links(miss); len(l) != 0 {
		t.Fatalf("miss links = %v, want none", l)
	}
	if l := links(hit); len(l) != 1 || l[0] != "producer:"+miss.SpanContext().SpanID().String() {
		t.Fatalf("hit links = %v, want the producer link to the miss span %v", l, miss.SpanContext().SpanID())
	}

	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.calls{miss_reason=absent,result=miss,scope=global,step=fetch_user}": 1,
		"docket.calls{result=hit,scope=global,step=fetch_user,tier=memory}":         1,
		"docket.step.duration{scope=global,step=fetch_user}":                        1,
		"docket.flight.waiters{scope=global,step=fetch_user}":                       1,
		"docket.flight.waiters.sum{scope=global,step=fetch_user}":                   1,
	})
}

func TestWorkflowAttributesAndPurge(t *testing.T) {
	tm := newTelemetry(t)
	var runs atomic.Int64
	step := middleware.Wrap("plan", fetch(tm, &runs),
		middleware.WithPersistence(memory.New(100), scope.Workflow, time.Hour),
		middleware.WithVersion("v2"), middleware.WithObserver(tm.obs))
	ctx, exec := scope.Begin(context.Background(), "exec_12345")
	if _, err := step(ctx, query{"bob", 1}); err != nil {
		t.Fatal(err)
	}
	wantAttrs(t, tm.only(t, "plan"), map[string]string{
		"docket.scope": "workflow", "docket.execution_id": "exec_12345", "docket.step.version": "v2", "docket.result": "miss",
	})

	endCtx, end := tm.tp.Tracer("app").Start(context.Background(), "end")
	if err := exec.EndContext(endCtx, nil); err != nil {
		t.Fatal(err)
	}
	end.End()
	ev := tm.only(t, "end").Events()
	if len(ev) != 1 || ev[0].Name != tracing.PurgedEvent {
		t.Fatalf("events of the end span = %+v, want one %s", ev, tracing.PurgedEvent)
	}
	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.execution.purged{store=memory}":                                 1,
		"docket.calls{miss_reason=absent,result=miss,scope=workflow,step=plan}": 1,
	})
}

func TestSharedWaitLinksToFlight(t *testing.T) {
	tm := newTelemetry(t)
	release := make(chan struct{})
	var runs atomic.Int64
	step := middleware.Wrap("slow", func(ctx context.Context, q query) (string, error) {
		runs.Add(1)
		<-release
		return q.User, nil
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour), middleware.WithObserver(tm.obs))

	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := step(context.Background(), query{"carol", 1}); err != nil {
				t.Error(err)
			}
		}()
	}
	// Both calls have started their spans; the first to get there started
	// the flight, which cannot end before release: the other joins it a few
	// microseconds later.
	for len(tm.spans.Started()) < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("step ran %d times, want 1", runs.Load())
	}

	spans := tm.ended("slow")
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	byResult := map[string]int{}
	for i, s := range spans {
		byResult[attrs(s)["docket.result"]] = i
	}
	mi, ok1 := byResult["miss"]
	si, ok2 := byResult["shared"]
	if !ok1 || !ok2 {
		t.Fatalf("results %v, want a miss and a shared wait", byResult)
	}
	starter, waiter := spans[mi], spans[si]
	wantAttrs(t, starter, map[string]string{"docket.flight.waiters": "2", "docket.miss_reason": "absent"})
	wantAttrs(t, waiter, map[string]string{"docket.flight.waiters": "", "docket.miss_reason": "absent", "docket.tier": ""})
	if l := links(waiter); len(l) != 1 || l[0] != "flight:"+starter.SpanContext().SpanID().String() {
		t.Fatalf("waiter links = %v, want the flight link to %v", l, starter.SpanContext().SpanID())
	}
	if l := links(starter); len(l) != 0 {
		t.Fatalf("starter links = %v, want none", l)
	}
	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.calls{miss_reason=absent,result=miss,scope=global,step=slow}":                      1,
		"docket.calls{flight.joined=true,miss_reason=absent,result=shared,scope=global,step=slow}": 1,
		"docket.flight.waiters.sum{scope=global,step=slow}":                                        2,
		"docket.step.duration{scope=global,step=slow}":                                             1,
	})
}

// stepError is a step's own error type: error.type names it.
type stepError struct{ msg string }

func (e stepError) Error() string { return e.msg }

func TestErrors(t *testing.T) {
	tm := newTelemetry(t)
	failing := middleware.Wrap("failing", func(context.Context, query) (string, error) {
		return "", stepError{"upstream said no"}
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour), middleware.WithObserver(tm.obs))
	workflow := middleware.Wrap("needs_exec", func(context.Context, query) (string, error) { return "", nil },
		middleware.WithPersistence(memory.New(100), scope.Workflow, time.Hour), middleware.WithObserver(tm.obs))
	panicking := middleware.Wrap("panicking", func(context.Context, query) (string, error) { panic("kaboom") },
		middleware.WithPersistence(memory.New(100), scope.Global, time.Hour), middleware.WithObserver(tm.obs))

	if _, err := failing(context.Background(), query{"a", 1}); err == nil {
		t.Fatal("no error")
	}
	if _, err := workflow(context.Background(), query{"a", 1}); !errors.Is(err, scope.ErrNoExecution) {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = panicking(context.Background(), query{"a", 1})
	}()

	for _, tc := range []struct {
		span, errType, desc string
		keyed               bool
	}{
		{"failing", "github.com/docket-go/docket/tracing_test.stepError", "upstream said no", true},
		{"needs_exec", "github.com/docket-go/docket/scope.ErrNoExecution", scope.ErrNoExecution.Error(), false},
		{"panicking", "github.com/docket-go/docket/middleware.PanicError", "docket: step panicked: kaboom", true},
	} {
		s := tm.only(t, tc.span)
		got := wantAttrs(t, s, map[string]string{"docket.result": "error", "error.type": tc.errType})
		if _, ok := got["docket.key_hash"]; ok != tc.keyed {
			t.Errorf("%s: key_hash present = %v, want %v", tc.span, ok, tc.keyed)
		}
		if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, tc.desc) {
			t.Errorf("%s: status = %+v, want Error with %q", tc.span, s.Status(), tc.desc)
		}
	}
	if d := tm.only(t, "panicking").Status().Description; strings.Contains(d, "goroutine") {
		t.Errorf("panic status carries the stack: %q", d)
	}
	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.calls{miss_reason=absent,result=error,scope=global,step=failing}":   1,
		"docket.calls{result=error,scope=workflow,step=needs_exec}":                 1,
		"docket.calls{miss_reason=absent,result=error,scope=global,step=panicking}": 1,
		// A failed or panicking run is a run.
		"docket.step.duration{scope=global,step=failing}":   1,
		"docket.step.duration{scope=global,step=panicking}": 1,
	})
}

// faultyStore fails every Set on purpose (fault injection).
type faultyStore struct{ backends.Store }

var errDisk = errors.New("disk full (injected)")

func (faultyStore) Set(context.Context, keyer.Key, backends.Entry, backends.Codec) error {
	return errDisk
}

func TestWriteFault(t *testing.T) {
	tm := newTelemetry(t)
	var runs atomic.Int64
	step := middleware.Wrap("unsaved", fetch(tm, &runs),
		middleware.WithPersistence(faultyStore{memory.New(10)}, scope.Global, time.Hour),
		middleware.WithObserver(tm.obs), middleware.WithLogger(nil))
	if _, err := step(context.Background(), query{"a", 1}); err != nil {
		t.Fatal(err)
	}
	s := tm.only(t, "unsaved")
	if s.Status().Code != codes.Unset {
		t.Fatalf("status = %+v: a fault that did not fail the call is no error", s.Status())
	}
	ev := s.Events()
	if len(ev) != 1 || ev[0].Name != "exception" {
		t.Fatalf("events = %+v, want one exception", ev)
	}
	evAttrs := map[string]string{}
	for _, kv := range ev[0].Attributes {
		evAttrs[string(kv.Key)] = kv.Value.String()
	}
	if evAttrs["docket.store"] != "memory" || evAttrs["docket.operation"] != "write" || evAttrs["exception.message"] != errDisk.Error() {
		t.Fatalf("exception event attributes = %v", evAttrs)
	}
	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.store.faults{operation=write,scope=global,step=unsaved,store=memory}": 1,
	})
}

func openBadger(t testing.TB, dir string) *badger.Store {
	t.Helper()
	db, err := badger.Open(dir, badger.WithMemTableSize(1<<20), badger.WithBlockCacheSize(1<<20), badger.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// corruptAll flips one bit in the middle of every value in the Badger
// database in dir, as a damaged disk would.
func corruptAll(t testing.TB, dir string) int {
	t.Helper()
	db, err := badgerdb.Open(badgerdb.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(1 << 20).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.Update(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.DefaultIteratorOptions)
		type kv struct{ k, v []byte }
		var all []kv
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			all = append(all, kv{it.Item().KeyCopy(nil), v})
		}
		it.Close()
		for _, e := range all {
			e.v[len(e.v)/2] ^= 0x10
			if err := txn.Set(e.k, e.v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCorruptEntry(t *testing.T) {
	tm := newTelemetry(t)
	dir := t.TempDir()
	var runs atomic.Int64

	db := openBadger(t, dir)
	step := middleware.Wrap("fetch_user", fetch(tm, &runs),
		middleware.WithPersistence(db, scope.Global, time.Hour), middleware.WithObserver(tm.obs), middleware.WithLogger(nil))
	if _, err := step(context.Background(), query{"dave", 1}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := corruptAll(t, dir); n != 1 {
		t.Fatalf("corrupted %d entries, want 1", n)
	}

	db = openBadger(t, dir)
	defer db.Close()
	step = middleware.Wrap("fetch_user", fetch(tm, &runs),
		middleware.WithPersistence(db, scope.Global, time.Hour), middleware.WithObserver(tm.obs), middleware.WithLogger(nil))
	if got, err := step(context.Background(), query{"dave", 1}); err != nil || got != "dave" {
		t.Fatalf("step = %q, %v; a corrupt entry must be a miss", got, err)
	}
	if runs.Load() != 2 {
		t.Fatalf("step ran %d times, want 2 (the corrupt entry is not served)", runs.Load())
	}
	s := tm.ended("fetch_user")[1]
	wantAttrs(t, s, map[string]string{"docket.result": "miss", "docket.miss_reason": "corrupt", "docket.tier": ""})
	if ev := s.Events(); len(ev) != 1 || ev[0].Name != "exception" {
		t.Fatalf("events = %+v, want the read fault", ev)
	}
	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.store.faults{operation=read,scope=global,step=fetch_user,store=badger}": 1,
		"docket.calls{miss_reason=absent,result=miss,scope=global,step=fetch_user}":     1,
		"docket.calls{miss_reason=corrupt,result=miss,scope=global,step=fetch_user}":    1,
	})
}

// TestBackTierAfterRestart: a result produced before a restart is found in
// Badger behind a fresh memory front, and its span links to the span of the
// run that produced it: Origin survives the bytes.
func TestBackTierAfterRestart(t *testing.T) {
	tm := newTelemetry(t)
	dir := t.TempDir()
	var runs atomic.Int64
	wrap := func(store backends.Store) middleware.Step[query, string] {
		return middleware.Wrap("fetch_user", fetch(tm, &runs),
			middleware.WithPersistence(store, scope.Global, time.Hour), middleware.WithObserver(tm.obs))
	}

	db := openBadger(t, dir)
	if _, err := wrap(backends.Tiered(memory.New(100), db))(context.Background(), query{"erin", 1}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	producer := tm.only(t, "fetch_user")

	db = openBadger(t, dir)
	defer db.Close()
	step := wrap(backends.Tiered(memory.New(100), db))
	for range 2 {
		if got, err := step(context.Background(), query{"erin", 1}); err != nil || got != "erin" {
			t.Fatalf("step = %q, %v", got, err)
		}
	}
	if runs.Load() != 1 {
		t.Fatalf("step ran %d times, want 1", runs.Load())
	}
	spans := tm.ended("fetch_user")
	back, front := spans[1], spans[2]
	// The front missed; the flight's look found the result in Badger: a hit,
	// by tier, since the step did not run.
	wantAttrs(t, back, map[string]string{"docket.result": "hit", "docket.tier": "badger", "docket.miss_reason": "absent", "docket.flight.waiters": "1"})
	// Promoted to the front, Origin included.
	wantAttrs(t, front, map[string]string{"docket.result": "hit", "docket.tier": "memory"})
	want := "producer:" + producer.SpanContext().SpanID().String()
	for _, s := range []sdktrace.ReadOnlySpan{back, front} {
		if l := links(s); len(l) != 1 || l[0] != want {
			t.Fatalf("links = %v, want %s", l, want)
		}
	}
	m := tm.metrics(t)
	wantMetrics(t, m, map[string]float64{
		"docket.calls{miss_reason=absent,result=miss,scope=global,step=fetch_user}": 1,
		"docket.calls{result=hit,scope=global,step=fetch_user,tier=badger}":         1,
		"docket.calls{result=hit,scope=global,step=fetch_user,tier=memory}":         1,
		// Not a miss: the step did not run.
		"docket.calls{result=miss,scope=global,step=fetch_user,tier=badger}": 0,
		// Only the first call ran the step.
		"docket.step.duration{scope=global,step=fetch_user}": 1,
	})
}

// TestProvenanceAcrossExecutions: a Global result made in one execution
// (one trace) and hit in another links the hit to the producing span in the
// first trace.
func TestProvenanceAcrossExecutions(t *testing.T) {
	tm := newTelemetry(t)
	var runs atomic.Int64
	step := middleware.Wrap("fetch_user", fetch(tm, &runs),
		middleware.WithPersistence(memory.New(100), scope.Global, time.Hour), middleware.WithObserver(tm.obs))
	app := tm.tp.Tracer("app")
	for _, id := range []string{"exec_1", "exec_2"} {
		ctx, root := app.Start(context.Background(), id)
		ctx, exec := scope.Begin(ctx, id)
		if _, err := step(ctx, query{"frank", 1}); err != nil {
			t.Fatal(err)
		}
		exec.End(nil)
		root.End()
	}
	spans := tm.ended("fetch_user")
	made, hit := spans[0], spans[1]
	wantAttrs(t, made, map[string]string{"docket.result": "miss", "docket.execution_id": "exec_1"})
	wantAttrs(t, hit, map[string]string{"docket.result": "hit", "docket.execution_id": "exec_2"})
	if made.SpanContext().TraceID() == hit.SpanContext().TraceID() {
		t.Fatal("the executions share a trace")
	}
	l := hit.Links()
	if len(l) != 1 || l[0].SpanContext.TraceID() != made.SpanContext().TraceID() || l[0].SpanContext.SpanID() != made.SpanContext().SpanID() {
		t.Fatalf("hit links = %+v, want exec_1's producing span %v", l, made.SpanContext())
	}
}
