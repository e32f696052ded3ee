package middleware_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func TestEndNilPurgesWorkflowEntriesOnly(t *testing.T) {
	front, back := memory.New(100), memory.New(100)
	store := backends.Tiered(front, back)
	var wRuns, gRuns atomic.Int64
	wf := middleware.Wrap("wf", counted(&wRuns), middleware.WithPersistence(store, scope.Workflow, time.Hour))
	gl := middleware.Wrap("gl", counted(&gRuns), middleware.WithPersistence(store, scope.Global, time.Hour))

	ctx, exec := scope.Begin(context.Background(), "exec_1")
	wf(ctx, query{"a", 1})
	gl(ctx, query{"a", 1})
	if front.Len() != 2 || back.Len() != 2 {
		t.Fatalf("front %d, back %d entries, want 2 each", front.Len(), back.Len())
	}
	if err := exec.End(nil); err != nil {
		t.Fatal(err)
	}
	if front.Len() != 1 || back.Len() != 1 {
		t.Fatalf("after End(nil): front %d, back %d entries, want only the Global one", front.Len(), back.Len())
	}
	ctx2, exec2 := scope.Begin(context.Background(), "exec_2")
	gl(ctx2, query{"a", 1})
	exec2.End(nil)
	if gRuns.Load() != 1 {
		t.Fatalf("global runs = %d, want 1 (End must not touch Global entries)", gRuns.Load())
	}
}

func TestEndErrKeepsCheckpointsForResume(t *testing.T) {
	// The back tier stands for a durable store that outlives the process;
	// the front tier of the "new process" starts empty.
	back := memory.New(100)
	var runs atomic.Int64
	newProcess := func() middleware.Step[query, string] {
		return middleware.Wrap("step1", counted(&runs),
			middleware.WithPersistence(backends.Tiered(memory.New(100), back), scope.Workflow, time.Hour))
	}

	ctx, exec := scope.Begin(context.Background(), "exec_crash")
	newProcess()(ctx, query{"a", 1})
	exec.End(errors.New("step 2 failed"))
	if back.Len() != 1 {
		t.Fatalf("End(err) removed the checkpoint: back has %d entries", back.Len())
	}

	// The re-run only reads its checkpoint, and End(nil) must still purge it.
	ctx, exec = scope.Begin(context.Background(), "exec_crash")
	if got, err := newProcess()(ctx, query{"a", 1}); err != nil || got != "a:1" {
		t.Fatalf("resume: %q, %v", got, err)
	}
	if runs.Load() != 1 {
		t.Fatalf("runs = %d, want 1 (resumed from checkpoint)", runs.Load())
	}
	if err := exec.End(nil); err != nil {
		t.Fatal(err)
	}
	if back.Len() != 0 {
		t.Fatalf("End(nil) after a read-only resume left %d entries", back.Len())
	}
}
