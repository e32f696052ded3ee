package tracing_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
	"github.com/docket-go/docket/tracing"
)

const benchKeys = 10_000

func benchQueries() []query {
	qs := make([]query, benchKeys)
	for i := range qs {
		qs[i] = query{User: fmt.Sprintf("user%05d", i), Limit: i % 100}
	}
	return qs
}

// benchStep is a wrapped Global step on a memory store with room for twice
// the keys, holding the results of every query.
func benchStep(b *testing.B, qs []query, opts ...middleware.Option) middleware.Step[query, string] {
	step := middleware.Wrap("fetch", func(_ context.Context, q query) (string, error) { return q.User, nil },
		append([]middleware.Option{middleware.WithPersistence(memory.New(2*benchKeys), scope.Global, time.Hour)}, opts...)...)
	for _, q := range qs {
		if _, err := step(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
	return step
}

// BenchmarkHit is a front-tier hit of a wrapped Global step over 10k keys
// (the memory store has room for twice as many, so nothing is evicted):
//
//	0-bare:              no observer
//	a-global-default:    tracing.New() with no provider installed
//	b-sdk-never-sample:  the SDK tracer with sdktrace.NeverSample()
//	c-sdk-always-batch:  the SDK tracer sampling every span, batched to an
//	                     exporter that discards them
//	c2-...-stdout:       the same, exported as JSON by stdouttrace to
//	                     io.Discard: what a real exporter adds, on the
//	                     batch processor's goroutine
//	d-sdk-metrics:       the SDK meter (manual reader), no tracer provider
//
// The entries are made by the same step, so in c every hit also links to
// the span that produced its entry.
func BenchmarkHit(b *testing.B) {
	qs := benchQueries()
	ctx := context.Background()
	bench := func(b *testing.B, opts ...middleware.Option) {
		step := benchStep(b, qs, opts...)
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if _, err := step(ctx, qs[i%benchKeys]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	shutdown := func(b *testing.B, f func(context.Context) error) {
		b.Cleanup(func() {
			if err := f(ctx); err != nil {
				b.Error(err)
			}
		})
	}

	b.Run("0-bare", func(b *testing.B) { bench(b) })
	b.Run("a-global-default", func(b *testing.B) {
		bench(b, middleware.WithObserver(tracing.New()))
	})
	b.Run("b-sdk-never-sample", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		shutdown(b, tp.Shutdown)
		bench(b, middleware.WithObserver(tracing.New(tracing.WithTracerProvider(tp))))
	})
	always := func(b *testing.B, exp sdktrace.SpanExporter) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(exp))
		shutdown(b, tp.Shutdown)
		bench(b, middleware.WithObserver(tracing.New(tracing.WithTracerProvider(tp))))
	}
	b.Run("c-sdk-always-batch", func(b *testing.B) { always(b, discardExporter{}) })
	b.Run("c2-sdk-always-batch-stdout", func(b *testing.B) {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(io.Discard))
		if err != nil {
			b.Fatal(err)
		}
		always(b, exp)
	})
	b.Run("d-sdk-metrics", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		shutdown(b, mp.Shutdown)
		bench(b, middleware.WithObserver(tracing.New(tracing.WithMeterProvider(mp))))
	})
}

