package tracing

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/docket-go/docket/middleware"
)

var _ middleware.Observer = (*Observer)(nil)

// Observer reports the calls of the steps it is installed on
// (middleware.WithObserver) as OpenTelemetry spans and metrics. Make one with
// [New]; the zero value is New() without options. One Observer serves any
// number of steps, of any types, and is safe for concurrent use.
type Observer struct {
	cfg config

	// state is what the providers came to: the tracer, the instruments and
	// whether anybody records. It is replaced when a global provider the
	// observer follows is replaced.
	state atomic.Pointer[state]
	mu    sync.Mutex // serializes resolve

	// steps caches, per step, what its spans and metrics are started with
	// (copy on write: steps are few and seldom new, lookups many).
	steps   atomic.Pointer[map[stepKey]*stepState]
	stepsMu sync.Mutex
}

// New returns an Observer that reports through the given providers, by
// default the global ones (see WithTracerProvider, WithMeterProvider). Use
// it as middleware.WithObserver(tracing.New()).
//
// The providers are looked up when the observer is first used, not by New,
// so an observer made in a package-level variable reports through the
// providers main installs later.
func New(opts ...Option) *Observer {
	return &Observer{cfg: newConfig(opts)}
}

// Trace modes of a state: whether the tracer makes spans at all.
const (
	// traceUnknown: not yet seen; the next call starts a span and looks.
	traceUnknown int32 = iota
	// traceOff: the tracer is a no-op (the global default with no SDK
	// installed, noop.TracerProvider): no span is ever started.
	traceOff
	// traceOn: the tracer makes spans; whether each one records is for its
	// sampler to say.
	traceOn
)

// state is the observer's view of its providers at one time. Everything
// but mode is fixed once made.
type state struct {
	// The global providers when the state was made: when otel's globals
	// no longer return these, the state is made anew (unless pinned).
	globalTP trace.TracerProvider
	globalMP metric.MeterProvider
	// pinned: a global provider's type is not comparable, so replacing it
	// cannot be seen; the state is kept.
	pinned bool

	tracer trace.Tracer
	mode   atomic.Int32

	calls     metric.Int64Counter
	duration  metric.Float64Histogram
	waiters   metric.Int64Histogram
	faults    metric.Int64Counter
	purged    metric.Int64Counter
	callsOn   bool
	runsOn    bool // duration or waiters enabled
	faultsOn  bool
	purgedOn  bool
	metricsOn bool // callsOn || runsOn: a call's outcome is wanted for metrics
}

// fresh reports whether s still describes the providers in use.
func (s *state) fresh() bool {
	return s.pinned || (otel.GetTracerProvider() == s.globalTP && otel.GetMeterProvider() == s.globalMP)
}

// current returns the state for the providers in use. On the hot path it is
// two atomic loads of otel's globals and two pointer comparisons.
func (o *Observer) current() *state {
	if s := o.state.Load(); s != nil && s.fresh() {
		return s
	}
	return o.resolve()
}

// resolve makes the state for the providers in use now. The global
// providers are compared even when both providers were given: the global
// default provider, handed to WithTracerProvider as otel.GetTracerProvider(),
// starts delegating to an SDK exactly when otel's global is replaced.
func (o *Observer) resolve() *state {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s := o.state.Load(); s != nil && s.fresh() {
		return s
	}
	gtp, gmp := otel.GetTracerProvider(), otel.GetMeterProvider()
	s := &state{
		globalTP: gtp,
		globalMP: gmp,
		pinned:   !reflect.TypeOf(gtp).Comparable() || !reflect.TypeOf(gmp).Comparable(),
	}
	tp, mp := o.cfg.tracerProvider, o.cfg.meterProvider
	if tp == nil {
		tp = gtp
	}
	if mp == nil {
		mp = gmp
	}
	s.tracer = tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version))
	s.instruments(mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version)))
	o.state.Store(s)
	return s
}

