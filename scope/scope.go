package scope

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Scope is the lifetime of a persisted result. Its zero value is not a valid
// scope; use [Workflow] or [Global].
type Scope uint8

const (
	// Workflow keys results on the execution ID, step name, step version and
	// input: they are shared within one execution only and dropped when the
	// execution ends successfully.
	Workflow Scope = 1
	// Global keys results on the step name, step version and input: they are
	// shared by every execution until their TTL expires.
	Global Scope = 2
)

// String returns "workflow" or "global".
func (s Scope) String() string {
	switch s {
	case Workflow:
		return "workflow"
	case Global:
		return "global"
	default:
		return "invalid"
	}
}

// Valid reports whether s is Workflow or Global.
func (s Scope) Valid() bool { return s == Workflow || s == Global }

// ErrNoExecution is returned (wrapped) by a Workflow-scoped call whose context
// carries no execution; the step does not run.
var ErrNoExecution = errors.New("scope: workflow-scoped call without an execution (use scope.Begin)")

// ErrEnded is returned (wrapped) by a Workflow-scoped call on an execution that
// has already ended; the step does not run.
var ErrEnded = errors.New("scope: execution has ended")

// Purger removes all Workflow-scoped entries of one execution. Every store
// implements it; an execution calls it on each store its steps used when it
// ends with a nil error (with [WithRetention], on each store that does not
// retain them).
//
// A Purger is used as a map key, so its dynamic type must be comparable
// (stores are pointers).
type Purger interface {
	PurgeExecution(ctx context.Context, executionID string) (int, error)
}

// Retainer keeps the Workflow-scoped entries of one execution for a while
// instead of removing them: an execution begun [WithRetention] calls it,
// in place of PurgeExecution, on each store its steps used when it ends
// with a nil error. Every store of Docket implements it.
//
// RetainExecution sets the expiry of every Workflow entry of execution
// executionID to until, or leaves the entry's own expiry where that is
// earlier, so that the entries are served until then and are expired
// afterwards, removed as every expired entry is. It touches nothing else
// (Global entries and other executions' entries), and returns how many
// entries it kept. A store that cannot do it returns an error wrapping
// errors.ErrUnsupported, and End purges it instead. If ctx ends midway, it
// returns the count kept so far and ctx's error.
type Retainer interface {
	RetainExecution(ctx context.Context, executionID string, until time.Time) (int, error)
}

// Option configures an execution; see [Begin].
type Option interface{ apply(*Execution) }

type optionFunc func(*Execution)

func (f optionFunc) apply(e *Execution) { f(e) }

// WithRetention makes End(nil) keep the execution's Workflow-scoped
// entries for d instead of removing them, so that a re-run with the same
// execution ID within d replays them (the idempotent re-run of a
// completed execution): End(nil) asks each store its steps used to keep
// them until the time it is called plus d (see [Retainer]), never longer
// than their own TTL. After d they are expired. A d that is not positive
// is no retention: End(nil) removes the entries, as without the option.
func WithRetention(d time.Duration) Option {
	return optionFunc(func(e *Execution) { e.retain = d })
}

// Execution is one run of a workflow. Its methods are safe for concurrent use.
type Execution struct {
	id string
	// retain is WithRetention's duration; not positive: End(nil) purges.
	retain time.Duration

	// tracked is the current list of stores, replaced (never changed) under
	// mu: Track runs on every Workflow call, a hit included, and most calls
	// find their store listed without taking the lock.
	tracked atomic.Pointer[[]Purger]
	ended   atomic.Bool
	// dropped is set by End(nil) before it purges, so that a step still
	// running can tell that its result must not land.
	dropped atomic.Bool

	mu sync.Mutex
}

type ctxKey struct{}

// Begin starts an execution with the given ID and returns a context that
// carries it. An empty id is replaced by a random one. Re-using the ID of an
// execution that ended with an error resumes it: its Workflow-scoped results
// that the store kept are served again; so does re-using the ID of
// one that ended with End(nil) [WithRetention], within the retention.
func Begin(ctx context.Context, id string, opts ...Option) (context.Context, *Execution) {
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	e := &Execution{id: id}
	for _, o := range opts {
		o.apply(e)
	}
	return context.WithValue(ctx, ctxKey{}, e), e
}

