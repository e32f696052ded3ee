package middleware_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// faultyStore wraps a real store and fails on purpose (fault injection): its
// Get and Set return the configured errors instead of reaching the store.
type faultyStore struct {
	backends.Store
	mu     sync.Mutex
	getErr error
	setErr error
	sets   int
}

func (f *faultyStore) Get(ctx context.Context, k keyer.Key, c backends.Codec) (backends.Entry, error) {
	f.mu.Lock()
	err := f.getErr
	f.mu.Unlock()
	if err != nil {
		return backends.Entry{}, err
	}
	return f.Store.Get(ctx, k, c)
}

func (f *faultyStore) Set(ctx context.Context, k keyer.Key, e backends.Entry, c backends.Codec) error {
	f.mu.Lock()
	err := f.setErr
	f.sets++
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Store.Set(ctx, k, e, c)
}

var errDisk = errors.New("disk full (injected)")

type keyerKey = keyer.Key

// defaultKey is the key the middleware gives a call of step with in.
func defaultKey(ctx context.Context, s scope.Scope, step string, in query) (keyer.Key, error) {
	return keyer.Default.Key(ctx, keyer.StepInfo{Name: step, Scope: s}, in)
}
