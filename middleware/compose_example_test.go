package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

var errBusy = errors.New("rate service busy")

// The order of the layers decides what each one covers. Outermost, a
// Timeout bounds how long this caller waits, also on another caller's
// flight; Persist does not hand its caller's deadline to the step, so this
// one bounds the caller only. Inside Persist, Retry runs in the key's flight:
// one retry loop per key, shared by every caller waiting on it, and only
// its final result is stored. Innermost, a Timeout bounds each attempt, so
// an attempt that hangs is cut off and retried.
func ExampleApply() {
	attempts := 0
	fetchRate := func(ctx context.Context, pair string) (float64, error) {
		attempts++
		fmt.Println("attempt", attempts)
		switch attempts {
		case 1:
			<-ctx.Done() // hangs until the per-attempt timeout
			return 0, ctx.Err()
		case 2:
			return 0, errBusy
		}
		return 1.08, nil
	}
	transient := func(err error) bool {
		return errors.Is(err, errBusy) || errors.Is(err, middleware.ErrTimeout)
	}
	rate := middleware.Apply(fetchRate, // In and Out inferred from fetchRate
		middleware.Timeout(5*time.Second), // per caller, overall
		middleware.Persist[string, float64]("fx_rate",
			middleware.WithPersistence(memory.New(100), scope.Global, time.Minute)),
		middleware.Retry(transient, middleware.Backoff(time.Millisecond, 10*time.Millisecond)),
		middleware.Timeout(50*time.Millisecond), // per attempt
	)
	for range 2 {
		r, err := rate(context.Background(), "EURUSD")
		fmt.Println(r, err)
	}
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// 1.08 <nil>
	// 1.08 <nil>
}

// Retry outside Persist retries the call, which finds nothing stored (failures
// are not stored) and runs the step again, so every caller retries on its
// own schedule. That is the place to retry what Persist itself may return,
// such as a strict step's store faults.
func ExampleRetry() {
	calls := 0
	charge := func(_ context.Context, cents int) (string, error) {
		calls++
		if calls == 1 {
			return "", fmt.Errorf("payments: %w", errBusy)
		}
		return fmt.Sprintf("charged %d", cents), nil
	}
	transient := func(err error) bool {
		return errors.Is(err, errBusy) || errors.Is(err, middleware.ErrStore)
	}
	step := middleware.Apply(charge,
		middleware.Retry(transient,
			middleware.MaxAttempts(4),
			middleware.Backoff(time.Millisecond, 10*time.Millisecond),
			middleware.OnRetry(func(attempt int, err error, _ time.Duration) {
				fmt.Printf("attempt %d failed: %v\n", attempt, err)
			})),
		middleware.Persist[int, string]("charge",
			middleware.WithPersistence(memory.New(100), scope.Global, 24*time.Hour), middleware.WithStrict()),
	)
	out, err := step(context.Background(), 500)
	fmt.Println(out, err)
	// Output:
	// attempt 1 failed: payments: rate service busy
	// charged 500 <nil>
}
