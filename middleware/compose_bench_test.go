package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// BenchmarkComposedHit is a front-tier hit of a Global step alone and with
// Retry or Timeout around Persist (outside it, the layers a hit goes
// through; inside it, a hit never reaches them). Each variant has a store
// of its own, filled before the loop.
func BenchmarkComposedHit(b *testing.B) {
	qs := benchQueries()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fn := func(_ context.Context, q query) (string, error) { return q.User, nil }
	persist := func() middleware.Layer {
		return middleware.Persist[query, string]("fetch", middleware.WithPersistence(memory.New(2*benchKeys), scope.Global, time.Hour))
	}
	transient := func(err error) bool { return errors.Is(err, errUnavailable) }
	for _, v := range []struct {
		name   string
		layers []middleware.Layer
	}{
		{"persist", []middleware.Layer{persist()}},
		{"retry-outside", []middleware.Layer{middleware.Retry(transient), persist()}},
		{"timeout-outside", []middleware.Layer{middleware.Timeout(time.Second), persist()}},
		{"retry-timeout-inside", []middleware.Layer{persist(), middleware.Retry(transient), middleware.Timeout(time.Second)}},
	} {
		step := middleware.Apply(fn, v.layers...)
		for _, q := range qs {
			if _, err := step(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := step(ctx, qs[i%benchKeys]); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}
