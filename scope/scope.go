package scope

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
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
var ErrNoExecution = errors.New("docket: workflow-scoped call without an execution (use scope.Begin)")

// ErrEnded is returned (wrapped) by a Workflow-scoped call on an execution that
// has already ended; the step does not run.
var ErrEnded = errors.New("docket: execution has ended")

// Purger removes all Workflow-scoped entries of one execution. Every store
// implements it; an execution calls it on each store its steps used when it
// ends with a nil error.
//
// A Purger is used as a map key, so its dynamic type must be comparable
// (stores are pointers).
type Purger interface {
	PurgeExecution(ctx context.Context, executionID string) (int, error)
}

// Execution is one run of a workflow. Its methods are safe for concurrent use.
type Execution struct {
	id string

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
// that a durable store kept are served again.
func Begin(ctx context.Context, id string) (context.Context, *Execution) {
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	e := &Execution{id: id}
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
// Workflow-scoped entries are being, or have been, removed, and a result
// produced for the execution after that must not be stored. A store write
// followed by a Dropped that returns false is seen by End's purge.
func (e *Execution) Dropped() bool { return e.dropped.Load() }

// End ends the execution. With a nil err it removes the execution's
// Workflow-scoped entries from every store its steps used, including stores
// it only read from; with a non-nil err it keeps them (until their TTL) so
// that a later Begin with the same ID resumes. Global entries are never
// touched. End is idempotent: only the first call has an effect. It returns
// the errors of the stores that could not be purged.
//
// A call of the execution still in flight when End(nil) runs stores
// nothing: the middleware checks Dropped after its write and removes what
// it wrote.
func (e *Execution) End(err error) error {
	return e.EndContext(context.Background(), err)
}

// EndContext is End with a context for the stores' purge operations.
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
	var errs []error
	for _, p := range stores {
		if _, perr := p.PurgeExecution(ctx, e.id); perr != nil {
			errs = append(errs, perr)
		}
	}
	return errors.Join(errs...)
}
