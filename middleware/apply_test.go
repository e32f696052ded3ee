package middleware_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func TestApplyOrder(t *testing.T) {
	var trace []string
	typed := func(name string) middleware.Middleware[int, string] {
		return func(next middleware.Step[int, string]) middleware.Step[int, string] {
			return func(ctx context.Context, in int) (string, error) {
				trace = append(trace, name)
				return next(ctx, in)
			}
		}
	}
	untyped := func(name string) middleware.Around {
		return func(ctx context.Context, call func(context.Context) error) error {
			trace = append(trace, name)
			return call(ctx)
		}
	}
	step := middleware.Apply(func(_ context.Context, n int) (string, error) {
		trace = append(trace, "step")
		return fmt.Sprint(n), nil
	}, untyped("a"), typed("b"), untyped("c"), typed("d"))
	out, err := step(context.Background(), 7)
	if err != nil || out != "7" {
		t.Fatalf("got %q, %v", out, err)
	}
	if got := strings.Join(trace, " "); got != "a b c d step" {
		t.Fatalf("layers ran as %q, want the first outermost: a b c d step", got)
	}
}

// TestApplyMatchesChain: Apply(step, a, b) is Chain(a, b)(step).
func TestApplyMatchesChain(t *testing.T) {
	var runs int
	fn := func(_ context.Context, n int) (int, error) { runs++; return 2 * n, nil }
	persist := func() middleware.Middleware[int, int] {
		return middleware.Persist[int, int]("double", middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	}
	for name, step := range map[string]middleware.Step[int, int]{
		"Apply": middleware.Apply(fn, persist()),
		"Chain": middleware.Chain(persist())(fn),
	} {
		runs = 0
		for range 3 {
			if n, err := step(context.Background(), 21); err != nil || n != 42 {
				t.Fatalf("%s: got %d, %v", name, n, err)
			}
		}
		if runs != 1 {
			t.Fatalf("%s: step ran %d times, want 1", name, runs)
		}
	}
}

func TestApplyPanicsOnLayersThatCannotFit(t *testing.T) {
	fn := func(_ context.Context, n int) (int, error) { return n, nil }
	tests := []struct {
		name  string
		apply func()
		want  string
	}{
		{"other types", func() {
			middleware.Apply(fn, middleware.Persist[string, int]("x", middleware.WithPersistence(memory.New(10), scope.Global, time.Hour)))
		}, "layer 0 is a middleware.Middleware[string,int], which does not fit a step of type middleware.Step[int,int]"},
		{"nil layer", func() { middleware.Apply(fn, middleware.Timeout(time.Second), nil) }, "layer 1 is nil"},
		{"nil Middleware", func() { middleware.Apply(fn, middleware.Middleware[int, int](nil)) }, "layer 0 is a nil Middleware"},
		{"nil Around", func() { middleware.Apply(fn, middleware.Around(nil)) }, "layer 0 is a nil Around"},
		{"nil step", func() { middleware.Apply[int, int](nil) }, "non-nil step"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Fatalf("recovered %v, want a panic mentioning %q", r, tt.want)
				}
			}()
			tt.apply()
		})
	}
}

// TestApplyAroundWrapNeedsNoTypeArguments: the chain of ExampleApply, built
// by nesting Wrap and Apply, each inferring the types from its step.
func TestApplyAroundWrapNeedsNoTypeArguments(t *testing.T) {
	runs := 0
	fn := func(_ context.Context, n int) (int, error) {
		if runs++; runs == 1 {
			return 0, errUnavailable
		}
		return 2 * n, nil
	}
	step := middleware.Apply(
		middleware.Wrap("double",
			middleware.Apply(fn, middleware.Retry(isUnavailable, fast), middleware.Timeout(time.Second)),
			middleware.WithPersistence(memory.New(10), scope.Global, time.Hour)),
		middleware.Timeout(5*time.Second))
	for range 2 {
		if n, err := step(context.Background(), 21); err != nil || n != 42 {
			t.Fatalf("got %d, %v", n, err)
		}
	}
	if runs != 2 {
		t.Fatalf("step ran %d times, want 2: one failure retried inside Persist, then a hit", runs)
	}
}
