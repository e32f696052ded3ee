package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/viccon/sturdyc"
	"golang.org/x/sync/singleflight"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/internal/redistest"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// Input is the step's input: every implementation derives its key from it.
type Input struct {
	Tenant string
	ID     int
	Page   int
}

// Output is the step's result.
type Output struct {
	ID    int
	Name  string
	Score float64
}

// StepFunc is a step, or a step made persistent by one of the systems.
type StepFunc = func(ctx context.Context, in Input) (Output, error)

// ttl is every system's time to live: longer than any run, so that nothing
// expires while it is measured.
const ttl = time.Hour

// Kind tells the implementations apart.
type Kind uint8

// The implementations compared; the letters are the ones the report uses.
const (
	Direct     Kind = iota + 1 // (a) the step called directly, no cache
	HandRolled                 // (b) singleflight + sync.Map + JSON/SHA-256 key
	Otter                      // (c) github.com/maypok86/otter/v2 with a loader
	Sturdyc                    // (d) github.com/viccon/sturdyc GetOrFetch
	Docket
)

// System is one implementation, configured: for Docket, a scope and a tier.
type System struct {
	// Name names the system in benchmark names and the report.
	Name  string
	Kind  Kind
	Scope scope.Scope // Docket only
	Tier  string      // "memory", "memory+badger", "memory+sqlite" or "memory+redis"; peers: "memory", direct: ""
}

// Systems lists the peers, then Docket in each scope and tier. With
// workflowOnly, Docket rows are Workflow-scoped only.
//
// Where the peers' semantics differ from Docket's:
//   - None has a durable tier: the memory+badger and memory+sqlite rows
//     compare Docket with a durable tier against peers that keep results in
//     memory only.
//   - None knows executions. In the executions scenarios each peer puts the
//     execution ID into its key and, at the end of an execution, deletes the
//     keys that execution stored, which it tracks itself (as a hand-rolled
//     version would).
//   - Cancellation: hand-rolled (singleflight.Do) and sturdyc make every
//     caller wait for the flight whatever its context; otter lets a waiting
//     caller leave when its context ends, but the caller that runs the
//     loader waits for it and the loader gets that caller's context. Docket
//     lets every caller leave and cancels the step when the last has gone.
//   - Panics: sturdyc turns a panic in the step into an error; the others
//     re-raise it in the callers.
//   - Keys: the peers key on a hex string of SHA-256 over the step name, the
//     execution ID (executions only) and the JSON encoding of the input;
//     Docket on its canonical encoding of the same input. (f), which only
//     the hits scenarios run, keys on SHA-256 over the input written in
//     binary by hand.
func Systems(workflowOnly bool) []System {
	sys := []System{
		{Name: "direct", Kind: Direct},
		{Name: "hand-rolled", Kind: HandRolled, Tier: "memory"},
		{Name: "otter", Kind: Otter, Tier: "memory"},
		{Name: "sturdyc", Kind: Sturdyc, Tier: "memory"},
	}
	scopes := []scope.Scope{scope.Workflow, scope.Global}
	if workflowOnly {
		scopes = scopes[:1]
	}
	for _, sc := range scopes {
		for _, tier := range tiers() {
			sys = append(sys, System{Name: "docket-" + sc.String() + "-" + tier, Kind: Docket, Scope: sc, Tier: tier})
		}
	}
	return sys
}

// tiers lists the tiers Docket runs on: memory+redis only where a
// redis-server can be started (each run starts its own on a free loopback
// port, with internal/redistest).
func tiers() []string {
	t := []string{"memory", "memory+badger", "memory+sqlite"}
	if _, err := exec.LookPath(redistest.Binary); err == nil {
		t = append(t, "memory+redis")
	}
	return t
}

// instance is a system built for one benchmark run, with a fresh store.
type instance struct {
	// wrap makes fn persistent under name; every step of an instance shares
	// its store.
	wrap func(name string, fn StepFunc) StepFunc
	// begin starts an execution; end ends it successfully.
	begin func(ctx context.Context, id string) (_ context.Context, end func() error)
}

