package tracing

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// instruments makes s's instruments with m and notes which of them record:
// Enabled is false for every instrument of a no-op meter (the global default
// with no SDK installed, noop.MeterProvider) and for one a view drops.
func (s *state) instruments(m metric.Meter) {
	var err error
	ctx := context.Background()
	if s.calls, err = m.Int64Counter(CallsMetric,
		metric.WithDescription("Calls of persisted steps, by how they were answered."),
		metric.WithUnit("{call}")); err != nil {
		otel.Handle(err)
		s.calls = noop.Int64Counter{}
	}
	if s.duration, err = m.Float64Histogram(StepDurationMetric,
		metric.WithDescription("How long runs of persisted steps took."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60)); err != nil {
		otel.Handle(err)
		s.duration = noop.Float64Histogram{}
	}
	if s.waiters, err = m.Int64Histogram(FlightWaitersMetric,
		metric.WithDescription("Callers each flight of a persisted step answered."),
		metric.WithUnit("{caller}"),
		metric.WithExplicitBucketBoundaries(1, 2, 3, 5, 10, 20, 50, 100, 1000)); err != nil {
		otel.Handle(err)
		s.waiters = noop.Int64Histogram{}
	}
	if s.faults, err = m.Int64Counter(StoreFaultsMetric,
		metric.WithDescription("Store faults: unreadable, corrupt or failed reads, failed writes and purges."),
		metric.WithUnit("{fault}")); err != nil {
		otel.Handle(err)
		s.faults = noop.Int64Counter{}
	}
	if s.purged, err = m.Int64Counter(PurgedMetric,
		metric.WithDescription("Entries removed when executions ended successfully."),
		metric.WithUnit("{entry}")); err != nil {
		otel.Handle(err)
		s.purged = noop.Int64Counter{}
	}
	s.callsOn = s.calls.Enabled(ctx)
	s.runsOn = s.duration.Enabled(ctx) || s.waiters.Enabled(ctx)
	s.faultsOn = s.faults.Enabled(ctx)
	s.purgedOn = s.purged.Enabled(ctx)
	s.metricsOn = s.callsOn || s.runsOn
}

// stepKey identifies a step for the caches.
type stepKey struct {
	step, version string
	scope         scope.Scope
}

// stepState is what one step's spans and metrics are made with, computed
// once, so that a call allocates nothing for its metrics.
type stepState struct {
	o *Observer
	// startOpts start the step's spans: kind internal, step, version,
	// scope.
	startOpts []trace.SpanStartOption
	// runOpts carry the attribute set {step, scope} of the run metrics.
	runOpts []metric.RecordOption
	attrs   []attribute.KeyValue // step, scope

	// calls holds the docket.calls options per callKey seen so far, copied
	// on write: a few entries, scanned without a lock.
	calls   atomic.Pointer[[]callOpts]
	callsMu sync.Mutex
}

type callOpts struct {
	key  callKey
	opts []metric.AddOption
}

// callKey is what tells a step's docket.calls points apart: the attributes
// besides step and scope, one for each figure of middleware.Stats. Of tier
// (a hit, of that tier) and reason (a miss, for that reason) exactly one is
// set for a call that got past keying, neither for one that failed before
// any lookup; joined marks a shared wait. So a step has at most a few dozen
// points: results × (tiers + reasons + 1) × 2.
type callKey struct {
	result middleware.Result
	reason middleware.Reason
	joined bool
	tier   string
}

func callKeyOf(out middleware.Outcome) callKey {
	k := callKey{result: result(out), joined: out.Joined, tier: out.Tier}
	if k.tier == "" {
		k.reason = out.Reason
	}
	return k
}

// step returns the cache of call's step, making it on first use.
func (o *Observer) step(call middleware.CallInfo) *stepState {
	k := stepKey{step: call.Step, version: call.Version, scope: call.Scope}
	if m := o.steps.Load(); m != nil {
		if st, ok := (*m)[k]; ok {
			return st
		}
	}
	o.stepsMu.Lock()
	defer o.stepsMu.Unlock()
	var old map[stepKey]*stepState
	if m := o.steps.Load(); m != nil {
		old = *m
	}
	if st, ok := old[k]; ok {
		return st
	}
	st := newStepState(o, k)
	m := make(map[stepKey]*stepState, len(old)+1)
	maps.Copy(m, old)
	m[k] = st
	o.steps.Store(&m)
	return st
}

func newStepState(o *Observer, k stepKey) *stepState {
	attrs := []attribute.KeyValue{StepKey.String(k.step), ScopeKey.String(k.scope.String())}
	spanAttrs := attrs
	if k.version != "" {
		spanAttrs = append(spanAttrs[:len(spanAttrs):len(spanAttrs)], StepVersionKey.String(k.version))
	}
	st := &stepState{
		o:         o,
		attrs:     attrs,
		startOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(spanAttrs...)},
		runOpts:   []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))},
	}
	st.calls.Store(&[]callOpts{})
	return st
}

// stepMetrics is the CallSpan of a call that only metrics observe: the
// step's cache itself, so that returning it allocates nothing.
type stepMetrics stepState

func (st *stepState) metricsOnly() middleware.CallSpan { return (*stepMetrics)(st) }

func (m *stepMetrics) End(out middleware.Outcome) {
	(*stepState)(m).record(context.Background(), out)
}

// record adds the call's outcome to the metrics.
func (st *stepState) record(ctx context.Context, out middleware.Outcome) {
	s := st.o.current()
	if s.callsOn {
		s.calls.Add(ctx, 1, st.callOpts(callKeyOf(out))...)
	}
	if s.runsOn {
		// Every run the middleware reports, failed ones and Bypass runs
		// included: as many as Stats.Runs counts.
		if out.Ran {
			s.duration.Record(ctx, out.StepDuration.Seconds(), st.runOpts...)
		}
		if out.Waiters > 0 {
			s.waiters.Record(ctx, int64(out.Waiters), st.runOpts...)
		}
	}
}

// result is how a call counts, in spans and docket.calls alike. A call that
// returned an error is an error, also when a tier answered it with a stored
// failure (WithErrorCaching), a strict write fault came with the step's
// result, or a Bypass run failed. Otherwise an answer from any tier is a
// hit, by tier, also when the flight this caller started found it (in a
// slower tier, or stored a moment before); a miss is a call whose flight
// ran the step. The middleware reports those answers as misses with a tier,
// since the call did start a flight.
func result(out middleware.Outcome) middleware.Result {
	switch {
	case out.Err != nil:
		return middleware.ResultError
	case out.Result == middleware.ResultMiss && out.Tier != "":
		return middleware.ResultHit
	}
	return out.Result
}

// callOpts returns the docket.calls options for k.
func (st *stepState) callOpts(k callKey) []metric.AddOption {
	for _, c := range *st.calls.Load() {
		if c.key == k {
			return c.opts
		}
	}
	st.callsMu.Lock()
	defer st.callsMu.Unlock()
	old := *st.calls.Load()
	for _, c := range old {
		if c.key == k {
			return c.opts
		}
	}
	attrs := append(st.attrs[:len(st.attrs):len(st.attrs)], ResultKey.String(k.result.String()))
	if k.tier != "" {
		attrs = append(attrs, TierKey.String(k.tier))
	}
	if k.reason != middleware.ReasonNone {
		attrs = append(attrs, MissReasonKey.String(k.reason.String()))
	}
	if k.joined {
		attrs = append(attrs, FlightJoinedKey.Bool(true))
	}
	c := callOpts{key: k, opts: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}}
	next := append(old[:len(old):len(old)], c)
	st.calls.Store(&next)
	return c.opts
}
