package tracing_test

import (
	"context"
	"errors"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
	"github.com/docket-go/docket/tracing"
)

// faultyReads wraps a real store and fails its reads while fail is set, on
// purpose (fault injection).
type faultyReads struct {
	backends.Store
	fail atomic.Bool
}

var errRead = errors.New("read failed (injected)")

func (f *faultyReads) Get(ctx context.Context, k keyer.Key, c backends.Codec) (backends.Entry, error) {
	if f.fail.Load() {
		return backends.Entry{}, errRead
	}
	return f.Store.Get(ctx, k, c)
}

// statsFromMetrics derives a step's Stats from the metrics the reader of tm
// collects, as package tracing documents it: every docket.calls point is a
// hit of the tier docket.tier names, or a miss for the reason
// docket.miss_reason gives, or (neither) a call that failed before any
// lookup; docket.flight.joined marks shared waits and result=error the
// errors. Runs and RunTime are the count and sum of docket.step.duration.
func statsFromMetrics(t *testing.T, tm *telemetry, step string) middleware.Stats {
	t.Helper()
	reasons := map[string]middleware.Reason{}
	for r := middleware.ReasonAbsent; r <= middleware.ReasonRefreshAhead; r++ {
		reasons[r.String()] = r
	}
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	s := middleware.Stats{Hits: map[string]uint64{}, Misses: map[middleware.Reason]uint64{}}
	var seconds float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name != tracing.CallsMetric {
					continue
				}
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Fatalf("%s: monotonic %v, temporality %v; want a cumulative counter", m.Name, d.IsMonotonic, d.Temporality)
				}
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value(tracing.StepKey); v.AsString() != step {
						continue
					}
					n := uint64(p.Value)
					s.Calls += n
					tier, hit := p.Attributes.Value(tracing.TierKey)
					why, miss := p.Attributes.Value(tracing.MissReasonKey)
					result, _ := p.Attributes.Value(tracing.ResultKey)
					switch {
					case hit && miss:
						t.Errorf("%s%s: both a hit and a miss", m.Name, setString(p.Attributes))
					case hit:
						s.Hits[tier.AsString()] += n
					case miss:
						r, ok := reasons[why.AsString()]
						if !ok {
							t.Errorf("%s%s: unknown miss reason", m.Name, setString(p.Attributes))
						}
						s.Misses[r] += n
					case result.AsString() != "error":
						t.Errorf("%s%s: neither a hit nor a miss, nor an error", m.Name, setString(p.Attributes))
					}
					if j, ok := p.Attributes.Value(tracing.FlightJoinedKey); ok && j.AsBool() {
						s.SharedWaits += n
					}
					if result.AsString() == "error" {
						s.Errors += n
					}
				}
			case metricdata.Histogram[float64]:
				if m.Name != tracing.StepDurationMetric {
					continue
				}
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value(tracing.StepKey); v.AsString() == step {
						s.Runs += p.Count
						seconds += p.Sum
					}
				}
			}
		}
	}
	s.RunTime = time.Duration(math.Round(seconds * 1e9))
	return s
}

// equalStats compares two snapshots field by field. RunTime and
// MeanRunTime may differ by the rounding of a sum of float seconds.
func equalStats(t *testing.T, what string, got, want middleware.Stats) {
	t.Helper()
	near := func(a, b time.Duration) bool { return (a - b).Abs() <= time.Microsecond }
	for _, f := range []struct {
		field string
		ok    bool
	}{
		{"Calls", got.Calls == want.Calls},
		{"Hits", maps.Equal(got.Hits, want.Hits)},
		{"Misses", maps.Equal(got.Misses, want.Misses)},
		{"SharedWaits", got.SharedWaits == want.SharedWaits},
		{"Runs", got.Runs == want.Runs},
		{"RunTime", near(got.RunTime, want.RunTime)},
		{"MeanRunTime", near(got.MeanRunTime(), want.MeanRunTime())},
		{"Errors", got.Errors == want.Errors},
	} {
		if !f.ok {
			t.Errorf("%s: %s differs:\n got  %+v\n want %+v", what, f.field, got, want)
		}
	}
}