// BenchmarkTracedOverhead compares a traced hit (c-sdk-always-batch) with
// its floor, interleaved like BenchmarkNoProviderOverhead: an untraced hit
// followed by one span made directly with the same SDK, carrying the same
// attributes and link. Their difference is what the observer adds to what
// the SDK costs anyway. It reports the medians of ns per hit for each and of
// their ratio (x-floor).
func BenchmarkTracedOverhead(b *testing.B) {
	const chunk = 128
	qs := benchQueries()
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discardExporter{}))
	defer tp.Shutdown(ctx)
	bare := benchStep(b, qs)
	traced := benchStep(b, qs, middleware.WithObserver(tracing.New(tracing.WithTracerProvider(tp))))

	tracer := tp.Tracer("floor")
	start := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(tracing.StepKey.String("fetch"), tracing.ScopeKey.String("global"))}
	producer := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{1}, SpanID: [8]byte{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	linkAttrs := []attribute.KeyValue{tracing.LinkKindKey.String(tracing.LinkProducer)}
	i := 0
	floor := func() time.Duration {
		t := time.Now()
		for range chunk {
			if _, err := bare(ctx, qs[i%benchKeys]); err != nil {
				b.Fatal(err)
			}
			i++
			_, span := tracer.Start(ctx, "fetch", start...)
			span.SetAttributes(tracing.ResultKey.String("hit"), tracing.TierKey.String("memory"), tracing.KeyHashKey.String("0123456789abcdef"))
			span.AddLink(trace.Link{SpanContext: producer, Attributes: linkAttrs})
			span.End()
		}
		return time.Since(t)
	}
	hits := func() time.Duration {
		t := time.Now()
		for range chunk {
			if _, err := traced(ctx, qs[i%benchKeys]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return time.Since(t)
	}
	var floorNs, tracedNs, ratios []float64
	for b.Loop() {
		tf := floor()
		tt := hits() + hits()
		tf += floor()
		floorNs = append(floorNs, float64(tf.Nanoseconds())/(2*chunk))
		tracedNs = append(tracedNs, float64(tt.Nanoseconds())/(2*chunk))
		ratios = append(ratios, float64(tt)/float64(tf))
	}
	b.ReportMetric(median(floorNs), "floor-ns/hit")
	b.ReportMetric(median(tracedNs), "traced-ns/hit")
	b.ReportMetric(median(ratios), "x-floor")
}

// discardExporter drops every span it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkStartNoProvider is what the observer adds to every call when no
// provider is installed: Start deciding there is nothing to record.
func BenchmarkStartNoProvider(b *testing.B) {
	obs := tracing.New()
	ctx := context.Background()
	info := middleware.CallInfo{Step: "fetch", Scope: scope.Global}
	obs.Start(ctx, info)
	b.ReportAllocs()
	for b.Loop() {
		if _, span := obs.Start(ctx, info); span != nil {
			b.Fatal("a span")
		}
	}
}

// BenchmarkNoProviderOverhead measures what tracing.New() with no provider
// installed adds to a front-tier hit, robustly on a shared, noisy machine.
// Each iteration times chunks of hits of three steps, each on its own store:
// bare (no observer), observed (tracing.New()) and control (no observer
// either), in the order bare, observed, control, control, observed, bare, so
// that a change of load during the iteration weighs on all alike. It reports
// the medians over the iterations of ns per hit and of the ratios to bare:
// x-bare for the observer (target: at most 1.10) and x-bare-control, which
// is what merely being another store of 10k entries elsewhere in memory
// costs. ns/op is the time of one iteration (6 chunks).
func BenchmarkNoProviderOverhead(b *testing.B) {
	const chunk = 256
	qs := benchQueries()
	ctx := context.Background()
	bare := benchStep(b, qs)
	observed := benchStep(b, qs, middleware.WithObserver(tracing.New()))
	control := benchStep(b, qs)
	i := 0
	hits := func(step middleware.Step[query, string]) time.Duration {
		start := time.Now()
		for range chunk {
			if _, err := step(ctx, qs[i%benchKeys]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		return time.Since(start)
	}
	var bareNs, obsNs, ratios, controls []float64
	for b.Loop() {
		tb := hits(bare)
		to := hits(observed)
		tc := hits(control) + hits(control)
		to += hits(observed)
		tb += hits(bare)
		bareNs = append(bareNs, float64(tb.Nanoseconds())/(2*chunk))
		obsNs = append(obsNs, float64(to.Nanoseconds())/(2*chunk))
		ratios = append(ratios, float64(to)/float64(tb))
		controls = append(controls, float64(tc)/float64(tb))
	}
	b.ReportMetric(median(bareNs), "bare-ns/hit")
	b.ReportMetric(median(obsNs), "observed-ns/hit")
	b.ReportMetric(median(ratios), "x-bare")
	b.ReportMetric(median(controls), "x-bare-control")
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}
