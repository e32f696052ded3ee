package middleware_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

type report struct {
	User    string
	Limit   int
	Created time.Time
	Tags    []string
}

// TestDurableTierAcrossRestarts runs a step on memory+Badger, closes Badger,
// reopens it behind an empty memory tier and checks the result is served
// without running the step, for both scopes and every codec.
func TestDurableTierAcrossRestarts(t *testing.T) {
	codecs := []codec.Codec{nil, codec.JSON, codec.Msgpack, codec.Gob}
	for _, s := range scopes {
		for _, c := range codecs {
			name := s.String() + "/default"
			if c != nil {
				name = s.String() + "/" + c.Name()
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				var runs atomic.Int64
				created := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
				process := func() (middleware.Step[query, report], *badger.Store, *memory.Store) {
					db, err := badger.Open(dir)
					if err != nil {
						t.Fatal(err)
					}
					front := memory.New(100)
					step := middleware.Wrap("report", func(_ context.Context, q query) (report, error) {
						runs.Add(1)
						return report{User: q.User, Limit: q.Limit, Created: created, Tags: []string{"a", "b"}}, nil
					}, middleware.WithPersistence(backends.Tiered(front, db), s, time.Hour), middleware.WithCodec(c))
					return step, db, front
				}

				step, db, _ := process()
				ctx, _ := scope.Begin(context.Background(), "exec_restart")
				if _, err := step(ctx, query{"a", 1}); err != nil {
					t.Fatal(err)
				}
				db.Close()

				step, db, front := process()
				defer db.Close()
				ctx, exec := scope.Begin(context.Background(), "exec_restart")
				got, err := step(ctx, query{"a", 1})
				if err != nil {
					t.Fatal(err)
				}
				if runs.Load() != 1 {
					t.Fatalf("runs = %d after restart, want 1 (served from Badger)", runs.Load())
				}
				if got.User != "a" || got.Limit != 1 || !got.Created.Equal(created) || len(got.Tags) != 2 {
					t.Fatalf("restored %+v", got)
				}
				if front.Len() != 1 {
					t.Fatalf("Badger hit not promoted to the front tier")
				}
				exec.End(nil)
				_, err = db.Get(ctx, mustKey(t, s, "exec_restart"), codec.Bind[report](c))
				if s == scope.Workflow && !errors.Is(err, backends.ErrNotFound) {
					t.Fatalf("End(nil) left the Workflow entry in Badger: %v", err)
				}
				if s == scope.Global && err != nil {
					t.Fatalf("End(nil) touched the Global entry: %v", err)
				}
			})
		}
	}
}

// mustKey is the key of the call above, rebuilt with the default keyer.
func mustKey(t *testing.T, s scope.Scope, exec string) keyerKey {
	t.Helper()
	ctx, _ := scope.Begin(context.Background(), exec)
	k, err := defaultKey(ctx, s, "report", query{"a", 1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCorruptDurableEntryIsOverwritten(t *testing.T) {
	db, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var runs atomic.Int64
	mk := func(c codec.Codec) middleware.Step[query, string] {
		return middleware.Wrap("s", counted(&runs), middleware.WithPersistence(backends.Tiered(memory.New(10), db), scope.Global, time.Hour),
			middleware.WithCodec(c), middleware.WithLogger(nil))
	}
	// An entry written by another codec cannot be read back: it is a
	// corrupt entry to this step, which runs and overwrites it.
	mk(codec.JSON)(context.Background(), query{"a", 1})
	strict := middleware.Wrap("s", counted(&runs), middleware.WithPersistence(backends.Tiered(memory.New(10), db), scope.Global, time.Hour),
		middleware.WithCodec(codec.Msgpack), middleware.WithStrict(), middleware.WithLogger(nil))
	if _, err := strict(context.Background(), query{"a", 1}); !errors.Is(err, backends.ErrCorrupt) {
		t.Fatalf("strict read of a corrupt entry: err = %v, want ErrCorrupt", err)
	}
	if got, err := mk(codec.Msgpack)(context.Background(), query{"a", 1}); err != nil || got != "a:1" {
		t.Fatalf("got %q, %v", got, err)
	}
	if runs.Load() != 2 {
		t.Fatalf("runs = %d, want 2 (corrupt entry is a miss)", runs.Load())
	}
	if _, err := mk(codec.Msgpack)(context.Background(), query{"a", 1}); err != nil || runs.Load() != 2 {
		t.Fatalf("overwritten entry not served: runs = %d, err = %v", runs.Load(), err)
	}
}

func TestClosedStoreDoesNotFailCalls(t *testing.T) {
	db, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var runs atomic.Int64
	step := middleware.Wrap("s", counted(&runs), middleware.WithPersistence(db, scope.Global, time.Hour), middleware.WithLogger(nil))
	if got, err := step(context.Background(), query{"a", 1}); err != nil || got != "a:1" {
		t.Fatalf("got %q, %v; a closed store is a fault, not a failed call", got, err)
	}
	strict := middleware.Wrap("s", counted(&runs), middleware.WithPersistence(db, scope.Global, time.Hour), middleware.WithStrict(), middleware.WithLogger(nil))
	if _, err := strict(context.Background(), query{"a", 1}); !errors.Is(err, backends.ErrClosed) || !errors.Is(err, middleware.ErrStore) {
		t.Fatalf("strict on a closed store: err = %v, want ErrClosed and ErrStore", err)
	}
}

func TestNilInterfaceResult(t *testing.T) {
	var runs atomic.Int64
	step := middleware.Wrap("maybe", func(context.Context, string) (error, error) {
		runs.Add(1)
		return nil, nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	for i := 0; i < 3; i++ {
		if v, err := step(context.Background(), "x"); v != nil || err != nil {
			t.Fatalf("got %v, %v", v, err)
		}
	}
	if runs.Load() != 1 {
		t.Fatalf("runs = %d, want 1 (a nil interface result is a result)", runs.Load())
	}
}
