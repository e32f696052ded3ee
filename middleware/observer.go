package middleware

import (
	"context"
	"time"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// Observer sees the calls of the steps it is installed on (WithObserver):
// package tracing implements it with OpenTelemetry. It is not generic, so one
// observer serves steps of every type. Its methods are called concurrently
// and Start on every call, a front-tier hit included, so it must be cheap
// when it records nothing.
type Observer interface {
	// Start is called when a call begins, before its key is made. It returns
	// the context the rest of the call uses (the step, if it runs, gets one
	// derived from it: a span put there is the parent of the step's own
	// spans) and the span that receives the outcome, or nil to observe
	// nothing more of this call.
	Start(ctx context.Context, call CallInfo) (context.Context, CallSpan)
	// Origin returns what to store with a result produced in ctx (the
	// step's context) so that later hits can refer to the run that produced
	// it; nil stores nothing. It is called once per step run.
	Origin(ctx context.Context) []byte
	// Fault reports a store fault that did not fail the call (or, with
	// WithStrict, did): op is "read" or "write", store the store's Name.
	Fault(ctx context.Context, call CallInfo, store, op string, err error)
	// Purged reports that End(nil) of an execution removed n entries from
	// the named store (err if it failed).
	Purged(ctx context.Context, store, executionID string, n int, err error)
}

// CallSpan receives the outcome of one observed call.
type CallSpan interface {
	End(Outcome)
}

// CallInfo describes the step a call belongs to.
type CallInfo struct {
	Step      string
	Version   string
	Scope     scope.Scope
	Execution string // empty outside an execution
}

// Result says how a call was answered.
type Result uint8

const (
	// ResultHit: the stored result, found before any flight.
	ResultHit Result = iota + 1
	// ResultMiss: this caller started the flight; the step ran (or the
	// flight's second look found a result that had just been stored).
	ResultMiss
	// ResultShared: this caller joined a flight another caller started.
	ResultShared
	// ResultError: the call failed (the step's error, a key error, a
	// cancelled wait, a strict store fault).
	ResultError
)

func (r Result) String() string {
	switch r {
	case ResultHit:
		return "hit"
	case ResultMiss:
		return "miss"
	case ResultShared:
		return "shared"
	case ResultError:
		return "error"
	}
	return "unknown"
}

// Reason says why the front tier did not answer.
type Reason uint8

const (
	// ReasonNone: the call was a hit, or failed before a lookup.
	ReasonNone Reason = iota
	// ReasonAbsent: no entry.
	ReasonAbsent
	// ReasonExpired: the entry had outlived its TTL.
	ReasonExpired
	// ReasonCorrupt: the entry could not be read back, or held a value of
	// another type; it is overwritten.
	ReasonCorrupt
	// ReasonFault: the store failed.
	ReasonFault
	// ReasonRefresh: the call was made under Refresh, which does not look.
	ReasonRefresh
	// ReasonBypass: the call was made under Bypass, which does not look.
	ReasonBypass
	// ReasonRefreshAhead: a background refresh of WithRefreshAhead, which a
	// hit late in its entry's TTL started. It is reported as a call of its
	// own, whose step ran.
	ReasonRefreshAhead

	reasonCount // one past the last Reason
)

func (r Reason) String() string {
	switch r {
	case ReasonAbsent:
		return "absent"
	case ReasonExpired:
		return "expired"
	case ReasonCorrupt:
		return "corrupt"
	case ReasonFault:
		return "fault"
	case ReasonRefresh:
		return "refresh"
	case ReasonBypass:
		return "bypass"
	case ReasonRefreshAhead:
		return "refresh_ahead"
	}
	return ""
}

// Outcome is what an observed call came to. It says everything Stats
// counts of the call, so that an observer can export the same numbers: Tier
// set means a hit, of that tier; otherwise Reason set means a miss; neither
// means the call failed before any lookup.
type Outcome struct {
	// Key is the call's key; zero if keying failed.
	Key    keyer.Key
	Result Result
	// Tier names the tier that answered ("memory", "badger") with a stored
	// result or a stored failure (WithErrorCaching): for a hit, the front
	// tier or, for a call whose flight found the entry, the tier that had
	// it. Empty when the step ran.
	Tier string
	// Reason is why the front tier did not answer a call that was not a hit
	// before any flight.
	Reason Reason
	// Err is the error the call returned: for ResultError, and also for a
	// stored failure served as a hit, a failed Bypass run (ResultMiss) or a
	// strict write fault returned with the step's result, which keep their
	// Result.
	Err error
	// Origin is what Observer.Origin returned when the result was produced,
	// for results read from a store.
	Origin []byte
	// Flight is the context of the flight this call started or joined (the
	// step's context), for linking a waiter to the run it waited on.
	Flight context.Context
	// Joined is whether the call joined a flight another caller had started
	// (a shared wait): its Result is ResultShared, or ResultError when that
	// flight failed or the caller left it.
	Joined bool
	// Ran is whether the step ran in this call's flight, also when it
	// failed (or under Bypass, in the call itself); StepDuration is how long
	// it took and Waiters how many callers joined the flight up to the
	// moment the starting caller got its result (callers that left on
	// cancellation included). Set for the caller that started the flight
	// and waited for it, whatever its Result.
	Ran          bool
	StepDuration time.Duration
	Waiters      int
}

// WithObserver reports every call of the step to o (see package tracing).
func WithObserver(o Observer) Option {
	return optionFunc(func(c *config) { c.observer = o })
}
