package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

var (
	errUnavailable = errors.New("upstream unavailable")
	errInvalid     = errors.New("invalid input")
)

func isUnavailable(err error) bool { return errors.Is(err, errUnavailable) }

// fast keeps the waits of tests short.
var fast = middleware.Backoff(time.Millisecond, 4*time.Millisecond)

// failsThen returns a step that fails with errs[i] on its run i (counted from
// 0) and answers "ok" once they run out.
func failsThen(runs *atomic.Int64, errs ...error) func(context.Context, string) (string, error) {
	return func(_ context.Context, in string) (string, error) {
		n := runs.Add(1)
		if int(n) <= len(errs) {
			return "", errs[n-1]
		}
		return "ok:" + in, nil
	}
}

func TestRetry(t *testing.T) {
	timeout := fmt.Errorf("%w after 1s: %w", middleware.ErrTimeout, context.DeadlineExceeded)
	anything := func(error) bool { return true }
	tests := []struct {
		name      string
		transient func(error) bool
		attempts  int
		errs      []error // what the runs fail with, in turn
		wantRuns  int64
		wantErr   error // nil: the call succeeds
	}{
		{"transient errors are retried", isUnavailable, 3, []error{errUnavailable, errUnavailable}, 3, nil},
		{"other errors are not", isUnavailable, 3, []error{errInvalid}, 1, errInvalid},
		{"the last error is returned unchanged", isUnavailable, 3, []error{errUnavailable, errUnavailable, errUnavailable}, 3, errUnavailable},
		{"one attempt is no retry", isUnavailable, 1, []error{errUnavailable}, 1, errUnavailable},
		{"context.Canceled never", anything, 3, []error{fmt.Errorf("read: %w", context.Canceled)}, 1, context.Canceled},
		{"context.DeadlineExceeded never", anything, 3, []error{context.DeadlineExceeded}, 1, context.DeadlineExceeded},
		{"ErrGoexit never", anything, 3, []error{middleware.ErrGoexit}, 1, middleware.ErrGoexit},
		{"a returned PanicError never", anything, 3, []error{&middleware.PanicError{Value: "boom"}}, 1, &middleware.PanicError{}},
		{"an inner Timeout's cut-off as transient says", anything, 3, []error{timeout}, 2, nil},
		{"an inner Timeout's cut-off, not transient", isUnavailable, 3, []error{timeout}, 1, middleware.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			step := middleware.Apply(failsThen(&runs, tt.errs...),
				middleware.Retry(tt.transient, middleware.MaxAttempts(tt.attempts), fast))
			out, err := step(context.Background(), "a")
			if runs.Load() != tt.wantRuns {
				t.Errorf("step ran %d times, want %d", runs.Load(), tt.wantRuns)
			}
			switch pe := (*middleware.PanicError)(nil); {
			case tt.wantErr == nil:
				if err != nil || out != "ok:a" {
					t.Fatalf("got %q, %v; want ok:a", out, err)
				}
			case errors.As(tt.wantErr, &pe):
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a *PanicError", err)
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestRetryNeverRetriesAPanic(t *testing.T) {
	var runs atomic.Int64
	step := middleware.Apply(func(context.Context, string) (string, error) {
		runs.Add(1)
		panic("boom")
	}, middleware.Retry(func(error) bool { return true }, fast))
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the step's panic", r)
			}
		}()
		_, _ = step(context.Background(), "a")
	}()
	if runs.Load() != 1 {
		t.Fatalf("step ran %d times, want 1", runs.Load())
	}
}

func TestRetryBackoff(t *testing.T) {
	var waits []time.Duration
	var runs atomic.Int64
	errs := make([]error, 7)
	for i := range errs {
		errs[i] = errUnavailable
	}
	step := middleware.Apply(failsThen(&runs, errs...), middleware.Retry(isUnavailable,
		middleware.MaxAttempts(8),
		middleware.Backoff(time.Millisecond, 10*time.Millisecond),
		middleware.OnRetry(func(attempt int, err error, wait time.Duration) {
			if attempt != len(waits)+1 || !errors.Is(err, errUnavailable) {
				t.Errorf("OnRetry(%d, %v), want attempt %d", attempt, err, len(waits)+1)
			}
			waits = append(waits, wait)
		})))
	start := time.Now()
	if _, err := step(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// Exponential from 1 ms, capped at 10 ms; each wait in the upper half.
	ceilings := []time.Duration{1, 2, 4, 8, 10, 10, 10}
	if len(waits) != len(ceilings) {
		t.Fatalf("%d waits, want %d", len(waits), len(ceilings))
	}
	var sum time.Duration
	for i, c := range ceilings {
		c *= time.Millisecond
		if waits[i] < c/2 || waits[i] > c {
			t.Errorf("wait %d = %v, want within [%v, %v]", i+1, waits[i], c/2, c)
		}
		sum += waits[i]
	}
	if elapsed < sum {
		t.Errorf("the call took %v, less than its waits (%v)", elapsed, sum)
	}
}

func TestRetryJitterSpreadsWaits(t *testing.T) {
	seen := map[time.Duration]bool{}
	r := middleware.Retry(isUnavailable, middleware.MaxAttempts(2), middleware.Backoff(time.Millisecond, time.Millisecond),
		middleware.OnRetry(func(_ int, _ error, wait time.Duration) { seen[wait] = true }))
	for range 20 {
		_ = r(context.Background(), func(context.Context) error { return errUnavailable })
	}
	if len(seen) < 2 {
		t.Fatalf("20 retries waited %v: no jitter", seen)
	}
}

func TestRetryHonoursContextWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var runs atomic.Int64
	step := middleware.Apply(failsThen(&runs, errUnavailable, errUnavailable),
		middleware.Retry(isUnavailable, middleware.Backoff(time.Hour, time.Hour),
			middleware.OnRetry(func(int, error, time.Duration) { cancel() })))
	start := time.Now()
	_, err := step(ctx, "a")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errUnavailable) {
		t.Fatalf("err = %v, want context.Canceled and the last attempt's error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("returned after %v: the wait did not end with ctx", d)
	}
	if runs.Load() != 1 {
		t.Fatalf("step ran %d times, want 1", runs.Load())
	}
}

func TestRetryConstructionPanics(t *testing.T) {
	tests := []struct {
		name string
		make func()
		want string
	}{
		{"nil classifier", func() { middleware.Retry(nil) }, "classifier"},
		{"no attempts", func() { middleware.Retry(isUnavailable, middleware.MaxAttempts(0)) }, "MaxAttempts(0)"},
		{"zero backoff", func() { middleware.Retry(isUnavailable, middleware.Backoff(0, time.Second)) }, "Backoff(0s, 1s)"},
		{"max below initial", func() { middleware.Retry(isUnavailable, middleware.Backoff(time.Second, time.Millisecond)) }, "initial <= max"},
		{"zero timeout", func() { middleware.Timeout(0) }, "Timeout(0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Fatalf("recovered %v, want a panic mentioning %q", r, tt.want)
				}
			}()
			tt.make()
		})
	}
}

