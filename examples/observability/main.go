// Command observability runs a small trip-planning pipeline made persistent
// with Docket and traced with package tracing. It exports spans and metrics
// with the stdout exporters, or over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT
// (or a signal's own endpoint variable) is set, and ends with the span tree
// and the call counts. See README.md beside this file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
	"github.com/docket-go/docket/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

// Point is where a city is.
type Point struct {
	Lat, Lon float64
}

// Place is the input of the forecast step.
type Place struct {
	City string
	At   Point
}

// Forecast is what the forecast step returns.
type Forecast struct {
	City  string
	TempC float64
	Sky   string
}

var cities = map[string]Point{
	"Paris": {48.8566, 2.3522},
	"Oslo":  {59.9139, 10.7522},
}

// pipeline is the program's two persisted steps, with the tracer their
// bodies start their own spans with.
type pipeline struct {
	geocode  middleware.Step[string, Point]
	forecast middleware.Step[Place, Forecast]
}

// newPipeline wraps the steps over store. geocode is Global: a city's place
// does not change between trips, so every execution shares it. forecast is
// Workflow: one trip's forecast is checkpointed for that trip only.
func newPipeline(store backends.Store, obs *tracing.Observer, tracer trace.Tracer) pipeline {
	geocode := func(ctx context.Context, city string) (Point, error) {
		// The step's own span nests under the call's span.
		ctx, span := tracer.Start(ctx, "geocoder.lookup", trace.WithAttributes(attribute.String("city", city)))
		defer span.End()
		select {
		case <-time.After(150 * time.Millisecond): // a slow upstream API
		case <-ctx.Done():
			return Point{}, ctx.Err()
		}
		p, ok := cities[city]
		if !ok {
			return Point{}, fmt.Errorf("geocoder: unknown city %q", city)
		}
		return p, nil
	}
	forecast := func(ctx context.Context, p Place) (Forecast, error) {
		_, span := tracer.Start(ctx, "weather.fetch", trace.WithAttributes(attribute.String("city", p.City)))
		defer span.End()
		return Forecast{City: p.City, TempC: 12 + p.At.Lat/10, Sky: "clear"}, nil
	}
	return pipeline{
		geocode: middleware.Wrap("geocode", geocode,
			middleware.WithPersistence(store, scope.Global, 24*time.Hour), middleware.WithObserver(obs)),
		forecast: middleware.Wrap("forecast", forecast,
			middleware.WithPersistence(store, scope.Workflow, time.Hour), middleware.WithObserver(obs)),
	}
}

// trip plans a trip to city: geocode, then forecast.
func (p pipeline) trip(ctx context.Context, city string) (Forecast, error) {
	at, err := p.geocode(ctx, city)
	if err != nil {
		return Forecast{}, err
	}
	return p.forecast(ctx, Place{City: city, At: at})
}

// execution runs body as execution id, under a root span named after it,
// and ends the execution with body's error.
func execution(ctx context.Context, tracer trace.Tracer, id string, body func(context.Context) error) error {
	ctx, span := tracer.Start(ctx, "execution "+id)
	defer span.End()
	ctx, exec := scope.Begin(ctx, id)
	err := body(ctx)
	// With the root span's context, the purge is an event on it.
	return errors.Join(err, exec.EndContext(ctx, err))
}

func run(ctx context.Context, w io.Writer) (err error) {
	w = &syncWriter{w: w}
	tel, err := newTelemetry(ctx, w)
	if err != nil {
		return err
	}
	defer func() {
		if tel != nil {
			err = errors.Join(err, tel.shutdown(context.WithoutCancel(ctx)))
		}
	}()
	obs := tracing.New(tracing.WithTracerProvider(tel.tp), tracing.WithMeterProvider(tel.mp))
	tracer := tel.tp.Tracer("github.com/docket-go/docket/examples/observability")

	dir, err := os.MkdirTemp("", "docket-observability-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The first process: a memory front before Badger.
	db, err := badger.Open(dir)
	if err != nil {
		return err
	}
	p := newPipeline(backends.Tiered(memory.New(1000), db), obs, tracer)
	err = execution(ctx, tracer, "trip-1", func(ctx context.Context) error {
		// A miss of each step.
		if _, err := p.trip(ctx, "Paris"); err != nil {
			return err
		}
		// Two concurrent calls for Oslo: the second waits on the first's
		// flight (shared) instead of calling the geocoder again.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = p.geocode(ctx, "Oslo")
			}()
			time.Sleep(20 * time.Millisecond)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		// Hits: both results are in the memory front now.
		_, err := p.trip(ctx, "Paris")
		return err
	})
	if err := errors.Join(err, db.Close()); err != nil {
		return err
	}

	// A second process, after a restart: a fresh memory front, the same
	// Badger directory. The Global geocode result is found in Badger, and
	// its span links to the span of the first process's run.
	db, err = badger.Open(dir)
	if err != nil {
		return err
	}
	p = newPipeline(backends.Tiered(memory.New(1000), db), obs, tracer)
	err = execution(ctx, tracer, "trip-2", func(ctx context.Context) error {
		_, err := p.trip(ctx, "Paris")
		return err
	})
	if err := errors.Join(err, db.Close()); err != nil {
		return err
	}

	// Everything has ended: the summary is read before shutdown, which
	// exports what is batched.
	summary, err := report(ctx, tel)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "== exported: spans to %s, metrics to %s ==\n", tel.tracesTo, tel.metricsTo)
	err = tel.shutdown(context.WithoutCancel(ctx))
	tel = nil
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, summary)
	return err
}
