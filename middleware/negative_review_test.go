package middleware_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// TestRefreshAheadReadFaultKeepsEntry: a refresh ahead whose step fails
// with a terminal error, while the store's reads fail, must not store the
// failure over the live result the trigger was served: the store could not
// say the old result had expired.
func TestRefreshAheadReadFaultKeepsEntry(t *testing.T) {
	store := &faultyStore{Store: memory.New(10)}
	var runs atomic.Int64
	errGone := errors.New("gone")
	h := middleware.New("fx", func(_ context.Context, q query) (string, error) {
		if runs.Add(1) == 1 {
			return "rate", nil
		}
		// The store's reads start failing while the refresh runs.
		store.mu.Lock()
		store.getErr = errDisk
		store.mu.Unlock()
		return "", errGone
	}, middleware.WithPersistence(store, scope.Global, aheadTTL), middleware.WithRefreshAhead(aheadWindow),
		middleware.WithErrorCaching(func(error) (string, bool) { return "gone", true }, time.Hour),
		middleware.WithLogger(nil))
	ctx := context.Background()
	q := query{"eur", 1}
	if v, err := h.Call(ctx, q); err != nil || v != "rate" {
		t.Fatalf("first call: %q, %v", v, err)
	}
	time.Sleep(2 * time.Millisecond)
	if v, err := h.Call(ctx, q); err != nil || v != "rate" {
		t.Fatalf("trigger: %q, %v", v, err)
	}
	waitFor(t, "the failed refresh", func() bool { return h.Stats().Misses[middleware.ReasonRefreshAhead] == 1 })
	store.mu.Lock()
	store.getErr = nil
	store.mu.Unlock()
	if v, err := h.Call(ctx, q); err != nil || v != "rate" {
		t.Fatalf("after a failed refresh over a read fault: %q, %v; want the live result", v, err)
	}
	waitFor(t, "the last refresh", func() bool { return int64(h.Stats().Runs) == runs.Load() })
}

// TestMissReadFaultKeepsEntry: the same for a plain miss flight whose look
// and pre-write check both fail to read: a live result may be stored.
func TestMissReadFaultKeepsEntry(t *testing.T) {
	mem := memory.New(10)
	store := &faultyStore{Store: mem}
	errGone := errors.New("gone")
	h := middleware.New("fx", func(_ context.Context, q query) (string, error) {
		if q.Limit == 1 {
			return "rate", nil
		}
		return "", errGone
	}, middleware.WithPersistence(store, scope.Global, time.Hour),
		middleware.WithErrorCaching(func(error) (string, bool) { return "gone", true }, time.Hour),
		middleware.WithLogger(nil))
	ctx := context.Background()
	q := query{"eur", 1}
	if _, err := h.Call(ctx, q); err != nil {
		t.Fatal(err)
	}
	// Another step of the same key: simulate a flight whose reads fail
	// and whose step fails terminally over the live entry.
	h2 := middleware.New("fx", func(_ context.Context, q query) (string, error) { return "", errGone },
		middleware.WithPersistence(store, scope.Global, time.Hour),
		middleware.WithErrorCaching(func(error) (string, bool) { return "gone", true }, time.Hour),
		middleware.WithLogger(nil))
	store.mu.Lock()
	store.getErr = errDisk
	store.mu.Unlock()
	if _, err := h2.Call(ctx, q); !errors.Is(err, errGone) {
		t.Fatalf("faulty read: %v; want the step's error", err)
	}
	store.mu.Lock()
	store.getErr = nil
	store.mu.Unlock()
	if v, err := h.Call(ctx, q); err != nil || v != "rate" {
		t.Fatalf("after a failure stored over a read fault: %q, %v; want the live result", v, err)
	}
}
