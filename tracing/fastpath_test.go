package tracing_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
	"github.com/docket-go/docket/tracing"
)

var call = middleware.CallInfo{Step: "s", Scope: scope.Global}

// startNothing checks that o observes nothing of a call in ctx: the context
// comes back as it was and there is no span.
func startNothing(t *testing.T, o *tracing.Observer, ctx context.Context) {
	t.Helper()
	for i := range 3 {
		got, span := o.Start(ctx, call)
		if got != ctx || span != nil {
			t.Fatalf("call %d: Start = %v, %v; want the same context and no span", i, got, span)
		}
	}
}

func TestNoProviderObservesNothing(t *testing.T) {
	// The tests never install global providers (TestFollowsGlobalProviders
	// does, in a process of its own): these are the defaults.
	startNothing(t, tracing.New(), context.Background())
	startNothing(t, tracing.New(tracing.WithTracerProvider(tracenoop.NewTracerProvider()), tracing.WithMeterProvider(metricnoop.NewMeterProvider())), context.Background())

	// Inside a span of another provider, a no-op tracer hands the parent
	// back: still nothing to record.
	tm := newTelemetry(t)
	ctx, span := tm.tp.Tracer("app").Start(context.Background(), "request")
	defer span.End()
	o := tracing.New()
	startNothing(t, o, ctx)
	if o.Origin(ctx) != nil {
		t.Fatal("Origin stores a span ID although nobody traces through the observer")
	}
}

// With metrics recorded but no tracing, Start starts no span but the call is
// counted.
func TestMetricsWithoutTracing(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	obs := tracing.New(tracing.WithMeterProvider(mp))
	step := middleware.Wrap("counted", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	ctx := context.Background()
	for range 3 {
		if _, err := step(ctx, query{"a", 1}); err != nil {
			t.Fatal(err)
		}
	}
	got, span := obs.Start(ctx, call)
	if got != ctx || span == nil {
		t.Fatalf("Start = %v, %v; want the same context and a span for the metrics", got, span)
	}
	tm := &telemetry{reader: reader}
	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.calls{miss_reason=absent,result=miss,scope=global,step=counted}": 1,
		"docket.calls{result=hit,scope=global,step=counted,tier=memory}":         2,
	})
}

// A span the sampler drops is not observed, but stays in the context so the
// step's own spans follow the decision, and its ID is not stored.
func TestSampledOut(t *testing.T) {
	tm := newTelemetry(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	obs := tracing.New(tracing.WithTracerProvider(tm.tp))
	var inStep trace.SpanContext
	var origin []byte
	step := middleware.Wrap("sampled_out", func(ctx context.Context, q query) (string, error) {
		inStep = trace.SpanContextFromContext(ctx)
		origin = obs.Origin(ctx)
		return q.User, nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	if _, err := step(context.Background(), query{"a", 1}); err != nil {
		t.Fatal(err)
	}
	if !inStep.IsValid() || inStep.IsSampled() {
		t.Fatalf("the step's span context = %+v, want a valid, unsampled one", inStep)
	}
	if origin != nil {
		t.Fatalf("Origin = %x, want nil for an unsampled span", origin)
	}
	if n := len(tm.spans.Ended()); n != 0 {
		t.Fatalf("%d spans ended", n)
	}
	ctx := context.Background()
	got, span := obs.Start(ctx, call)
	if span != nil || !trace.SpanContextFromContext(got).IsValid() {
		t.Fatalf("Start = %v, %v; want a context with the unsampled span and no CallSpan", got, span)
	}
}

func TestOrigin(t *testing.T) {
	tm := newTelemetry(t)
	ctx, span := tm.tp.Tracer("app").Start(context.Background(), "run")
	defer span.End()
	// The first Start looks at the provider; Origin is called after it.
	tm.obs.Start(ctx, call)
	sc := span.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	want := append(append([]byte{}, tid[:]...), sid[:]...)
	if got := tm.obs.Origin(ctx); !bytes.Equal(got, want) {
		t.Fatalf("Origin = %x, want trace ID + span ID %x", got, want)
	}
	if got := tm.obs.Origin(context.Background()); got != nil {
		t.Fatalf("Origin without a span = %x, want nil", got)
	}
}

// Recording a call's metrics allocates nothing: the attribute sets are made
// once per step, result and tier.
func TestMetricsDoNotAllocate(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	obs := tracing.New(tracing.WithMeterProvider(mp))
	step := middleware.Wrap("fetch", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	observed := middleware.Wrap("fetch", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	ctx, q := context.Background(), query{"a", 1}
	step(ctx, q)
	observed(ctx, q)
	bare := testing.AllocsPerRun(100, func() { step(ctx, q) })
	with := testing.AllocsPerRun(100, func() { observed(ctx, q) })
	if with != bare {
		t.Fatalf("a hit allocates %v times with metrics, %v without", with, bare)
	}
}

// TestFollowsGlobalProviders installs global providers after the observer is
// made and checks that it follows them. Global providers cannot be
// uninstalled, so it runs in a process of its own.
func TestFollowsGlobalProviders(t *testing.T) {
	if os.Getenv("DOCKET_TRACING_GLOBAL") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFollowsGlobalProviders$", "-test.v")
		cmd.Env = append(os.Environ(), "DOCKET_TRACING_GLOBAL=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestFollowsGlobalProviders")) {
			t.Fatalf("in a process of its own: %v\n%s", err, out)
		}
		return
	}

	obs := tracing.New()
	var runs atomic.Int64
	step := middleware.Wrap("global", func(_ context.Context, q query) (string, error) {
		runs.Add(1)
		return q.User, nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	ctx := context.Background()
	if _, err := step(ctx, query{"a", 1}); err != nil {
		t.Fatal(err)
	}
	startNothing(t, obs, ctx)
	// Like passing otel.GetTracerProvider() explicitly: the global default,
	// which starts delegating when an SDK is installed.
	explicit := tracing.New(tracing.WithTracerProvider(otel.GetTracerProvider()))
	startNothing(t, explicit, ctx)

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer tp.Shutdown(ctx)
	defer mp.Shutdown(ctx)
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)

	if _, err := step(ctx, query{"a", 1}); err != nil {
		t.Fatal(err)
	}
	if _, span := explicit.Start(ctx, call); span == nil {
		t.Fatal("an observer given the global default provider does not follow it to the SDK")
	}
	ended := spans.Ended()
	if len(ended) != 1 || ended[0].Name() != "global" || attrs(ended[0])["docket.result"] != "hit" {
		t.Fatalf("ended spans = %v, want the hit", ended)
	}
	tm := &telemetry{reader: reader}
	wantMetrics(t, tm.metrics(t), map[string]float64{
		"docket.calls{result=hit,scope=global,step=global,tier=memory}": 1,
	})
}

// The zero Observer is New(): with no provider installed, it observes
// nothing.
func TestZeroObserver(t *testing.T) {
	var o tracing.Observer
	startNothing(t, &o, context.Background())
}
