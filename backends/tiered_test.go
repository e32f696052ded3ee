package backends_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var ctx = context.Background()

var errInjected = errors.New("injected fault")

// failingStore fails every operation with err: fault injection only.
type failingStore struct{ err error }

func (f failingStore) Get(context.Context, keyer.Key, backends.Codec) (backends.Entry, error) {
	return backends.Entry{}, f.err
}
func (f failingStore) Set(context.Context, keyer.Key, backends.Entry, backends.Codec) error {
	return f.err
}
func (f failingStore) Delete(context.Context, keyer.Key) error { return f.err }
func (f failingStore) PurgeExecution(context.Context, string) (int, error) {
	return 0, f.err
}
func (f failingStore) Name() string { return "failing" }

// disk is a real memory store under another name, so that tests can tell
// which tier answered.
type disk struct{ *memory.Store }

func (disk) Name() string { return "disk" }

func newDisk() disk { return disk{memory.New(100)} }

func key(exec string, n byte) keyer.Key {
	k := keyer.Key{Scope: scope.Global, Step: "step", Sum: keyer.Sum{n}}
	if exec != "" {
		k.Scope, k.Execution = scope.Workflow, exec
	}
	return k
}

func entry(v any) backends.Entry { return backends.Entry{Value: v} }

func TestTieredNames(t *testing.T) {
	front, back := memory.New(10), newDisk()
	s := backends.Tiered(front, back)
	if got := s.Name(); got != "memory+disk" {
		t.Errorf("Name = %q, want memory+disk", got)
	}
	if s.Front() != backends.Store(front) {
		t.Error("Front does not return the front tier")
	}
	var _ backends.Layered = s
}

func TestTieredPanicsOnNil(t *testing.T) {
	for _, tc := range []struct {
		name        string
		front, back backends.Store
	}{
		{"nil front", nil, memory.New(1)},
		{"nil back", memory.New(1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Tiered did not panic")
				}
			}()
			backends.Tiered(tc.front, tc.back)
		})
	}
}

func TestTieredGet(t *testing.T) {
	k := key("", 1)
	for _, tc := range []struct {
		name        string
		front, back backends.Store
		setup       func(front, back backends.Store)
		wantValue   any
		wantTier    string
		wantErr     error
		wantInFront bool // after the Get
	}{
		{
			name: "front hit", front: memory.New(10), back: newDisk(),
			setup: func(front, back backends.Store) {
				_ = front.Set(ctx, k, entry("front"), nil)
				_ = back.Set(ctx, k, entry("back"), nil)
			},
			wantValue: "front", wantTier: "memory", wantInFront: true,
		},
		{
			name: "back hit is promoted", front: memory.New(10), back: newDisk(),
			setup:     func(_, back backends.Store) { _ = back.Set(ctx, k, entry("back"), nil) },
			wantValue: "back", wantTier: "disk", wantInFront: true,
		},
		{
			name: "front fault, back hit", front: failingStore{errInjected}, back: newDisk(),
			setup:     func(_, back backends.Store) { _ = back.Set(ctx, k, entry("back"), nil) },
			wantValue: "back", wantTier: "disk",
		},
		{
			name: "both miss", front: memory.New(10), back: newDisk(),
			wantErr: backends.ErrNotFound,
		},
		{
			name: "corrupt back entry", front: memory.New(10), back: failingStore{backends.ErrCorrupt},
			wantErr: backends.ErrCorrupt,
		},
		{
			name: "back fault", front: memory.New(10), back: failingStore{errInjected},
			wantErr: errInjected,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(tc.front, tc.back)
			}
			s := backends.Tiered(tc.front, tc.back)
			e, err := s.Get(ctx, k, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get = %v, %v; want %v", e.Value, err, tc.wantErr)
				}
				return
			}
			if err != nil || e.Value != tc.wantValue || e.Tier != tc.wantTier {
				t.Fatalf("Get = %v from %q, %v; want %v from %q", e.Value, e.Tier, err, tc.wantValue, tc.wantTier)
			}
			if tc.wantInFront {
				fe, err := tc.front.Get(ctx, k, nil)
				if err != nil || fe.Value != tc.wantValue {
					t.Errorf("front after Get = %v, %v; want %v", fe.Value, err, tc.wantValue)
				}
			}
		})
	}
}

