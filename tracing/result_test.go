package tracing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestResultCountsAnswersFromAnyTierAsHits: how each outcome the middleware
// reports is recorded, in the span and in docket.calls. An answer from any
// tier is a hit, also one the caller's own flight found; a miss is a run; a
// call that returned an error is an error, with the tier of the stored
// failure that answered it or the reason of its miss.
func TestResultCountsAnswersFromAnyTierAsHits(t *testing.T) {
	errStep := errors.New("no such user")
	tests := []struct {
		name    string
		out     middleware.Outcome
		result  string
		tier    string
		metric  string
		waiters string
	}{
		{"front-tier hit", middleware.Outcome{Result: middleware.ResultHit, Tier: "memory"},
			"hit", "memory", "docket.calls{result=hit,scope=global,step=s,tier=memory}", ""},
		{"found by the flight in the back tier", middleware.Outcome{Result: middleware.ResultMiss, Tier: "badger", Reason: middleware.ReasonAbsent, Waiters: 1},
			"hit", "badger", "docket.calls{result=hit,scope=global,step=s,tier=badger}", "1"},
		{"found by the flight, stored a moment before", middleware.Outcome{Result: middleware.ResultMiss, Tier: "memory", Reason: middleware.ReasonAbsent, Waiters: 2},
			"hit", "memory", "docket.calls{result=hit,scope=global,step=s,tier=memory}", "2"},
		{"found in a tier other processes share", middleware.Outcome{Result: middleware.ResultMiss, Tier: "redis", Reason: middleware.ReasonAbsent, Waiters: 1},
			"hit", "redis", "docket.calls{result=hit,scope=global,step=s,tier=redis}", "1"},
		{"the step ran", middleware.Outcome{Result: middleware.ResultMiss, Reason: middleware.ReasonAbsent, Ran: true, StepDuration: time.Millisecond, Waiters: 1},
			"miss", "", "docket.calls{miss_reason=absent,result=miss,scope=global,step=s}", "1"},
		{"Bypass", middleware.Outcome{Result: middleware.ResultMiss, Reason: middleware.ReasonBypass, Ran: true, StepDuration: time.Millisecond},
			"miss", "", "docket.calls{miss_reason=bypass,result=miss,scope=global,step=s}", ""},
		{"waited on a run", middleware.Outcome{Result: middleware.ResultShared, Reason: middleware.ReasonAbsent, Joined: true},
			"shared", "", "docket.calls{flight.joined=true,miss_reason=absent,result=shared,scope=global,step=s}", ""},
		{"waited on a flight that found it stored", middleware.Outcome{Result: middleware.ResultShared, Tier: "badger", Reason: middleware.ReasonAbsent, Joined: true},
			"shared", "badger", "docket.calls{flight.joined=true,result=shared,scope=global,step=s,tier=badger}", ""},
		{"the step failed", middleware.Outcome{Result: middleware.ResultError, Reason: middleware.ReasonExpired, Err: errStep, Ran: true, StepDuration: time.Millisecond, Waiters: 1},
			"error", "", "docket.calls{miss_reason=expired,result=error,scope=global,step=s}", "1"},
		{"waited on a run that failed", middleware.Outcome{Result: middleware.ResultError, Reason: middleware.ReasonAbsent, Err: errStep, Joined: true},
			"error", "", "docket.calls{flight.joined=true,miss_reason=absent,result=error,scope=global,step=s}", ""},
		{"a failed Bypass run", middleware.Outcome{Result: middleware.ResultMiss, Reason: middleware.ReasonBypass, Err: errStep, Ran: true, StepDuration: time.Millisecond},
			"error", "", "docket.calls{miss_reason=bypass,result=error,scope=global,step=s}", ""},
		{"a strict write fault, returned with the result", middleware.Outcome{Result: middleware.ResultMiss, Reason: middleware.ReasonAbsent, Err: middleware.ErrStore, Ran: true, StepDuration: time.Millisecond, Waiters: 1},
			"error", "", "docket.calls{miss_reason=absent,result=error,scope=global,step=s}", "1"},
		{"a stored failure from the front tier", middleware.Outcome{Result: middleware.ResultHit, Tier: "memory", Err: errStep},
			"error", "memory", "docket.calls{result=error,scope=global,step=s,tier=memory}", ""},
		{"a stored failure the flight found", middleware.Outcome{Result: middleware.ResultError, Tier: "badger", Reason: middleware.ReasonAbsent, Err: errStep, Waiters: 1},
			"error", "badger", "docket.calls{result=error,scope=global,step=s,tier=badger}", "1"},
		{"failed before any lookup", middleware.Outcome{Result: middleware.ResultError, Err: errStep},
			"error", "", "docket.calls{result=error,scope=global,step=s}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := newTelemetry(t)
			_, span := tm.obs.Start(context.Background(), middleware.CallInfo{Step: "s", Scope: scope.Global})
			if span == nil {
				t.Fatal("an SDK that records got no CallSpan")
			}
			span.End(tt.out)
			joined := ""
			if tt.out.Joined {
				joined = "true"
			}
			wantAttrs(t, tm.only(t, "s"), map[string]string{
				"docket.result": tt.result, "docket.tier": tt.tier, "docket.flight.waiters": tt.waiters,
				"docket.flight.joined": joined,
			})
			runs := 0.0
			if tt.out.Ran {
				runs = 1
			}
			m := tm.metrics(t)
			wantMetrics(t, m, map[string]float64{
				tt.metric: 1,
				"docket.step.duration{scope=global,step=s}": runs,
			})
			if n := m[tt.metric]; calls(m) != n {
				t.Fatalf("docket.calls has %v points besides %s: %v", calls(m)-n, tt.metric, m)
			}
		})
	}
}