// FromContext returns the execution ctx carries, or nil.
func FromContext(ctx context.Context) *Execution {
	e, _ := ctx.Value(ctxKey{}).(*Execution)
	return e
}

// ExecutionID returns the ID of the execution ctx carries.
func ExecutionID(ctx context.Context) (string, bool) {
	if e := FromContext(ctx); e != nil {
		return e.id, true
	}
	return "", false
}

// ID returns the execution's ID.
func (e *Execution) ID() string { return e.id }

// Track records that a step of this execution used store p, so that End(nil)
// purges it. It is called by the middleware on every Workflow-scoped call, a
// hit included, and returns ErrEnded once the execution has ended.
func (e *Execution) Track(p Purger) error {
	if e.ended.Load() {
		return ErrEnded
	}
	if l := e.tracked.Load(); l != nil && slices.Contains(*l, p) {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended.Load() {
		return ErrEnded
	}
	var l []Purger
	if old := e.tracked.Load(); old != nil {
		if slices.Contains(*old, p) {
			return nil
		}
		l = append(l, *old...)
	}
	l = append(l, p)
	e.tracked.Store(&l)
	return nil
}

// Ended reports whether End has been called.
func (e *Execution) Ended() bool { return e.ended.Load() }

// Dropped reports whether End(nil) has been called: the execution's
// Workflow-scoped entries are being, or have been, removed (or, with
// [WithRetention], retained as they were), and a result produced for the
// execution after that must not be stored. A store write followed by a
// Dropped that returns false is seen by End's purge or retention.
func (e *Execution) Dropped() bool { return e.dropped.Load() }

// End ends the execution. With a nil err it removes the execution's
// Workflow-scoped entries from every store its steps used, including stores
// it only read from; with a non-nil err it keeps them (until their TTL) so
// that a later Begin with the same ID resumes. Global entries are never
// touched. End is idempotent: only the first call has an effect. It returns
// the errors of the stores that could not be purged or retained.
//
// An execution begun [WithRetention] keeps its entries at End(nil) too, for
// the retention: each store is asked to keep them until then (a
// [Retainer]). A store that is not a Retainer, or fails to retain, is
// purged instead, as without the option, so that no entry is kept longer
// than the retention; End's error then says so, and wraps
// errors.ErrUnsupported where the store cannot retain at all.
//
// A call of the execution still in flight when End(nil) runs stores
// nothing: the middleware checks Dropped after its write and removes what
// it wrote.
func (e *Execution) End(err error) error {
	return e.EndContext(context.Background(), err)
}

// EndContext is End with a context for the stores' purge and retain
// operations.
func (e *Execution) EndContext(ctx context.Context, err error) error {
	e.mu.Lock()
	if e.ended.Load() {
		e.mu.Unlock()
		return nil
	}
	if err == nil {
		e.dropped.Store(true)
	}
	e.ended.Store(true)
	var stores []Purger
	if l := e.tracked.Swap(nil); l != nil {
		stores = *l
	}
	e.mu.Unlock()
	if err != nil {
		return nil
	}
	// One reading for every store, so that they all drop the entries at
	// the same moment.
	until := time.Now().Add(e.retain)
	var errs []error
	for _, p := range stores {
		if e.retain > 0 {
			rerr := e.retainOne(ctx, p, until)
			if rerr == nil {
				continue
			}
			errs = append(errs, rerr)
		}
		if _, perr := p.PurgeExecution(ctx, e.id); perr != nil {
			errs = append(errs, perr)
		}
	}
	return errors.Join(errs...)
}

// retainOne asks p to keep the execution's entries until until; an error
// means p is to be purged instead.
func (e *Execution) retainOne(ctx context.Context, p Purger, until time.Time) error {
	r, ok := p.(Retainer)
	if !ok {
		return fmt.Errorf("scope: execution %q: %T cannot retain entries, purged instead: %w", e.id, p, errors.ErrUnsupported)
	}
	if _, err := r.RetainExecution(ctx, e.id, until); err != nil {
		return fmt.Errorf("scope: execution %q: retain failed, purged instead: %w", e.id, err)
	}
	return nil
}
