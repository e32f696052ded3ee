package tracing_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/docket-go/docket/tracing"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type query struct {
	User  string
	Limit int
}

// telemetry is a real SDK pipeline that keeps what it is given: every ended
// span, and metrics read on demand.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	obs    *tracing.Observer
}

func newTelemetry(t testing.TB, opts ...sdktrace.TracerProviderOption) *telemetry {
	t.Helper()
	tm := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tm.tp = sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(tm.spans)}, opts...)...)
	tm.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tm.reader))
	tm.obs = tracing.New(tracing.WithTracerProvider(tm.tp), tracing.WithMeterProvider(tm.mp))
	t.Cleanup(func() {
		ctx := context.Background()
		if err := tm.tp.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := tm.mp.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return tm
}

// ended returns the ended spans named name, in the order they ended.
func (tm *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tm.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// only returns the one ended span named name.
func (tm *telemetry) only(t testing.TB, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := tm.ended(name)
	if len(spans) != 1 {
		t.Fatalf("%d spans named %q ended, want 1", len(spans), name)
	}
	return spans[0]
}

// attrs renders a span's attributes as key=value strings.
func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// wantAttrs checks that s has the attributes of want (a value "" means
// absent) and returns all of them.
func wantAttrs(t testing.TB, s sdktrace.ReadOnlySpan, want map[string]string) map[string]string {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		g, ok := got[k]
		if v == "" && ok {
			t.Errorf("span %s: attribute %s = %q, want it absent", s.Name(), k, g)
		} else if v != "" && g != v {
			t.Errorf("span %s: attribute %s = %q, want %q", s.Name(), k, g, v)
		}
	}
	if t.Failed() {
		t.Fatalf("all attributes: %v", got)
	}
	return got
}

// links renders a span's links as "kind:spanID".
func links(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, l := range s.Links() {
		kind := ""
		for _, kv := range l.Attributes {
			if kv.Key == tracing.LinkKindKey {
				kind = kv.Value.AsString()
			}
		}
		out = append(out, kind+":"+l.SpanContext.SpanID().String())
	}
	return out
}

// metrics collects the reader's metrics as "name{k=v,...}" → value: the sum
// of a counter, the count of a histogram.
func (tm *telemetry) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tracing.ScopeName || sm.Scope.Version != tracing.Version {
			t.Fatalf("metrics of scope %+v, want %s %s", sm.Scope, tracing.ScopeName, tracing.Version)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name+setString(p.Attributes)] += float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name+setString(p.Attributes)] += float64(p.Count)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[m.Name+setString(p.Attributes)] += float64(p.Count)
					out[m.Name+".sum"+setString(p.Attributes)] += float64(p.Sum)
				}
			default:
				t.Fatalf("metric %s has data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func setString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, strings.TrimPrefix(string(kv.Key), "docket.")+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// wantMetrics checks the named metric points (others may exist).
func wantMetrics(t testing.TB, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			var keys []string
			for k, v := range got {
				keys = append(keys, fmt.Sprintf("%s=%v", k, v))
			}
			sort.Strings(keys)
			t.Fatalf("metric %s = %v, want %v; have:\n%s", k, got[k], v, strings.Join(keys, "\n"))
		}
	}
}

// calls sums every docket.calls point of m.
func calls(m map[string]float64) float64 {
	n := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, tracing.CallsMetric+"{") {
			n += v
		}
	}
	return n
}