// build makes an instance holding at most capacity entries. What it opens is
// closed by b's cleanup.
func (s System) build(b testing.TB, capacity int) *instance {
	if inst, ok := buildPeer(b, s, capacity); ok {
		return inst
	}
	switch s.Kind {
	case Direct:
		return &instance{
			wrap: func(_ string, fn StepFunc) StepFunc { return fn },
			begin: func(ctx context.Context, _ string) (context.Context, func() error) {
				return ctx, func() error { return nil }
			},
		}
	case HandRolled:
		h := &handRolled{}
		return &instance{wrap: h.wrap, begin: beginPeer}
	case Otter:
		c := otter.Must(&otter.Options[string, Output]{
			MaximumSize:      capacity,
			ExpiryCalculator: otter.ExpiryWriting[string, Output](ttl),
		})
		b.Cleanup(func() { c.StopAllGoroutines() })
		return &instance{wrap: func(name string, fn StepFunc) StepFunc { return otterStep(c, name, fn) }, begin: beginPeer}
	case Sturdyc:
		// 64 shards, as many as a Docket memory store of this size has by
		// default; no eviction goroutine, which sturdyc never stops.
		c := sturdyc.New[Output](capacity, 64, ttl, 10, sturdyc.WithNoContinuousEvictions())
		return &instance{wrap: func(name string, fn StepFunc) StepFunc { return sturdycStep(c, name, fn) }, begin: beginPeer}
	case Docket:
		var store backends.Store = memory.New(capacity)
		switch s.Tier {
		case "memory+badger":
			db, err := badger.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			store = backends.Tiered(memory.New(capacity), db)
		case "memory+sqlite":
			db, err := sqlite.Open(filepath.Join(b.TempDir(), "docket.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			store = backends.Tiered(memory.New(capacity), db)
		case "memory+redis":
			srv := redistest.Start(b)
			store = backends.Tiered(memory.New(capacity), redis.New(srv.Client(b)))
		}
		return &instance{
			wrap: func(name string, fn StepFunc) StepFunc {
				return middleware.Wrap(name, fn, middleware.WithPersistence(store, s.Scope, ttl))
			},
			begin: func(ctx context.Context, id string) (context.Context, func() error) {
				ctx, exec := scope.Begin(ctx, id)
				return ctx, func() error { return exec.End(nil) }
			},
		}
	}
	panic("bench: unknown system kind")
}

// peerExec is a peer's execution: the peers key on its ID and delete what
// it stored when it ends.
type peerExec struct {
	id     string
	mu     sync.Mutex
	stored []func()
}

type peerExecKey struct{}

func beginPeer(ctx context.Context, id string) (context.Context, func() error) {
	e := &peerExec{id: id}
	return context.WithValue(ctx, peerExecKey{}, e), func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, forget := range e.stored {
			forget()
		}
		e.stored = nil
		return nil
	}
}

// stored records that the execution in ctx, if any, stored a key.
func stored(ctx context.Context, forget func()) {
	if e, ok := ctx.Value(peerExecKey{}).(*peerExec); ok {
		e.mu.Lock()
		e.stored = append(e.stored, forget)
		e.mu.Unlock()
	}
}

// peerKey is the key every peer uses: SHA-256 over the step name, the
// execution ID (if ctx has one) and the input's JSON, as a hex string. It is
// what a hand-rolled cache typically does.
func peerKey(ctx context.Context, name string, in *Input) (string, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	var exec string
	if e, ok := ctx.Value(peerExecKey{}).(*peerExec); ok {
		exec = e.id
	}
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(exec))
	h.Write([]byte{0})
	h.Write(data)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])), nil
}

// handRolled is baseline (b): a sync.Map of results with an expiry each, and
// singleflight so that concurrent misses of one key run the step once. The
// flight looks in the map again before it runs the step, so that a flight
// starting just after another has stored the result does not run it twice.
// The map has no bound: nothing is evicted.
type handRolled struct {
	group singleflight.Group
	m     sync.Map // key → handEntry
}

type handEntry struct {
	out     Output
	expires time.Time
}

func (h *handRolled) lookup(key string) (Output, bool) {
	if v, ok := h.m.Load(key); ok {
		if e := v.(handEntry); time.Now().Before(e.expires) {
			return e.out, true
		}
	}
	return Output{}, false
}

func (h *handRolled) wrap(name string, fn StepFunc) StepFunc {
	return func(ctx context.Context, in Input) (Output, error) {
		key, err := peerKey(ctx, name, &in)
		if err != nil {
			return Output{}, err
		}
		if out, ok := h.lookup(key); ok {
			return out, nil
		}
		v, err, _ := h.group.Do(key, func() (any, error) {
			if out, ok := h.lookup(key); ok {
				return out, nil
			}
			out, err := fn(ctx, in)
			if err != nil {
				return nil, err
			}
			h.m.Store(key, handEntry{out: out, expires: time.Now().Add(ttl)})
			stored(ctx, func() { h.m.Delete(key) })
			return out, nil
		})
		if err != nil {
			return Output{}, err
		}
		return v.(Output), nil
	}
}

// otterStep is baseline (c): an otter cache with a loader; otter
// deduplicates concurrent loads of a key itself.
func otterStep(c *otter.Cache[string, Output], name string, fn StepFunc) StepFunc {
	return func(ctx context.Context, in Input) (Output, error) {
		key, err := peerKey(ctx, name, &in)
		if err != nil {
			return Output{}, err
		}
		return c.Get(ctx, key, otter.LoaderFunc[string, Output](func(ctx context.Context, key string) (Output, error) {
			out, err := fn(ctx, in)
			if err == nil {
				stored(ctx, func() { c.Invalidate(key) })
			}
			return out, err
		}))
	}
}

// sturdycStep is baseline (d): sturdyc's GetOrFetch, which deduplicates
// concurrent fetches of a key itself.
func sturdycStep(c *sturdyc.Client[Output], name string, fn StepFunc) StepFunc {
	return func(ctx context.Context, in Input) (Output, error) {
		key, err := peerKey(ctx, name, &in)
		if err != nil {
			return Output{}, err
		}
		return c.GetOrFetch(ctx, key, func(ctx context.Context) (Output, error) {
			out, err := fn(ctx, in)
			if err == nil {
				stored(ctx, func() { c.Delete(key) })
			}
			return out, err
		})
	}
}
