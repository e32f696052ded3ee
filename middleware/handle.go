package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/docket-go/docket/backends"
)

// Persisted is a persisted step with handles on what it stores: Call runs
// it as Wrap's step does, Peek reads a stored result without running the
// step, Forget drops one, ForgetMatching drops many, and Stats counts its
// calls. Make one with New. Its methods are safe for concurrent use.
type Persisted[In, Out any] struct {
	p    *persisted[In, Out]
	next Step[In, Out]
	call Step[In, Out] // Call as a func value, made once for Step
}

// New returns step made persistent under name, with In and Out inferred
// from step. It panics like Wrap; Wrap(name, step, opts...) is
// New(name, step, opts...).Step().
func New[In, Out any](name string, step func(context.Context, In) (Out, error), opts ...Option) *Persisted[In, Out] {
	h := &Persisted[In, Out]{p: newPersisted[In, Out](name, opts), next: step}
	h.call = h.Call
	return h
}

// Call runs the persisted step: the stored result of in's key if there is
// one, else the step, once per key however many callers (see the package
// documentation).
func (h *Persisted[In, Out]) Call(ctx context.Context, in In) (Out, error) {
	return h.p.call(ctx, h.next, in)
}

// Step returns Call as a Step, for Chain and for code that takes a func.
func (h *Persisted[In, Out]) Step() Step[In, Out] { return h.call }

// Name returns the step's name.
func (h *Persisted[In, Out]) Name() string { return h.p.info.Name }

// Stored is a result as the store holds it, with where it came from.
type Stored[Out any] struct {
	// Value is the stored result; zero for a stored failure.
	Value Out
	// Err is the stored failure of a step with WithErrorCaching, as its
	// callers get it; nil for a stored result.
	Err error
	// Tier names the tier that holds it ("memory", "badger").
	Tier string
	// Created is when the step produced it; Expires when it stops being
	// served (zero: never).
	Created, Expires time.Time
	// Execution is the ID of the execution whose call produced it, if any.
	Execution string
	// Version is the step version that produced it (WithVersion).
	Version string
	// Origin is what the observer recorded of the run that produced it
	// (package tracing: its trace and span IDs); shared, never modify it.
	Origin []byte
}

// Peek returns what the store holds for in, without running the step or
// joining a flight; ok is false when nothing live is stored. It reads the
// whole store: on a Tiered store a result found in the back tier is copied
// into the front, as a call's would be. A Workflow step needs an execution
// in ctx, as its calls do. An entry that cannot be read back is an error
// wrapping backends.ErrCorrupt, a failing store one wrapping its error.
func (h *Persisted[In, Out]) Peek(ctx context.Context, in In) (s Stored[Out], ok bool, err error) {
	p := h.p
	key, _, err := p.key(ctx, &in)
	if err != nil {
		return s, false, err
	}
	e, err := p.store.Get(ctx, key, p.codec)
	switch reason(err) {
	case ReasonAbsent, ReasonExpired:
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("docket: step %q: %s peek: %w", p.info.Name, p.store.Name(), err)
	}
	s = Stored[Out]{Tier: e.Tier, Created: e.Created, Expires: e.Expires, Execution: e.Execution, Version: e.Version, Origin: e.Origin}
	if s.Tier == "" {
		s.Tier = p.store.Name()
	}
	if e.Failure != nil {
		s.Err = p.storedErr(e.Failure)
		return s, true, nil
	}
	v, ok := asOut[Out](e.Value)
	if !ok {
		return Stored[Out]{}, false, fmt.Errorf("docket: step %q: peek: %w", p.info.Name, p.wrongType(e.Value))
	}
	s.Value = p.result(v)
	return s, true, nil
}

// Forget removes what the store holds for in from every tier, so that the
// next call runs the step. A flight of in's key already running still
// stores its result when it ends. A missing entry is not an error.
func (h *Persisted[In, Out]) Forget(ctx context.Context, in In) error {
	p := h.p
	key, _, err := p.key(ctx, &in)
	if err != nil {
		return err
	}
	if err := p.store.Delete(ctx, key); err != nil {
		return fmt.Errorf("docket: step %q: %s forget: %w", p.info.Name, p.store.Name(), err)
	}
	return nil
}

// ForgetMatching removes from every tier of the step's store the entries
// of this step that f matches (f.Step is set to the step's name): all of
// them for the zero Filter, or those of one version, one execution, or
// those expired. It returns how many it removed; a store that cannot
// select entries (see backends.Selector) gives an error wrapping
// backends.ErrUnsupported.
func (h *Persisted[In, Out]) ForgetMatching(ctx context.Context, f backends.Filter) (int, error) {
	p := h.p
	f.Step = p.info.Name
	n, err := backends.DeleteMatching(ctx, p.store, f)
	if err != nil {
		return n, fmt.Errorf("docket: step %q: %w", p.info.Name, err)
	}
	return n, nil
}

// Stats returns a snapshot of the step's counters: calls, hits by tier,
// misses by reason, shared waits, runs and their time, errors. It counts
// the calls of this handle, through Call and Step alike.
func (h *Persisted[In, Out]) Stats() Stats { return h.p.stats.snapshot(h.p.frontTier) }
