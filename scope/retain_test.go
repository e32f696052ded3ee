package scope_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var errRetain = errors.New("retain failed (injected)")

// failingRetainer is a memory store whose RetainExecution fails (fault
// injection).
type failingRetainer struct{ *memory.Store }

func (failingRetainer) RetainExecution(context.Context, string, time.Time) (int, error) {
	return 0, errRetain
}

// onlyPurger is a store that can purge but not retain.
type onlyPurger struct{ s *memory.Store }

func (p *onlyPurger) PurgeExecution(ctx context.Context, id string) (int, error) {
	return p.s.PurgeExecution(ctx, id)
}

// stored puts one Workflow entry of execution id, without expiry, in s.
func stored(t *testing.T, s *memory.Store, id string) {
	t.Helper()
	k := keyer.Key{Scope: scope.Workflow, Execution: id, Step: "step"}
	if err := s.Set(context.Background(), k, backends.Entry{Value: "v"}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestEndRetention: End(nil) of an execution begun WithRetention asks its
// stores to keep its entries for the retention instead of purging them; a
// store that cannot, or fails to, is purged instead, and End says so. A
// retention that is not positive is none.
func TestEndRetention(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention time.Duration
		store     func(*memory.Store) scope.Purger
		kept      bool
		err       error // End's error wraps it; nil: End returns nil
	}{
		{"retained", time.Hour, func(s *memory.Store) scope.Purger { return s }, true, nil},
		{"no retention", 0, func(s *memory.Store) scope.Purger { return s }, false, nil},
		{"negative retention", -time.Hour, func(s *memory.Store) scope.Purger { return s }, false, nil},
		{"cannot retain", time.Hour, func(s *memory.Store) scope.Purger { return &onlyPurger{s} }, false, errors.ErrUnsupported},
		{"retain fails", time.Hour, func(s *memory.Store) scope.Purger { return failingRetainer{s} }, false, errRetain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.New(100)
			stored(t, mem, "exec_1")
			_, exec := scope.Begin(context.Background(), "exec_1", scope.WithRetention(tc.retention))
			if err := exec.Track(tc.store(mem)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := exec.End(nil)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("End(nil) = %v; want nil", err)
			case tc.err != nil && (!errors.Is(err, tc.err) || !strings.HasPrefix(err.Error(), "scope: ")):
				t.Fatalf("End(nil) = %v; want an error of package scope wrapping %v", err, tc.err)
			}
			var expires []time.Time
			_ = mem.List(context.Background(), backends.Filter{Execution: "exec_1"}, func(i backends.Info) error {
				expires = append(expires, i.Expires)
				return nil
			})
			switch {
			case !tc.kept && len(expires) != 0:
				t.Fatalf("%d entries kept; want the execution purged", len(expires))
			case tc.kept && len(expires) != 1:
				t.Fatalf("%d entries kept; want 1", len(expires))
			case tc.kept && (expires[0].Before(start.Add(tc.retention)) || expires[0].After(time.Now().Add(tc.retention))):
				t.Fatalf("the kept entry expires at %v; want End's time plus %v", expires[0], tc.retention)
			}
			if !exec.Dropped() {
				t.Error("Dropped = false after End(nil): a call in flight would store its result")
			}
		})
	}
}
