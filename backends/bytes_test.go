package backends_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/storetest"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// mapBytes is the smallest ByteStore: a locked map. It removes expired
// records when asked (DeleteExpired), as a store with columns does in the
// background.
type mapBytes struct {
	mu      sync.Mutex
	m       map[string]backends.Record
	puts    atomic.Int64 // Put calls
	closed  atomic.Bool
	failKey string // a Put with a record whose key contains it fails (fault injection)
}

func newMapBytes() *mapBytes { return &mapBytes{m: map[string]backends.Record{}} }

func (s *mapBytes) Get(_ context.Context, key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[string(key)]
	if !ok {
		return nil, backends.ErrNotFound
	}
	return bytes.Clone(r.Value), nil
}

func (s *mapBytes) Put(_ context.Context, batch []backends.Record) error {
	s.puts.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		if s.failKey != "" && strings.Contains(string(r.Key), s.failKey) {
			return errors.New("mapBytes: injected fault")
		}
	}
	for _, r := range batch {
		s.m[string(r.Key)] = r
	}
	return nil
}

func (s *mapBytes) Delete(_ context.Context, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, string(key))
	return nil
}

func (s *mapBytes) DeleteExecution(_ context.Context, id string, prefix []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.m {
		if r.Meta.Scope == scope.Workflow && r.Meta.Execution == id {
			if !strings.HasPrefix(k, string(prefix)) {
				return n, fmt.Errorf("record of %q under a key without its prefix", id)
			}
			delete(s.m, k)
			n++
		}
	}
	return n, nil
}

func (s *mapBytes) RetainExecution(_ context.Context, id string, prefix []byte, _ time.Time,
	rewrite func([]byte) ([]byte, time.Time, bool)) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.m {
		if r.Meta.Scope != scope.Workflow || r.Meta.Execution != id {
			continue
		}
		if !strings.HasPrefix(k, string(prefix)) {
			return n, fmt.Errorf("record of %q under a key without its prefix", id)
		}
		v, exp, ok := rewrite(r.Value)
		if !ok {
			delete(s.m, k)
			continue
		}
		r.Value, r.Meta.Expires = v, exp
		s.m[k] = r
		n++
	}
	return n, nil
}

func (s *mapBytes) DeleteExpired() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.m {
		if !r.Meta.Expires.IsZero() && !r.Meta.Expires.After(time.Now()) {
			delete(s.m, k)
			n++
		}
	}
	return n
}

func (s *mapBytes) Close() error {
	if s.closed.Swap(true) {
		return errors.New("mapBytes: closed twice")
	}
	return nil
}

// mapTier is a ByteTier on a mapBytes, with DeleteExpired passed through.
type mapTier struct {
	*backends.ByteTier
	bytes *mapBytes
}

func (t mapTier) DeleteExpired() int { return t.bytes.DeleteExpired() }

func newMapTier(t *testing.T) (*backends.ByteTier, *mapBytes) {
	b := newMapBytes()
	tier := backends.NewByteTier("map", b)
	t.Cleanup(func() { _ = tier.Close() })
	return tier, b
}

func TestByteTierConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backends.Store {
		tier, b := newMapTier(t)
		return &mapTier{tier, b}
	})
}

func TestTieredConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backends.Store {
		tier, b := newMapTier(t)
		return backends.Tiered(memory.New(10_000), &mapTier{tier, b})
	})
}

type textCodec struct{}

func (textCodec) ID() uint8                       { return 9 }
func (textCodec) Encode(v any) ([]byte, error)    { return []byte(v.(string)), nil }
func (textCodec) Decode(data []byte) (any, error) { return string(data), nil }

func bkey(i int) keyer.Key {
	return keyer.Key{Scope: scope.Global, Step: "s", Sum: keyer.Sum{byte(i), byte(i >> 8), 0xEE}}
}

// The ByteStore receives the metadata as fields, the key's execution for
// Workflow entries.
func TestByteTierMeta(t *testing.T) {
	tier, b := newMapTier(t)
	created, expires := time.Now(), time.Now().Add(time.Hour)
	k := keyer.Key{Scope: scope.Workflow, Execution: "exec", Step: "fetch", Sum: keyer.Sum{1}}
	e := backends.Entry{Value: "v", Created: created, Expires: expires, Execution: "producer", Origin: []byte{7}, Version: "v2"}
	if err := tier.Set(context.Background(), k, e, textCodec{}); err != nil {
		t.Fatal(err)
	}
	bk, _ := backends.EntryKey(nil, k)
	r := b.m[string(bk)]
	want := backends.Meta{Step: "fetch", Scope: scope.Workflow, Execution: "exec", Version: "v2", Created: created, Expires: expires, Codec: 9, Origin: []byte{7}}
	if fmt.Sprint(r.Meta) != fmt.Sprint(want) {
		t.Fatalf("Meta = %+v\nwant   %+v", r.Meta, want)
	}
	g := keyer.Key{Scope: scope.Global, Step: "fetch", Sum: keyer.Sum{1}}
	if err := tier.Set(context.Background(), g, e, textCodec{}); err != nil {
		t.Fatal(err)
	}
	gk, _ := backends.EntryKey(nil, g)
	if m := b.m[string(gk)].Meta; m.Execution != "producer" || m.Scope != scope.Global {
		t.Fatalf("Global Meta = %+v; want the producing execution", m)
	}
}

