package middleware_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestGoexitInlineCounted: a call whose step calls runtime.Goexit on the
// caller's own goroutine (its context can never end) is still counted:
// Calls = Hits + Misses + failed-before-lookup, and it is an error. The
// observer sees the run too, so that metrics count what Stats counts.
func TestGoexitInlineCounted(t *testing.T) {
	obs := &recordingObserver{}
	h := middleware.New("fx", func(context.Context, query) (string, error) {
		runtime.Goexit()
		return "", nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithObserver(obs))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Call(context.Background(), query{"eur", 1})
	}()
	<-done
	st := h.Stats()
	if st.Calls != 1 || st.Misses[middleware.ReasonAbsent] != 1 || st.Errors != 1 || st.Runs != 1 {
		t.Errorf("stats %+v: want 1 call, an absent miss, an error, a run", st)
	}
	o := obs.last()
	if !o.Ran || o.Err != middleware.ErrGoexit || o.Reason != middleware.ReasonAbsent {
		t.Errorf("outcome %+v: want a run that ended in ErrGoexit", o)
	}
}