// TestRetryAroundPersist shows what each order retries: inside Persist one
// retry loop runs in the key's flight for all its callers, and only its
// final result is stored; outside Persist each caller retries on its own,
// and a retry is a new call, which finds nothing stored and runs the step.
func TestRetryAroundPersist(t *testing.T) {
	for _, inside := range []bool{true, false} {
		name := map[bool]string{true: "inside", false: "outside"}[inside]
		t.Run(name, func(t *testing.T) {
			var runs atomic.Int64
			store := memory.New(100)
			persist := middleware.Persist[string, string]("fetch", middleware.WithPersistence(store, scope.Global, time.Hour))
			retry := middleware.Retry(isUnavailable, fast)
			layers := []middleware.Layer{retry, persist}
			if inside {
				layers = []middleware.Layer{persist, retry}
			}
			step := middleware.Apply(failsThen(&runs, errUnavailable, errUnavailable), layers...)
			for range 2 {
				if out, err := step(context.Background(), "a"); err != nil || out != "ok:a" {
					t.Fatalf("got %q, %v", out, err)
				}
			}
			if runs.Load() != 3 {
				t.Fatalf("step ran %d times, want 3 (two failures, one success, then a hit)", runs.Load())
			}
		})
	}
}

// TestRetryInsidePersistIsShared: concurrent callers of a key wait on one
// flight, whose retries they share: the attempts do not multiply by the
// callers.
func TestRetryInsidePersistIsShared(t *testing.T) {
	var runs, retries atomic.Int64
	release := make(chan struct{})
	step := middleware.Apply(func(ctx context.Context, in string) (string, error) {
		if runs.Add(1) == 1 {
			<-release // every caller joins this flight before it fails
			return "", errUnavailable
		}
		return "ok:" + in, nil
	},
		middleware.Persist[string, string]("fetch", middleware.WithPersistence(memory.New(100), scope.Global, time.Hour)),
		middleware.Retry(isUnavailable, fast, middleware.OnRetry(func(int, error, time.Duration) { retries.Add(1) })))
	const callers = 50
	var started, done sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			out, err := step(context.Background(), "a")
			if err == nil && out != "ok:a" {
				err = fmt.Errorf("got %q", out)
			}
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let the callers reach the flight
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if runs.Load() != 2 {
		t.Fatalf("step ran %d times for %d callers, want 2 (one failure, one retry)", runs.Load(), callers)
	}
	if retries.Load() != 1 {
		t.Fatalf("%d retries for %d callers, want 1: the callers share the flight's", retries.Load(), callers)
	}
}

// TestRetryInsidePersistStopsWhenCallersLeave: the flight's retries wait on
// the step's context, which is cancelled once every caller has gone, so an
// abandoned flight stops retrying (and goleak sees no goroutine left).
func TestRetryInsidePersistStopsWhenCallersLeave(t *testing.T) {
	var runs atomic.Int64
	waiting := make(chan struct{})
	stopped := make(chan error, 1)
	step := middleware.Apply(failsThen(&runs, errUnavailable, errUnavailable),
		middleware.Persist[string, string]("fetch", middleware.WithPersistence(memory.New(100), scope.Global, time.Hour)),
		middleware.Around(func(ctx context.Context, call func(context.Context) error) error {
			err := call(ctx)
			stopped <- err
			return err
		}),
		middleware.Retry(isUnavailable, middleware.Backoff(time.Hour, time.Hour),
			middleware.OnRetry(func(int, error, time.Duration) { close(waiting) })))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-waiting
		cancel()
	}()
	if _, err := step(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errUnavailable) {
			t.Fatalf("the flight's retry ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the flight kept waiting to retry after its only caller left")
	}
	if runs.Load() != 1 {
		t.Fatalf("step ran %d times, want 1", runs.Load())
	}
}
