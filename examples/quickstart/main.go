// Command quickstart makes a step persistent: it runs once per input, and
// every other call gets the stored result.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// A step is any func(ctx, In) (Out, error); these stand for slow calls.
	forecast := func(_ context.Context, city string) (int, error) {
		fmt.Fprintln(w, "  forecast runs for", city)
		return 14 + len(city), nil
	}
	plan := func(_ context.Context, city string) (string, error) {
		fmt.Fprintln(w, "  plan runs for", city)
		return "a day in " + city, nil
	}
	store := memory.New(1000) // in-process LRU; backends.Tiered(it, badger) survives restarts

	// Global: one result per input, shared by every execution until its TTL.
	tempC := middleware.Wrap("forecast", forecast, middleware.WithPersistence(store, scope.Global, time.Hour))
	// Workflow: one result per input and execution, a checkpoint to resume from.
	planned := middleware.Wrap("plan", plan, middleware.WithPersistence(store, scope.Workflow, time.Hour))

	for _, id := range []string{"trip-1", "trip-2"} {
		ctx, exec := scope.Begin(ctx, id) // the execution's ID travels in ctx
		fmt.Fprintln(w, id)
		for range 2 {
			t, err := tempC(ctx, "Paris")
			if err != nil {
				return err // no End(nil): a re-run with this ID resumes
			}
			p, err := planned(ctx, "Paris")
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  %s, %d°C\n", p, t)
		}
		exec.End(nil) // done: drop this execution's Workflow entries
	}
	return nil
}
