package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is wrapped by the error of a call that a [Timeout] cut off.
var ErrTimeout = errors.New("docket: timed out")

// Timeout returns middleware that gives the rest of the call at most d: it
// runs it with a context whose deadline is d from now (or ctx's own, if
// that is sooner). When the call fails after that deadline passed, and ctx
// itself is not done, its error is wrapped with [ErrTimeout] (and the step's
// own error, typically context.DeadlineExceeded, stays in the chain for
// errors.Is).
//
// Timeout does not abandon a call: it returns when the call returns, so
// the layers inside it must honour their context. [Persist] does for its
// callers (a caller whose context ends gets ctx.Err() at once), and the
// step's context is cancelled when every caller has gone; a step that
// ignores its context runs on. Where Timeout goes around Persist and
// [Retry] decides what it bounds; see the package documentation. Timeout
// panics if d is not positive.
func Timeout(d time.Duration) Around {
	if d <= 0 {
		panic(fmt.Sprintf("docket: Timeout(%v) needs a positive duration", d))
	}
	return func(ctx context.Context, call func(context.Context) error) error {
		tctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err := call(tctx)
		if err != nil && tctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%w after %v: %w", ErrTimeout, d, err)
		}
		return err
	}
}
