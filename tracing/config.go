package tracing

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// config holds every setting, with the defaults of newConfig.
type config struct {
	// Nil means the global provider, looked up when the observer is first
	// used and again whenever otel.SetTracerProvider or
	// otel.SetMeterProvider replace it.
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
}

// Option configures New.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithTracerProvider makes the observer start its spans with a tracer from
// tp. Without it (or with nil), it uses the global provider
// (otel.GetTracerProvider), and follows it when otel.SetTracerProvider
// replaces it later.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMeterProvider makes the observer record its metrics with a meter from
// mp. Without it (or with nil), it uses the global provider
// (otel.GetMeterProvider), and follows it when otel.SetMeterProvider
// replaces it later.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}