// TestMetricsMatchStats drives one step through every way a call can go
// (hits of the front and the back tier, misses for each reason, shared
// waits, failed and panicking runs, stored failures) and checks that the Stats snapshot
// and what the metrics say of the step agree, field by field.
func TestMetricsMatchStats(t *testing.T) {
	errBad := errors.New("upstream said no")
	errGone := errors.New("no such user")
	classify := func(err error) (string, bool) { return "gone", errors.Is(err, errGone) }
	for _, tc := range []struct {
		name    string
		durable bool
	}{{"memory", false}, {"memory+badger", true}} {
		t.Run(tc.name, func(t *testing.T) {
			release, releaseBad := make(chan struct{}), make(chan struct{})
			step := func(_ context.Context, q query) (string, error) {
				switch q.User {
				case "bad":
					return "", errBad
				case "gone":
					return "", errGone // terminal: stored under WithErrorCaching
				case "slow":
					<-release
				case "slow-bad":
					<-releaseBad
					return "", errBad
				case "boom":
					panic("kaboom")
				}
				return q.User, nil
			}
			ctx := context.Background()
			dir := t.TempDir()
			var db interface {
				backends.Store
				ByteStore() backends.ByteStore
			}
			// open makes a process's store: a memory front, wrapped to fail
			// its reads on demand, before the Badger store in dir if durable.
			open := func() (backends.Store, *memory.Store, *faultyReads) {
				mem := memory.New(100)
				front := &faultyReads{Store: mem}
				if !tc.durable {
					return front, mem, front
				}
				return backends.Tiered(front, db), mem, front
			}
			if tc.durable {
				b := openBadger(t, dir)
				t.Cleanup(func() { b.Close() })
				db = b
			}
			newStep := func(tm *telemetry, store backends.Store) *middleware.Persisted[query, string] {
				return middleware.New("stats", step,
					middleware.WithPersistence(store, scope.Global, time.Hour),
					middleware.WithErrorCaching(classify, 0),
					middleware.WithObserver(tm.obs), middleware.WithLogger(nil))
			}
			key := func(user string) keyer.Key {
				k, err := keyer.Default.Key(ctx, keyer.StepInfo{Name: "stats", Scope: scope.Global}, query{User: user})
				if err != nil {
					t.Fatal(err)
				}
				return k
			}
			// together makes n concurrent calls of user's key: one starts the
			// flight, which blocks until gate is closed, and n-1 join it.
			together := func(h *middleware.Persisted[query, string], user string, n int, gate chan struct{}) {
				waits := h.Stats().SharedWaits
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() { h.Call(ctx, query{User: user}) })
				}
				for h.Stats().SharedWaits < waits+uint64(n-1) {
					time.Sleep(time.Millisecond)
				}
				close(gate)
				wg.Wait()
			}

			tm := newTelemetry(t)
			store, mem, front := open()
			h := newStep(tm, store)
			a := query{User: "a"}
			h.Call(ctx, a)                     // miss (absent), run
			h.Call(ctx, a)                     // hit (memory)
			h.Call(middleware.Refresh(ctx), a) // miss (refresh), run
			h.Call(middleware.Bypass(ctx), a)  // miss (bypass), run
			// miss (bypass), run, error
			h.Call(middleware.Bypass(ctx), query{User: "bad"})
			// miss (expired), run: an entry with a short TTL, waited past.
			now := time.Now()
			if err := mem.Set(ctx, key("old"), backends.Entry{Value: "old", Created: now, Expires: now.Add(time.Millisecond)}, nil); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
			h.Call(ctx, query{User: "old"})
			// miss (corrupt), run: the front holds a value of another type.
			if err := mem.Set(ctx, key("odd"), backends.Entry{Value: 42, Created: now}, nil); err != nil {
				t.Fatal(err)
			}
			h.Call(ctx, query{User: "odd"})
			// miss (fault), run: the front fails to read.
			front.fail.Store(true)
			h.Call(ctx, query{User: "flaky"})
			front.fail.Store(false)
			together(h, "slow", 4, release)        // a miss (absent), run; 3 shared waits on it
			together(h, "slow-bad", 3, releaseBad) // the same, all errors
			h.Call(ctx, query{User: "bad"})        // miss (absent), run, error
			h.Call(ctx, query{User: "bad"})        // failures are not stored: again
			h.Call(ctx, query{User: "gone"})       // miss (absent), run, error, stored
			h.Call(ctx, query{User: "gone"})       // hit (memory), error
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			h.Call(cancelled, query{User: "late"}) // miss (absent), error: no run
			for _, c := range []context.Context{ctx, middleware.Bypass(ctx)} {
				func() {
					defer func() { _ = recover() }()
					h.Call(c, query{User: "boom"}) // miss (absent, bypass), run, error: a panic
				}()
			}

			got := h.Stats()
			equalStats(t, "Stats()", got, middleware.Stats{
				Calls: 22, SharedWaits: 5, Runs: 14, Errors: 11,
				Hits: map[string]uint64{"memory": 2},
				Misses: map[middleware.Reason]uint64{
					middleware.ReasonAbsent: 13, middleware.ReasonExpired: 1, middleware.ReasonCorrupt: 1,
					middleware.ReasonFault: 1, middleware.ReasonRefresh: 1, middleware.ReasonBypass: 3,
				},
				RunTime: got.RunTime,
			})
			equalStats(t, "from the metrics", statsFromMetrics(t, tm, "stats"), got)
			// Not in Stats, but the corrupt entry and the failed read were
			// faults.
			if n := tm.metrics(t)["docket.store.faults{operation=read,scope=global,step=stats,store="+store.Name()+"}"]; n < 2 {
				t.Errorf("%g read faults counted, want the corrupt entry's and the failed read's", n)
			}
			if !tc.durable {
				return
			}

			// A new process: an empty front over the same Badger store, its
			// own telemetry.
			tm = newTelemetry(t)
			store, _, _ = open()
			h = newStep(tm, store)
			h.Call(ctx, a)                   // hit (badger), copied into the front
			h.Call(ctx, a)                   // hit (memory)
			h.Call(ctx, query{User: "gone"}) // hit (badger): the stored failure, an error
			h.Call(ctx, query{User: "gone"}) // hit (memory), error
			// miss (absent), run: the front has nothing; the Badger entry's
			// bytes are damaged, which is a fault of the flight's look.
			bk, err := backends.EntryKey(nil, key("rot"))
			if err != nil {
				t.Fatal(err)
			}
			rec := backends.Record{Key: bk, Value: []byte("garbage that is long enough to be an entry"), Meta: backends.Meta{Step: "stats", Scope: scope.Global}}
			if err := db.ByteStore().Put(ctx, []backends.Record{rec}); err != nil {
				t.Fatal(err)
			}
			if v, err := h.Call(ctx, query{User: "rot"}); err != nil || v != "rot" {
				t.Fatalf("over a damaged entry: %q, %v", v, err)
			}
			got = h.Stats()
			equalStats(t, "Stats() after a restart", got, middleware.Stats{
				Calls: 5, Runs: 1, Errors: 2,
				Hits:    map[string]uint64{"badger": 2, "memory": 2},
				Misses:  map[middleware.Reason]uint64{middleware.ReasonAbsent: 1},
				RunTime: got.RunTime,
			})
			equalStats(t, "from the metrics after a restart", statsFromMetrics(t, tm, "stats"), got)
			wantMetrics(t, tm.metrics(t), map[string]float64{
				"docket.store.faults{operation=read,scope=global,step=stats,store=memory+badger}": 1,
			})
		})
	}
}

