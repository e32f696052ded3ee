package scope_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func ExampleBegin() {
	store := memory.New(1000)
	runs := 0
	normalize := middleware.Wrap("normalize", func(_ context.Context, s string) (string, error) {
		runs++
		return s + "!", nil
	}, middleware.WithPersistence(store, scope.Workflow, time.Hour))

	ctx, exec := scope.Begin(context.Background(), "exec_12345")
	id, _ := scope.ExecutionID(ctx)
	fmt.Println("execution", id)
	for i := 0; i < 3; i++ {
		normalize(ctx, "hello") // deduplicated within the execution
	}
	fmt.Println("runs:", runs, "entries:", store.Len())

	exec.End(nil) // success: the execution's Workflow entries are dropped
	fmt.Println("entries after End(nil):", store.Len())

	_, err := normalize(context.Background(), "hello")
	fmt.Println(errors.Is(err, scope.ErrNoExecution))
	// Output:
	// execution exec_12345
	// runs: 1 entries: 1
	// entries after End(nil): 0
	// true
}