// A failed promotion leaves the Get a success: the entry itself is good.
func TestTieredGetPromoteFault(t *testing.T) {
	back := newDisk()
	k := key("", 1)
	_ = back.Set(ctx, k, entry("back"), nil)
	front := &setFails{Store: memory.New(10)}
	e, err := backends.Tiered(front, back).Get(ctx, k, nil)
	if err != nil || e.Value != "back" || e.Tier != "disk" {
		t.Fatalf("Get = %v from %q, %v; want back from disk", e.Value, e.Tier, err)
	}
	if front.sets != 1 {
		t.Errorf("front.Set called %d times, want 1 (the promotion)", front.sets)
	}
}

// setFails is a real store whose Sets fail: fault injection only.
type setFails struct {
	backends.Store
	sets int
}

func (s *setFails) Set(context.Context, keyer.Key, backends.Entry, backends.Codec) error {
	s.sets++
	return errInjected
}

func TestTieredSet(t *testing.T) {
	front, back := memory.New(10), newDisk()
	s := backends.Tiered(front, back)
	k := key("exec", 1)
	if err := s.Set(ctx, k, entry("v"), nil); err != nil {
		t.Fatal(err)
	}
	for _, tier := range []backends.Store{front, back} {
		if e, err := tier.Get(ctx, k, nil); err != nil || e.Value != "v" {
			t.Errorf("%s after Set: %v, %v", tier.Name(), e.Value, err)
		}
	}
}

// A back write fault is returned, named after the back, and the front still
// gets the value, so this process keeps serving the result.
func TestTieredSetBackFault(t *testing.T) {
	front := memory.New(10)
	s := backends.Tiered(front, failingStore{errInjected})
	k := key("exec", 1)
	err := s.Set(ctx, k, entry("v"), nil)
	if !errors.Is(err, errInjected) || !strings.HasPrefix(err.Error(), "failing: ") {
		t.Fatalf("Set = %v, want the injected fault named after the back", err)
	}
	if e, err := s.Get(ctx, k, nil); err != nil || e.Value != "v" || e.Tier != "memory" {
		t.Errorf("Get after failed back write = %v from %q, %v; want v from memory", e.Value, e.Tier, err)
	}
}

func TestTieredDelete(t *testing.T) {
	front, back := memory.New(10), newDisk()
	s := backends.Tiered(front, back)
	k := key("", 1)
	_ = s.Set(ctx, k, entry("v"), nil)
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	for _, tier := range []backends.Store{front, back} {
		if _, err := tier.Get(ctx, k, nil); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("%s after Delete: %v, want ErrNotFound", tier.Name(), err)
		}
	}
}

func TestTieredFaultsJoined(t *testing.T) {
	errFront := errors.New("front fault")
	s := backends.Tiered(failingStore{errFront}, failingStore{errInjected})
	k := key("exec", 1)
	for name, err := range map[string]error{
		"Set":    s.Set(ctx, k, entry("v"), nil),
		"Delete": s.Delete(ctx, k),
		"PurgeExecution": func() error {
			_, err := s.PurgeExecution(ctx, "exec")
			return err
		}(),
	} {
		if !errors.Is(err, errInjected) || !errors.Is(err, errFront) {
			t.Errorf("%s = %v, want both tiers' faults", name, err)
		}
	}
}

func TestTieredPurgeExecution(t *testing.T) {
	// The back holds all 7 entries, the front only the last 3 written: one
	// of a's five, the Global entry and b's.
	front, back := memory.New(3, memory.WithShards(1)), newDisk()
	s := backends.Tiered(front, back)
	for i := range byte(5) {
		_ = s.Set(ctx, key("a", i), entry(i), nil)
	}
	_ = s.Set(ctx, key("", 9), entry("global"), nil)
	_ = s.Set(ctx, key("b", 1), entry("b"), nil)

	n, err := s.PurgeExecution(ctx, "a")
	if err != nil || n != 5 {
		t.Fatalf("PurgeExecution(a) = %d, %v; want 5 (each entry once)", n, err)
	}
	for i := range byte(5) {
		if _, err := s.Get(ctx, key("a", i), nil); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("a/%d after purge: %v", i, err)
		}
	}
	for _, k := range []keyer.Key{key("", 9), key("b", 1)} {
		if _, err := s.Get(ctx, k, nil); err != nil {
			t.Errorf("%v after purging a: %v", k, err)
		}
	}
	if n, _ := s.PurgeExecution(ctx, "a"); n != 0 {
		t.Errorf("second PurgeExecution(a) = %d, want 0", n)
	}
}
