package middleware

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryOption configures Retry.
type RetryOption interface {
	applyRetry(*retryConfig)
}

type retryOptionFunc func(*retryConfig)

func (f retryOptionFunc) applyRetry(c *retryConfig) { f(c) }

type retryConfig struct {
	attempts int
	initial  time.Duration
	max      time.Duration
	notify   func(attempt int, err error, wait time.Duration)
}

// MaxAttempts sets how many times Retry runs the call at most, the first
// one included. The default is 3; n must be at least 1.
func MaxAttempts(n int) RetryOption {
	return retryOptionFunc(func(c *retryConfig) { c.attempts = n })
}

// Backoff sets the wait before each retry: initial before the first, twice
// that before the second and so on, never more than max; each wait is drawn
// at random from its upper half (jitter), so that callers that failed
// together do not retry together. The default is Backoff(100ms, 10s).
func Backoff(initial, max time.Duration) RetryOption {
	return retryOptionFunc(func(c *retryConfig) { c.initial, c.max = initial, max })
}

// OnRetry has f called before each wait, with the number of the attempt
// that failed (from 1), its error and how long Retry will wait: for logs
// and metrics.
func OnRetry(f func(attempt int, err error, wait time.Duration)) RetryOption {
	return retryOptionFunc(func(c *retryConfig) { c.notify = f })
}

// Retry returns middleware that runs a call again, after a backoff (see
// [Backoff]), when it fails with an error transient reports as transient,
// up to [MaxAttempts] runs. It returns the result of the last run, or its
// error unchanged.
//
// Retry never retries once ctx is done, and never an error that is or wraps
// context.Canceled or context.DeadlineExceeded, whatever transient says:
// those mean that the caller has gone or its time is up. The exception is
// an [ErrTimeout] of a [Timeout] inside the Retry, which cut off one attempt
// while the call still has time; transient decides about it like about any
// other error. A panic is never retried: it goes through Retry unchanged,
// as do [ErrGoexit] and a returned *[PanicError]. The wait before a retry
// ends early when ctx is done; Retry then returns an error that wraps both
// ctx.Err() and the last attempt's error.
//
// Where Retry goes around [Persist] decides what is retried; see the
// package documentation. Retry panics if transient is nil or an option is
// out of range.
func Retry(transient func(error) bool, opts ...RetryOption) Around {
	if transient == nil {
		panic("docket: Retry needs a classifier of transient errors")
	}
	c := retryConfig{attempts: 3, initial: 100 * time.Millisecond, max: 10 * time.Second}
	for _, o := range opts {
		if o != nil {
			o.applyRetry(&c)
		}
	}
	if c.attempts < 1 {
		panic(fmt.Sprintf("docket: Retry: MaxAttempts(%d) must be at least 1", c.attempts))
	}
	if c.initial <= 0 || c.max < c.initial {
		panic(fmt.Sprintf("docket: Retry: Backoff(%v, %v) needs 0 < initial <= max", c.initial, c.max))
	}
	return func(ctx context.Context, call func(context.Context) error) error {
		for attempt := 1; ; attempt++ {
			err := call(ctx)
			if err == nil || attempt >= c.attempts || !retryable(ctx, err, transient) {
				return err
			}
			wait := c.wait(attempt)
			if c.notify != nil {
				c.notify(attempt, err, wait)
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w while waiting to retry after: %w", ctx.Err(), err)
			}
		}
	}
}

// retryable reports whether err, returned by an attempt of a call with
// context ctx, may be retried.
func retryable(ctx context.Context, err error, transient func(error) bool) bool {
	var pe *PanicError
	switch {
	case ctx.Err() != nil, errors.As(err, &pe), errors.Is(err, ErrGoexit):
		return false
	case errors.Is(err, ErrTimeout):
		// An attempt cut off by a Timeout inside: ctx itself has time left.
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return transient(err)
}

// wait is the backoff after the failed attempt n (from 1): the upper half
// of min(initial·2^(n-1), max), drawn at random.
func (c *retryConfig) wait(n int) time.Duration {
	d := c.initial
	for i := 1; i < n && d < c.max; i++ {
		if d > c.max/2 {
			d = c.max // doubling would pass max, or overflow
			break
		}
		d *= 2
	}
	half := d / 2
	return d - half + rand.N(half+1)
}
