// Command scope_comparison runs the same steps under scope.Workflow and
// scope.Global and prints, call by call, whether the step ran or its stored
// result was served. See README.md beside this file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scope_comparison:", err)
		os.Exit(1)
	}
}

// User is what the fetch_user step returns.
type User struct {
	Name string
}

// Dataset is the input of the processed_data step.
type Dataset struct {
	Source string
	Rows   int
}

// Processed is what the processed_data step returns.
type Processed struct {
	Rows int
}

// execNumKey carries the number of the demo execution, so that a step can
// say which execution it runs in. It is a context value, not part of the
// step's input, so it does not change the step's key: only the scope decides
// whether the execution takes part in the key.
type execNumKey struct{}

func withExecNum(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, execNumKey{}, n)
}

func execNum(ctx context.Context) int {
	n, _ := ctx.Value(execNumKey{}).(int)
	return n
}

// table is the summary the program ends with.
const table = `┌─────────────────────┬──────────────────┬──────────────────┐
│ Scenario            │ ScopeWorkflow    │ ScopeGlobal      │
├─────────────────────┼──────────────────┼──────────────────┤
│ Within execution    │ ✓ Deduplicated   │ ✓ Deduplicated   │
│ Across executions   │ ✗ Re-executes    │ ✓ Cached         │
│ Cache key includes  │ execution_id,    │ step_name,       │
│                     │ step_name,       │ version and      │
│                     │ version and      │ input hash       │
│                     │ input hash       │                  │
│ Use case            │ Temp results     │ Reusable results │
└─────────────────────┴──────────────────┴──────────────────┘
`

// run prints the whole comparison to w. It returns an error if a call fails
// or if a step ran a different number of times than the scope promises.
func run(w io.Writer) error {
	// One store serves every step: a Workflow key and a Global key of the
	// same step and input never collide, so the scopes can share it.
	store := memory.New(1_000)
	ctx := context.Background()
	var mismatches []error
	check := func(what string, got, want int64) {
		if got != want {
			mismatches = append(mismatches, fmt.Errorf("%s: step ran %d times, want %d", what, got, want))
		}
	}

	fmt.Fprintln(w, "=== Part 1: Multiple Executions ===")
	fmt.Fprintln(w)
	for _, sc := range []struct {
		s     scope.Scope
		name  string // Workflow, Global
		title string // the section's header
		tag   string // what the step prints when it runs
		want  int64  // how often the step must run in three executions
	}{
		{scope.Workflow, "Workflow", "--- ScopeWorkflow: Cache per execution ---", "[WORKFLOW SCOPE]", 3},
		{scope.Global, "Global", "--- ScopeGlobal: Cache across executions ---", "[GLOBAL SCOPE]", 1},
	} {
		var runs atomic.Int64
		fetchUser := middleware.Wrap("fetch_user",
			func(ctx context.Context, name string) (User, error) {
				runs.Add(1)
				fmt.Fprintf(w, "    %s Executing for user %s (execution #%d)\n", sc.tag, name, execNum(ctx))
				return User{Name: name}, nil
			},
			middleware.WithPersistence(store, sc.s, time.Hour))

		fmt.Fprintln(w, sc.title)
		fmt.Fprintln(w)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "  Execution #%d (%s Scope)\n", i, sc.name)
			ectx, exec := scope.Begin(withExecNum(ctx, i), fmt.Sprintf("%s-exec-%d", sc.s, i))
			before := runs.Load()
			_, err := fetchUser(ectx, "Alice")
			if runs.Load() == before && err == nil {
				fmt.Fprintln(w, "    [result from cache - no execution]")
			}
			// End(nil) drops this execution's Workflow entries; with an
			// error they would be kept so that a re-run could resume.
			if endErr := exec.End(err); err != nil || endErr != nil {
				return errors.Join(err, endErr)
			}
			fmt.Fprintln(w)
		}
		n := runs.Load()
		fmt.Fprintf(w, "%s Scope Executions: %d (expected: %d)\n", sc.name, n, sc.want)
		fmt.Fprintln(w)
		check("part 1, "+sc.s.String(), n, sc.want)
	}

	fmt.Fprintln(w, "=== Part 2: Within-Execution Deduplication ===")
	fmt.Fprintln(w)
	for _, sc := range []struct {
		s     scope.Scope
		title string
		name  string
	}{
		{scope.Workflow, "--- ScopeWorkflow: Within-execution deduplication ---", "Workflow"},
		{scope.Global, "--- ScopeGlobal: Within-execution deduplication ---", "Global"},
	} {
		var runs atomic.Int64
		processedData := middleware.Wrap("processed_data",
			func(ctx context.Context, d Dataset) (Processed, error) {
				runs.Add(1)
				return Processed{Rows: d.Rows}, nil
			},
			middleware.WithPersistence(store, sc.s, time.Hour))

		fmt.Fprintln(w, sc.title)
		fmt.Fprintln(w, "  Resolving ProcessedData 3 times in same execution:")
		ectx, exec := scope.Begin(ctx, fmt.Sprintf("%s-dedup", sc.s))
		var err error
		for i := 1; i <= 3 && err == nil; i++ {
			before := runs.Load()
			if _, err = processedData(ectx, Dataset{Source: "orders.csv", Rows: 1_000}); err == nil {
				status := "Done"
				if runs.Load() == before {
					status = "Done (cached)"
				}
				fmt.Fprintf(w, "    Resolve #%d: %s\n", i, status)
			}
		}
		if endErr := exec.End(err); err != nil || endErr != nil {
			return errors.Join(err, endErr)
		}
		n := runs.Load()
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  %s executions: %d (deduplicated within execution)\n", sc.name, n)
		fmt.Fprintln(w)
		check("part 2, "+sc.s.String(), n, 1)
	}

	fmt.Fprintln(w, "=== Comparison ===")
	fmt.Fprintln(w)
	fmt.Fprint(w, table)
	return errors.Join(mismatches...)
}
