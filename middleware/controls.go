package middleware

import (
	"context"
	"sync/atomic"
)

// control is what a call's context asks of the persisted steps it reaches.
type control uint8

const (
	controlNone control = iota
	// controlRefresh: run the step even on a hit and overwrite the result.
	controlRefresh
	// controlBypass: run the step, read nothing, store nothing.
	controlBypass
)

type controlKey struct{}

// controlsUsed is set once either marker has been made in this process.
// Until then a call does not look for one, so that a hit of a program that
// never marks a context pays one load for the controls, not a walk up its
// context's chain of parents.
var controlsUsed atomic.Bool

// Refresh returns a context under which persisted steps run even when a
// result is stored, and store the new result in place of the old one (a
// failure of the step stores nothing and leaves the old result served).
// Concurrent refreshing calls of one key in one process share one run;
// calls of that key without the marker keep getting the stored result
// meanwhile. On a store that processes share, a refresh takes no lease:
// processes that refresh one key at the same moment may each run the step.
func Refresh(ctx context.Context) context.Context {
	controlsUsed.Store(true)
	return context.WithValue(ctx, controlKey{}, controlRefresh)
}

// Bypass returns a context under which persisted steps run as if they were
// not persisted: nothing is read from their stores, nothing is written, no
// flight is joined and the result goes to this caller only. The step's
// context is ctx itself, so KeyFrom reports no key.
func Bypass(ctx context.Context) context.Context {
	controlsUsed.Store(true)
	return context.WithValue(ctx, controlKey{}, controlBypass)
}

// controlOf returns the control ctx carries. The innermost marker wins, so
// Bypass(Refresh(ctx)) bypasses.
func controlOf(ctx context.Context) control {
	if !controlsUsed.Load() {
		return controlNone
	}
	c, _ := ctx.Value(controlKey{}).(control)
	return c
}