// Start starts the call's span, named after the step, unless nobody would
// record it. See the package documentation for when that is.
func (o *Observer) Start(ctx context.Context, call middleware.CallInfo) (context.Context, middleware.CallSpan) {
	s := o.current()
	mode := s.mode.Load()
	if mode == traceOff {
		if !s.metricsOn {
			return ctx, nil
		}
		// The step's cache is the span: metrics need no per-call state.
		return ctx, o.step(call).metricsOnly()
	}
	st := o.step(call)
	sctx, span := s.tracer.Start(ctx, call.Step, st.startOpts...)
	if mode == traceUnknown {
		// A no-op tracer hands back the parent's span context unchanged
		// (an invalid one at a root); an SDK always makes a new span ID,
		// recording or not. Looked at once per provider, on a real call,
		// so that no probe span ever reaches a span processor.
		if !span.IsRecording() && span.SpanContext().Equal(trace.SpanContextFromContext(ctx)) {
			s.mode.Store(traceOff)
			if !s.metricsOn {
				return ctx, nil
			}
			return ctx, st.metricsOnly()
		}
		s.mode.Store(traceOn)
	}
	if !span.IsRecording() {
		// Sampled out. The context keeps the span, so that the step's own
		// spans follow the same sampling decision; ending a non-recording
		// span does nothing, so it needs no CallSpan of its own.
		if !s.metricsOn {
			return sctx, nil
		}
		return sctx, st.metricsOnly()
	}
	return sctx, &callSpan{step: st, span: span, ctx: sctx, execution: call.Execution}
}

// originLen is the length of what Origin returns: a trace ID, then a span
// ID.
const originLen = 16 + 8

// Origin returns the trace ID and span ID of the span in ctx (the span of
// the call that ran the step), for the middleware to store with the result,
// so that the spans of later hits, in this process or another, link to it.
// It returns nil when that span is not sampled or nobody traces.
func (o *Observer) Origin(ctx context.Context) []byte {
	if o.current().mode.Load() == traceOff {
		return nil
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return nil
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, originLen)
	b = append(b, tid[:]...)
	return append(b, sid[:]...)
}

// originSpan reads what Origin returned; ok is false for anything else
// (another observer's form, a damaged entry).
func originSpan(b []byte) (trace.SpanContext, bool) {
	if len(b) != originLen {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID(b[:16]),
		SpanID:     trace.SpanID(b[16:]),
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	return sc, sc.IsValid()
}

// Fault counts a store fault and records it on the call's span, as an
// exception event that does not change the span's status: the call itself
// fails only if it is strict, which its own outcome then says.
func (o *Observer) Fault(ctx context.Context, call middleware.CallInfo, store, op string, err error) {
	s := o.current()
	if s.faultsOn {
		s.faults.Add(ctx, 1, metric.WithAttributes(
			StepKey.String(call.Step), ScopeKey.String(call.Scope.String()),
			StoreKey.String(store), OperationKey.String(op)))
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.RecordError(err, trace.WithAttributes(StoreKey.String(store), OperationKey.String(op), errorType(err)))
	}
}

// Purged counts the entries an execution's end removed from store; a failed
// purge also counts as a store fault (operation "purge").
func (o *Observer) Purged(ctx context.Context, store, executionID string, n int, err error) {
	s := o.current()
	if s.purgedOn && n > 0 {
		s.purged.Add(ctx, int64(n), metric.WithAttributes(StoreKey.String(store)))
	}
	if err != nil && s.faultsOn {
		s.faults.Add(ctx, 1, metric.WithAttributes(StoreKey.String(store), OperationKey.String("purge")))
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{StoreKey.String(store), ExecutionIDKey.String(executionID), PurgedCountKey.Int(n)}
	span.AddEvent(PurgedEvent, trace.WithAttributes(attrs...))
	if err != nil {
		span.RecordError(err, trace.WithAttributes(StoreKey.String(store), OperationKey.String("purge"), errorType(err)))
	}
}
