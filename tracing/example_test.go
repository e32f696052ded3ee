package tracing_test

import (
	"context"
	"fmt"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
	"github.com/docket-go/docket/tracing"
)

func ExampleNew() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	// Without WithTracerProvider, the observer uses the global provider.
	obs := tracing.New(tracing.WithTracerProvider(tp))
	greet := middleware.Wrap("greet", func(_ context.Context, name string) (string, error) {
		return "hello, " + name, nil
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour), middleware.WithObserver(obs))

	ctx := context.Background()
	greet(ctx, "ada")
	greet(ctx, "ada")

	for _, s := range spans.Ended() {
		fmt.Print(s.Name())
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case tracing.ResultKey, tracing.TierKey, tracing.MissReasonKey:
				fmt.Printf(" %s=%s", kv.Key, kv.Value.String())
			}
		}
		fmt.Printf(" links=%d\n", len(s.Links()))
	}
	// Output:
	// greet docket.result=miss docket.miss_reason=absent links=0
	// greet docket.result=hit docket.tier=memory links=1
}
