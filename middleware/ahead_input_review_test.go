package middleware_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestRefreshAheadInputNotRetained: a caller may reuse its input once Call
// has returned. The refresh ahead a hit starts must not compute from the
// caller's later changes and store that under the old input's key.
func TestRefreshAheadInputNotRetained(t *testing.T) {
	type tagged struct{ Tags []string }
	var runs atomic.Int64
	gate := make(chan struct{})
	h := middleware.New("tags", func(_ context.Context, in tagged) (string, error) {
		if runs.Add(1) == 2 {
			<-gate
		}
		return strings.Join(in.Tags, ","), nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, aheadTTL), middleware.WithRefreshAhead(aheadWindow))
	ctx := context.Background()
	in := tagged{Tags: []string{"a"}}
	if v, err := h.Call(ctx, in); err != nil || v != "a" {
		t.Fatalf("first call: %q, %v", v, err)
	}
	time.Sleep(2 * time.Millisecond)
	if v, err := h.Call(ctx, in); err != nil || v != "a" {
		t.Fatalf("trigger: %q, %v", v, err)
	}
	in.Tags[0] = "b" // the call has returned: the caller reuses its input
	waitFor(t, "the refresh to start", func() bool { return runs.Load() == 2 })
	close(gate)
	waitFor(t, "the refresh to end", func() bool { return h.Stats().Runs == 2 && h.Stats().Misses[middleware.ReasonRefreshAhead] == 1 })
	s, ok, err := h.Peek(ctx, tagged{Tags: []string{"a"}})
	if err != nil || !ok || s.Value != "a" {
		t.Fatalf("entry of [a]: %+v, %v, %v; want %q (the refresh computed from the caller's later input)", s, ok, err, "a")
	}
}