// TestMetricsMatchStatsRefreshAhead: a refresh ahead, which succeeds and
// then fails, counts alike in Stats and in the metrics: a call of its own,
// a miss for ReasonRefreshAhead that ran the step, an error when it failed.
func TestMetricsMatchStatsRefreshAhead(t *testing.T) {
	tm := newTelemetry(t)
	var runs atomic.Int64
	h := middleware.New("ahead", func(_ context.Context, q query) (string, error) {
		if runs.Add(1) == 3 {
			return "", errors.New("upstream down")
		}
		return q.User, nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour),
		middleware.WithRefreshAhead(time.Hour-time.Millisecond), middleware.WithObserver(tm.obs))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := query{User: "eur"}
	h.Call(ctx, q)
	for want := uint64(1); want <= 2; want++ {
		time.Sleep(2 * time.Millisecond)
		h.Call(ctx, q) // a hit that starts a refresh
		deadline := time.Now().Add(10 * time.Second)
		for h.Stats().Misses[middleware.ReasonRefreshAhead] < want {
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting for the refresh")
			}
			time.Sleep(time.Millisecond)
		}
	}
	got := h.Stats()
	if got.Runs != 3 || got.Errors != 1 || got.Misses[middleware.ReasonRefreshAhead] != 2 || got.Hits["memory"] != 2 {
		t.Fatalf("stats %+v: want 3 runs, 2 refreshes ahead (one failed), 2 hits", got)
	}
	equalStats(t, "refresh ahead", statsFromMetrics(t, tm, "ahead"), got)
}

// TestRefreshAheadSpan: the background refresh has a span of its own, a
// child of the hit that started it, with the refresh_ahead miss reason; the
// hit's span ends without waiting for it.
func TestRefreshAheadSpan(t *testing.T) {
	tm := newTelemetry(t)
	h := middleware.New("ahead", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour),
		middleware.WithRefreshAhead(time.Hour-time.Millisecond), middleware.WithObserver(tm.obs))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.Call(ctx, query{User: "eur"})
	time.Sleep(2 * time.Millisecond)
	h.Call(ctx, query{User: "eur"})
	deadline := time.Now().Add(10 * time.Second)
	for len(tm.ended("ahead")) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d spans ended; want 3", len(tm.ended("ahead")))
		}
		time.Sleep(time.Millisecond)
	}
	spans := tm.ended("ahead")
	hit, refresh := spans[1], spans[2]
	if a := attrs(hit); a[string(tracing.ResultKey)] != "hit" {
		t.Fatalf("second call: %v; want a hit", a)
	}
	a := attrs(refresh)
	if a[string(tracing.ResultKey)] != "miss" || a[string(tracing.MissReasonKey)] != "refresh_ahead" {
		t.Fatalf("refresh span: %v; want a miss for refresh_ahead", a)
	}
	if refresh.Parent().SpanID() != hit.SpanContext().SpanID() {
		t.Fatalf("refresh span's parent %v; want the hit's span %v", refresh.Parent().SpanID(), hit.SpanContext().SpanID())
	}
}
