package middleware_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// hangs is a step that waits for its context to end, then fails with its
// error; it answers at once from the run number free on.
func hangs(runs *atomic.Int64, free int64) func(context.Context, string) (string, error) {
	return func(ctx context.Context, in string) (string, error) {
		if runs.Add(1) < free {
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "ok:" + in, nil
	}
}

func TestTimeout(t *testing.T) {
	var runs atomic.Int64
	step := middleware.Apply(hangs(&runs, 2), middleware.Timeout(10*time.Millisecond))
	_, err := step(context.Background(), "a")
	if !errors.Is(err, middleware.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout wrapping context.DeadlineExceeded", err)
	}
	if out, err := step(context.Background(), "a"); err != nil || out != "ok:a" {
		t.Fatalf("a call within its time: %q, %v", out, err)
	}
}

func TestTimeoutKeepsTheCallersOwnEnd(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(5*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"an earlier deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 5*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			step := middleware.Apply(hangs(&runs, 2), middleware.Timeout(time.Hour))
			ctx, cancel := tt.ctx()
			defer cancel()
			_, err := step(ctx, "a")
			if !errors.Is(err, tt.want) || errors.Is(err, middleware.ErrTimeout) {
				t.Fatalf("err = %v, want %v and not ErrTimeout: the caller's own context ended", err, tt.want)
			}
		})
	}
}

// TestTimeoutOrder: a Timeout inside Retry bounds each attempt, one outside
// bounds them all.
func TestTimeoutOrder(t *testing.T) {
	transient := func(err error) bool { return errors.Is(err, middleware.ErrTimeout) }
	retry := middleware.Retry(transient, middleware.MaxAttempts(5), fast)
	tests := []struct {
		name     string
		layers   []middleware.Layer
		free     int64 // the run that no longer hangs
		wantRuns int64
		wantErr  error
	}{
		{"per attempt: a hung attempt is retried", []middleware.Layer{retry, middleware.Timeout(20 * time.Millisecond)}, 2, 2, nil},
		{"overall: no time is left to retry", []middleware.Layer{middleware.Timeout(20 * time.Millisecond), retry}, 2, 1, middleware.ErrTimeout},
		{"per attempt, every attempt hangs", []middleware.Layer{retry, middleware.Timeout(5 * time.Millisecond)}, 100, 5, middleware.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			layers := append([]middleware.Layer{
				middleware.Persist[string, string]("fetch", middleware.WithPersistence(memory.New(100), scope.Global, time.Hour)),
			}, tt.layers...)
			step := middleware.Apply(hangs(&runs, tt.free), layers...)
			out, err := step(context.Background(), "a")
			if tt.wantErr == nil && (err != nil || out != "ok:a") {
				t.Fatalf("got %q, %v", out, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if runs.Load() != tt.wantRuns {
				t.Fatalf("step ran %d times, want %d", runs.Load(), tt.wantRuns)
			}
		})
	}
}

// TestTimeoutOutsidePersistIsPerCaller: Persist runs the step without its
// caller's deadline, so a Timeout outside it lets that caller go at its
// deadline while the flight runs on for a caller with more time.
func TestTimeoutOutsidePersistIsPerCaller(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int64
	fn := func(ctx context.Context, in string) (string, error) {
		runs.Add(1)
		select {
		case <-release:
			return "ok:" + in, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	persist := middleware.Persist[string, string]("fetch", middleware.WithPersistence(memory.New(100), scope.Global, time.Hour))
	patient := middleware.Apply(fn, persist)
	hasty := middleware.Apply(fn, middleware.Timeout(10*time.Millisecond), persist)

	got := make(chan error, 1)
	go func() {
		out, err := patient(context.Background(), "a")
		if err == nil && out != "ok:a" {
			err = errors.New("wrong result " + out)
		}
		got <- err
	}()
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := hasty(context.Background(), "a"); !errors.Is(err, middleware.ErrTimeout) {
		t.Fatalf("the hasty caller got %v, want ErrTimeout", err)
	}
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("the patient caller: %v", err)
	}
	if runs.Load() != 1 {
		t.Fatalf("step ran %d times, want 1: both callers share one flight", runs.Load())
	}
}
