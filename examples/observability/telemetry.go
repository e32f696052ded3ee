package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// telemetry is the program's OpenTelemetry pipeline: spans and metrics go to
// the stdout exporters or, when the standard environment variables name an
// OTLP endpoint, to it over OTLP/HTTP. Besides, every span is kept in memory
// and the metrics can be read on demand, for the summary the program prints.
type telemetry struct {
	tp *trace.TracerProvider
	mp *metric.MeterProvider

	spans   *tracetest.InMemoryExporter
	metrics *metric.ManualReader

	// Where the exporters send spans and metrics, for the report.
	tracesTo, metricsTo string
}

// otlpTraces and otlpMetrics report whether the environment asks for OTLP;
// the exporters read the variables (endpoint, headers, timeout, ...)
// themselves.
func otlpTraces() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

func otlpMetrics() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != ""
}

// newTelemetry sets up the pipeline; the stdout exporters write to w.
func newTelemetry(ctx context.Context, w io.Writer) (*telemetry, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("docket-observability-example")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	t := &telemetry{spans: tracetest.NewInMemoryExporter(), metrics: metric.NewManualReader()}

	var spanExp trace.SpanExporter
	if otlpTraces() {
		spanExp, err = otlptracehttp.New(ctx)
		t.tracesTo = "OTLP/HTTP"
	} else {
		spanExp, err = stdouttrace.New(stdouttrace.WithWriter(w))
		t.tracesTo = "stdout"
	}
	if err != nil {
		return nil, fmt.Errorf("span exporter: %w", err)
	}
	var metricExp metric.Exporter
	if otlpMetrics() {
		metricExp, err = otlpmetrichttp.New(ctx)
		t.metricsTo = "OTLP/HTTP"
	} else {
		metricExp, err = stdoutmetric.New(stdoutmetric.WithWriter(w))
		t.metricsTo = "stdout"
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("metric exporter: %w", err), spanExp.Shutdown(ctx))
	}

	t.tp = trace.NewTracerProvider(
		trace.WithResource(res),
		trace.WithBatcher(spanExp),
		trace.WithSyncer(t.spans))
	t.mp = metric.NewMeterProvider(
		metric.WithResource(res),
		metric.WithReader(metric.NewPeriodicReader(metricExp)),
		metric.WithReader(t.metrics))
	return t, nil
}

// shutdown flushes and stops both providers: the batched spans and the last
// metrics are exported now.
func (t *telemetry) shutdown(ctx context.Context) error {
	return errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}

// syncWriter serializes writes: the exporters write from their own
// goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
