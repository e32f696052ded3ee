package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestResultCountsAnswersFromAnyTierAsHits: how each outcome the middleware
// reports is recorded, in the span and in docket.calls. An answer from any
// tier is a hit, also one the caller's own flight found; a miss is a run.
func TestResultCountsAnswersFromAnyTierAsHits(t *testing.T) {
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
			"miss", "", "docket.calls{result=miss,scope=global,step=s}", "1"},
		{"waited on a run", middleware.Outcome{Result: middleware.ResultShared, Reason: middleware.ReasonAbsent},
			"shared", "", "docket.calls{result=shared,scope=global,step=s}", ""},
		{"waited on a flight that found it stored", middleware.Outcome{Result: middleware.ResultShared, Tier: "badger", Reason: middleware.ReasonAbsent},
			"shared", "badger", "docket.calls{result=shared,scope=global,step=s,tier=badger}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := newTelemetry(t)
			_, span := tm.obs.Start(context.Background(), middleware.CallInfo{Step: "s", Scope: scope.Global})
			if span == nil {
				t.Fatal("an SDK that records got no CallSpan")
			}
			span.End(tt.out)
			wantAttrs(t, tm.only(t, "s"), map[string]string{
				"docket.result": tt.result, "docket.tier": tt.tier, "docket.flight.waiters": tt.waiters,
			})
			runs := 0.0
			if tt.out.Ran {
				runs = 1
			}
			wantMetrics(t, tm.metrics(t), map[string]float64{
				tt.metric: 1,
				"docket.step.duration{scope=global,step=s}": runs,
			})
		})
	}
}
