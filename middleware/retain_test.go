package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// email is the input of the "send email" step of the retention tests.
type email struct{ To, Subject string }

// mailer is a "send email" step that counts the emails it sends.
func mailer(sent *atomic.Int64) func(context.Context, email) (string, error) {
	return func(_ context.Context, e email) (string, error) {
		return fmt.Sprintf("message %d to %s", sent.Add(1), e.To), nil
	}
}

// order runs the workflow of one order: execution id sends its
// confirmation, then ends with End(nil).
func order(t *testing.T, send middleware.Step[email, string], id string, opts ...scope.Option) string {
	t.Helper()
	ctx, exec := scope.Begin(context.Background(), id, opts...)
	msg, err := send(ctx, email{"ann@example.com", "order " + id})
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.End(nil); err != nil {
		t.Fatalf("End(nil): %v", err)
	}
	return msg
}

// TestRetentionReplaysCompletedExecution is the idempotent re-run: an
// execution that completed with retention is replayed by a re-run of its
// ID, which sends no second email, until the retention has passed; then a
// re-run sends again. Without the option End(nil) drops the results.
func TestRetentionReplaysCompletedExecution(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			var sent atomic.Int64
			send := middleware.Wrap("send_email", mailer(&sent),
				middleware.WithPersistence(tier.open(t), scope.Workflow, 24*time.Hour))

			first := order(t, send, "order-42", scope.WithRetention(time.Hour))
			if sent.Load() != 1 {
				t.Fatalf("sent %d emails, want 1", sent.Load())
			}
			// The re-run replays the result; ending it with a short
			// retention shortens the first one, never lengthens it.
			if again := order(t, send, "order-42", scope.WithRetention(100*time.Millisecond)); again != first || sent.Load() != 1 {
				t.Fatalf("re-run within the retention: %q, %d emails sent; want %q replayed, 1 sent", again, sent.Load(), first)
			}
			time.Sleep(150 * time.Millisecond)
			if again := order(t, send, "order-42"); again == first || sent.Load() != 2 {
				t.Fatalf("re-run after the retention: %q, %d emails sent; want a new send, 2 sent", again, sent.Load())
			}

			// Without the option, End(nil) drops the results at once.
			order(t, send, "order-43")
			order(t, send, "order-43")
			if sent.Load() != 4 {
				t.Fatalf("sent %d emails, want 4: without retention a re-run runs again", sent.Load())
			}
		})
	}
}

// TestRetentionSurvivesReopen: a retained execution is replayed by a
// re-run in a new process, from Badger, within the retention.
func TestRetentionSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	var sent atomic.Int64
	open := func() (middleware.Step[email, string], *badger.Store) {
		db, err := badger.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return middleware.Wrap("send_email", mailer(&sent),
			middleware.WithPersistence(backends.Tiered(memory.New(100), db), scope.Workflow, 24*time.Hour)), db
	}
	send, db := open()
	first := order(t, send, "order-42", scope.WithRetention(time.Hour))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	send, db = open()
	defer db.Close()
	if again := order(t, send, "order-42"); again != first || sent.Load() != 1 {
		t.Fatalf("re-run after reopening: %q, %d emails sent; want %q replayed, 1 sent", again, sent.Load(), first)
	}
	// That re-run ended without retention: its results are gone.
	if n, err := db.PurgeExecution(context.Background(), "order-42"); n != 0 || err != nil {
		t.Fatalf("PurgeExecution after End(nil) = %d, %v; want 0", n, err)
	}
}

// TestRetentionUnsupported: a store that cannot retain is purged at
// End(nil), as without the option, and End says so with an error wrapping
// errors.ErrUnsupported.
func TestRetentionUnsupported(t *testing.T) {
	var sent atomic.Int64
	store := &faultyStore{Store: memory.New(100)} // no RetainExecution
	send := middleware.Wrap("send_email", mailer(&sent), middleware.WithPersistence(store, scope.Workflow, time.Hour))
	ctx, exec := scope.Begin(context.Background(), "order-42", scope.WithRetention(time.Hour))
	if _, err := send(ctx, email{To: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := exec.End(nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("End(nil) = %v; want an error wrapping errors.ErrUnsupported", err)
	}
	order(t, send, "order-42")
	if sent.Load() != 2 {
		t.Fatalf("sent %d emails, want 2: a store that cannot retain is purged", sent.Load())
	}
}