// Concurrent Sets share Puts, and a record the ByteStore refuses fails
// alone: the others of its batch are stored.
func TestGroupCommit(t *testing.T) {
	tier, b := newMapTier(t)
	bad := keyer.Key{Scope: scope.Workflow, Execution: "poison", Step: "s"}
	b.failKey = "poison"
	const writers, each = 16, 50
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				k := bkey(g*each + i)
				if i == 25 && g%4 == 0 {
					k = bad
				}
				err := tier.Set(context.Background(), k, backends.Entry{Value: "v"}, textCodec{})
				if (k == bad) != (err != nil) {
					t.Errorf("Set(%v) = %v", k, err)
				}
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != writers/4 {
		t.Errorf("%d Sets failed; want %d", failed.Load(), writers/4)
	}
	for g := range writers {
		for i := range each {
			if i == 25 && g%4 == 0 {
				continue
			}
			if _, err := tier.Get(context.Background(), bkey(g*each+i), textCodec{}); err != nil {
				t.Fatalf("Get(%d) = %v", g*each+i, err)
			}
		}
	}
	t.Logf("%d Sets in %d Puts", writers*each, b.puts.Load())
}

// A zero ByteTier or TieredStore errs on every method; none panics.
func TestZeroStores(t *testing.T) {
	ctx := context.Background()
	for _, s := range []backends.Store{&backends.ByteTier{}, &backends.TieredStore{}} {
		t.Run(fmt.Sprintf("%T", s), func(t *testing.T) {
			errs := map[string]error{}
			_, errs["Get"] = s.Get(ctx, bkey(1), textCodec{})
			errs["Set"] = s.Set(ctx, bkey(1), backends.Entry{Value: "v"}, textCodec{})
			errs["Delete"] = s.Delete(ctx, bkey(1))
			_, errs["PurgeExecution"] = s.PurgeExecution(ctx, "e")
			_, errs["RetainExecution"] = backends.RetainExecution(ctx, s, "e", time.Now().Add(time.Hour))
			if c, ok := s.(interface{ Close() error }); ok {
				errs["Close"] = c.Close()
			}
			for name, err := range errs {
				if !errors.Is(err, backends.ErrClosed) || !strings.Contains(err.Error(), "not made with") {
					t.Errorf("%s = %v; want ErrClosed saying how to make one", name, err)
				}
			}
			_ = s.Name()
			_ = backends.EncodesValues(s)
		})
	}
}

// An UnmadeTier returns its error, as it is, from every method, so that a
// store's zero value that delegates to one says how to make the store.
func TestUnmadeTier(t *testing.T) {
	ctx := context.Background()
	errUnmade := fmt.Errorf("x: store not made (use x.Open): %w", backends.ErrClosed)
	tier := backends.UnmadeTier("x", errUnmade)
	errs := map[string]error{"Close": tier.Close()}
	_, errs["Get"] = tier.Get(ctx, bkey(1), textCodec{})
	errs["Set"] = tier.Set(ctx, bkey(1), backends.Entry{Value: "v"}, textCodec{})
	errs["Delete"] = tier.Delete(ctx, bkey(1))
	_, errs["PurgeExecution"] = tier.PurgeExecution(ctx, "e")
	errs["List"] = tier.List(ctx, backends.Filter{}, func(backends.Info) error { return nil })
	_, errs["DeleteMatching"] = tier.DeleteMatching(ctx, backends.Filter{})
	_, _, errs["Inspect"] = tier.Inspect(ctx, bkey(1))
	_, errs["RetainExecution"] = tier.RetainExecution(ctx, "e", time.Now().Add(time.Hour))
	for name, err := range errs {
		if err != errUnmade {
			t.Errorf("%s = %v; want %v", name, err, errUnmade)
		}
	}
	if tier.Name() != "x" || tier.ByteStore() != nil {
		t.Errorf("Name %q, ByteStore %v; want x and nil", tier.Name(), tier.ByteStore())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("UnmadeTier with a nil error did not panic")
		}
	}()
	backends.UnmadeTier("x", nil)
}

func TestByteTierCloseOnce(t *testing.T) {
	tier, b := newMapTier(t)
	if err := tier.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tier.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if !b.closed.Load() {
		t.Fatal("ByteStore not closed")
	}
}

func TestNewByteTierPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewByteTier(nil) did not panic")
		}
	}()
	backends.NewByteTier("x", nil)
}

// plainBytes is a ByteStore with none of the optional extensions.
type plainBytes struct{ backends.ByteStore }

// A ByteTier on a ByteStore that is not a ByteRetainer cannot retain: its
// RetainExecution is ErrUnsupported, which is errors.ErrUnsupported too (so
// that package scope purges it), and touches nothing; nor can a Tiered
// store with such a tier.
func TestRetainUnsupported(t *testing.T) {
	ctx := context.Background()
	tier := backends.NewByteTier("plain", plainBytes{newMapBytes()})
	k := keyer.Key{Scope: scope.Workflow, Execution: "e", Step: "s"}
	if err := tier.Set(ctx, k, backends.Entry{Value: "v"}, textCodec{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []backends.Store{tier, backends.Tiered(memory.New(10), tier)} {
		n, err := backends.RetainExecution(ctx, s, "e", time.Now().Add(time.Hour))
		if !errors.Is(err, backends.ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s: RetainExecution = %d, %v; want ErrUnsupported", s.Name(), n, err)
		}
	}
	if e, err := tier.Get(ctx, k, textCodec{}); err != nil || !e.Expires.IsZero() {
		t.Errorf("Get after a refused RetainExecution = %+v, %v; want the entry untouched", e, err)
	}
	if !errors.Is(backends.ErrUnsupported, errors.ErrUnsupported) {
		t.Error("backends.ErrUnsupported is not errors.ErrUnsupported")
	}
}
