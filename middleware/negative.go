package middleware

import (
	"context"
	"errors"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// WithErrorCaching stores the step's failures that classify marks terminal
// (ok true: a validation failure, a record that does not exist), under the
// code it returns, for ttl, so that the calls of that key meanwhile get
// the failure without running the step. A ttl of zero or less, or one
// longer than the step's, takes the step's TTL.
//
// What callers get: the callers of the run that failed get the step's
// error itself. Later callers get a *StoredError. It wraps the original
// error (errors.Is and errors.As see through it) only where this process
// stored the failure in its front tier; a failure read from a byte tier
// (after a restart, or stored by another process) carries the code and
// the message only, also once it is copied into the front tier. Switch on
// StoredError.Code for whatever must hold after a restart.
//
// On a Workflow step a stored failure is a checkpoint like a result: a
// re-run of the execution after End(err) gets the failure until its ttl,
// rather than running the step again (use Refresh to retry it).
//
// A failed refresh ahead (WithRefreshAhead) stores nothing while the
// result it refreshes is live; once that has expired, the next call runs
// the step and stores its terminal failure then. A nil classify stores no
// failures.
//
// Never stored, whatever classify says: context errors (context.Canceled,
// context.DeadlineExceeded, and any failure of a step whose context has
// ended), panics, runtime.Goexit and errors classify does not mark. A
// failure never replaces a stored result: the flight looks in the store
// before it writes the failure, and a shared store's lease stores it only
// if no result is stored. Refresh runs the step over a stored failure.
func WithErrorCaching(classify func(error) (code string, ok bool), ttl time.Duration) Option {
	return optionFunc(func(c *config) { c.classify, c.errTTL = classify, ttl })
}

// StoredError is the error callers of a step get from a failure stored
// under WithErrorCaching.
type StoredError struct {
	// Code is what the classifier named the failure; Message is the
	// original error's text.
	Code, Message string
	err           error // the original, where the tier kept it
}

func (e *StoredError) Error() string { return e.Message }

// Unwrap returns the original error when the tier that answered kept it
// (a front tier), else nil.
func (e *StoredError) Unwrap() error { return e.err }

// storedErr is the error callers get for a stored failure.
func (p *persisted[In, Out]) storedErr(f *backends.Failure) error {
	return &StoredError{Code: f.Code, Message: f.Message, err: f.Err}
}

// terminal reports whether err, the step's failure in a flight with
// context ctx, is to be stored, and under which code.
func (p *persisted[In, Out]) terminal(ctx context.Context, err error) (string, bool) {
	if p.cfg.classify == nil || ctx.Err() != nil ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "", false
	}
	var pe *PanicError
	if errors.As(err, &pe) || errors.Is(err, ErrGoexit) {
		// A panic of a nested persisted step, re-raised as an error.
		return "", false
	}
	return p.cfg.classify(err)
}

// failureEntry is the entry that stores the step's terminal failure.
func (p *persisted[In, Out]) failureEntry(ctx context.Context, exec *scope.Execution, code string, err error) backends.Entry {
	now := time.Now()
	e := backends.Entry{Created: now, Version: p.info.Version, Failure: &backends.Failure{Code: code, Message: err.Error(), Err: err}}
	ttl := p.cfg.ttl
	if d := p.cfg.errTTL; d > 0 && (ttl <= 0 || d < ttl) {
		ttl = d
	}
	if ttl > 0 {
		e.Expires = now.Add(ttl)
	}
	if exec != nil {
		e.Execution = exec.ID()
	} else if id, ok := scope.ExecutionID(ctx); ok {
		e.Execution = id
	}
	return e
}

// storeFailure stores a terminal failure of the step unless the store
// holds a result for key, or fails to say whether it does: a failure never
// replaces a success, and a refresh, or another process, may have stored
// one since the flight looked.
func (p *persisted[In, Out]) storeFailure(f *flight[Out], key keyer.Key, exec *scope.Execution, code string, err error) {
	wctx := context.Context(&f.base)
	if exec != nil && exec.Dropped() {
		return
	}
	switch e, gerr := p.store.Get(wctx, key, p.codec); {
	case gerr == nil && e.Failure == nil:
		return
	case gerr != nil && reason(gerr) == ReasonFault:
		// The store cannot say whether it holds a result (a refresh ahead
		// was served one a moment ago): storing the failure could replace it.
		return
	}
	entry := p.failureEntry(f.ctx, exec, code, err)
	if serr := p.store.Set(wctx, key, entry, p.codec); serr != nil {
		p.fault(f.ctx, "write", key, serr)
	}
	if exec != nil && exec.Dropped() {
		_ = p.store.Delete(wctx, key)
	}
}
