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

// An order's workflow sends its confirmation once, however often it is run:
// the first run ends with End(nil) but keeps its results for a day, so a
// re-run of the same execution ID (a retried request, a redelivered
// message) replays them instead of sending a second email.
func ExampleWithRetention() {
	store := memory.New(1000)
	sent := 0
	sendEmail := middleware.Wrap("send_email", func(_ context.Context, to string) (string, error) {
		sent++
		return fmt.Sprintf("message %d to %s", sent, to), nil
	}, middleware.WithPersistence(store, scope.Workflow, 7*24*time.Hour))

	placeOrder := func(id string) string {
		ctx, exec := scope.Begin(context.Background(), id, scope.WithRetention(24*time.Hour))
		msg, err := sendEmail(ctx, "ann@example.com")
		exec.End(err)
		return msg
	}
	fmt.Println(placeOrder("order-42"))
	fmt.Println(placeOrder("order-42")) // the re-run replays the first run
	fmt.Println("emails sent:", sent)
	// Output:
	// message 1 to ann@example.com
	// message 1 to ann@example.com
	// emails sent: 1
}
