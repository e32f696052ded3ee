package redis_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

func TestSetGet(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	for _, k := range []keyer.Key{globalKey(1), workflowKey("exec_1", 1), workflowKey("{}:exec with braces", 1)} {
		t.Run(k.Scope.String()+"/"+k.Execution, func(t *testing.T) {
			if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Get before Set: %v, want ErrNotFound", err)
			}
			e := entry("a", 1, time.Hour)
			e.Origin = []byte("trace and span")
			set(t, s, k, e)
			got := want(t, s, k, result{"a", 1})
			if got.Tier != "redis" || !got.Created.Equal(e.Created) || !got.Expires.Equal(e.Expires) ||
				got.Execution != "exec" || string(got.Origin) != "trace and span" {
				t.Fatalf("Get = %+v, want the stored fields of %+v and Tier redis", got, e)
			}
			set(t, s, k, entry("b", 2, time.Hour))
			want(t, s, k, result{"b", 2})
			if err := s.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestCluster runs the Store on a Redis Cluster client, against a
// one-node cluster, which refuses scripts and commands whose keys are in
// different slots as a larger one does: each entry's keys, and an
// execution's index, share one slot.
func TestCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	s := redis.New(srv.ClusterClient(t), redis.WithLeaseTTL(time.Second))
	for _, k := range []keyer.Key{globalKey(1), workflowKey("exec}{", 1)} {
		set(t, s, k, entry("a", 1, time.Hour))
		want(t, s, k, result{"a", 1})
		if e, l, err := s.Acquire(ctx, k, resultCodec); err != nil || l != nil || e.Value != (result{"a", 1}) {
			t.Fatalf("Acquire of a stored key: %v, %v, %v", e.Value, l, err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// A waiter in another Store is woken through sharded pub/sub.
	k := workflowKey("exec}{", 2)
	l := mustLease(t, s, k)
	other := redis.New(srv.ClusterClient(t), redis.WithLeaseTTL(time.Second), redis.WithPollInterval(time.Minute))
	got := make(chan backends.Entry, 1)
	go func() {
		e, _, err := other.Acquire(ctx, k, resultCodec)
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := l.Commit(ctx, entry("b", 2, time.Hour), resultCodec); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Value != (result{"b", 2}) {
			t.Fatalf("waiter got %v", e.Value)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("waiter not woken by the commit")
	}
	set(t, s, workflowKey("exec}{", 3), entry("c", 3, time.Hour))
	if n, err := s.PurgeExecution(ctx, "exec}{"); err != nil || n != 2 {
		t.Fatalf("PurgeExecution = %d, %v; want 2", n, err)
	}
}

func TestInvalidKey(t *testing.T) {
	s := newStore(t, redistest.Start(t))
	k := keyer.Key{Scope: scope.Scope(7)}
	for name, err := range map[string]error{
		"Get":    func() error { _, err := s.Get(ctx, k, resultCodec); return err }(),
		"Set":    s.Set(ctx, k, entry("a", 1, 0), resultCodec),
		"Delete": s.Delete(ctx, k),
		"Acquire": func() error {
			_, _, err := s.Acquire(ctx, k, resultCodec)
			return err
		}(),
	} {
		if !errors.Is(err, keyer.ErrInvalidKey) {
			t.Errorf("%s with an invalid scope: %v, want keyer.ErrInvalidKey", name, err)
		}
	}
}

// TestTTL checks both expiries: Redis drops the key itself (PX), so expired
// entries do not accumulate, and never before the entry's Expires.
func TestTTL(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := redis.New(raw, redis.WithPrefix("p:"))
	k := globalKey(1)
	set(t, s, k, entry("a", 1, 300*time.Millisecond))
	want(t, s, k, result{"a", 1})
	keys, _ := raw.Keys(ctx, "p:*").Result()
	if len(keys) != 1 {
		t.Fatalf("keys after one Set: %q", keys)
	}
	pttl, err := raw.PTTL(ctx, keys[0]).Result()
	if err != nil || pttl <= 0 || pttl > 300*time.Millisecond {
		t.Fatalf("PTTL = %v, %v; want (0, 300ms]", pttl, err)
	}
	time.Sleep(350 * time.Millisecond)
	if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after the TTL: %v, want ErrNotFound", err)
	}
	if n, _ := raw.Exists(ctx, keys[0]).Result(); n != 0 {
		t.Fatal("Redis still holds the expired entry")
	}

	// No expiry: no TTL in Redis either.
	set(t, s, k, entry("b", 2, 0))
	if pttl, _ := raw.PTTL(ctx, keys[0]).Result(); pttl != -1 {
		t.Fatalf("PTTL of an entry that never expires = %v, want -1", pttl)
	}
	// An entry already past its expiry replaces the key's entry with
	// nothing.
	e := entry("c", 3, 0)
	e.Expires = time.Now().Add(-time.Second)
	set(t, s, k, e)
	if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after setting an expired entry: %v, want ErrNotFound", err)
	}
}

// TestExpiredInHeader: an entry whose header says it has expired is never
// returned, even while Redis still holds it.
func TestExpiredInHeader(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := redis.New(raw, redis.WithPrefix("p:"))
	k := globalKey(1)
	set(t, s, k, entry("a", 1, time.Hour))
	keys, _ := raw.Keys(ctx, "p:*").Result()
	e := entry("a", 1, 0)
	e.Expires = time.Now().Add(-time.Minute)
	b, err := backends.EncodeEntry(e, resultCodec)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, keys[0], b, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrExpired) {
		t.Fatalf("Get: %v, want ErrExpired", err)
	}
	// Acquire treats it as absent: it takes the lease, without an error.
	_, l, err := s.Acquire(ctx, k, resultCodec)
	if err != nil || l == nil {
		t.Fatalf("Acquire: lease %v, %v; want a lease", l, err)
	}
	if _, err := l.Commit(ctx, entry("b", 2, time.Hour), resultCodec); err != nil {
		t.Fatal(err)
	}
	want(t, s, k, result{"b", 2})
}

// TestCorrupt: bytes that are not an entry, a damaged entry and another
// codec's entry are ErrCorrupt, never a wrong value; Acquire then takes the
// lease and the commit overwrites the entry.
func TestCorrupt(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	good, err := backends.EncodeEntry(entry("a", 1, 0), resultCodec)
	if err != nil {
		t.Fatal(err)
	}
	other, err := backends.EncodeEntry(entry("a", 1, 0), otherCodec{})
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 1
	for i, bad := range [][]byte{[]byte("not an entry"), good[:len(good)-1], flipped, other, {}} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			prefix := fmt.Sprintf("p%d:", i)
			s := redis.New(raw, redis.WithPrefix(prefix))
			k := globalKey(i)
			set(t, s, k, entry("a", 1, 0))
			keys, _ := raw.Keys(ctx, prefix+"*").Result()
			if len(keys) != 1 {
				t.Fatalf("keys of one Global entry: %q", keys)
			}
			if err := raw.Set(ctx, keys[0], bad, 0).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrCorrupt) {
				t.Fatalf("Get: %v, want ErrCorrupt", err)
			}
			_, l, err := s.Acquire(ctx, k, resultCodec)
			if l == nil || !errors.Is(err, backends.ErrCorrupt) {
				t.Fatalf("Acquire: lease %v, %v; want a lease and ErrCorrupt", l, err)
			}
			got, err := l.Commit(ctx, entry("b", 2, 0), resultCodec)
			if err != nil || got.Value != (result{"b", 2}) {
				t.Fatalf("Commit over a corrupt entry: %v, %v", got.Value, err)
			}
			want(t, s, k, result{"b", 2})
		})
	}
}

func TestPurgeExecution(t *testing.T) {
	srv := redistest.Start(t)
	cmds := &commands{}
	raw := srv.Client(t)
	raw.AddHook(cmds)
	s := redis.New(raw, redis.WithPrefix("p:"))
	const n = 600 // more than two batches
	for i := range n {
		set(t, s, workflowKey("exec_a", i), entry("a", i, time.Hour))
	}
	for i := range 3 {
		set(t, s, workflowKey("exec_b", i), entry("b", i, time.Hour))
		set(t, s, globalKey(i), entry("g", i, time.Hour))
	}
	// One of a's entries has expired (Redis dropped it, its index member
	// is left) and one was deleted: neither is counted.
	set(t, s, workflowKey("exec_a", n), entry("a", n, 20*time.Millisecond))
	if err := s.Delete(ctx, workflowKey("exec_a", 0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	cmds.take()
	got, err := s.PurgeExecution(ctx, "exec_a")
	if err != nil || got != n-1 {
		t.Fatalf("PurgeExecution = %d, %v; want %d", got, err, n-1)
	}
	for _, c := range cmds.take() {
		if c == "keys" || c == "scan" {
			t.Fatalf("PurgeExecution sent %s", c)
		}
	}
	for i := range n {
		if _, err := s.Get(ctx, workflowKey("exec_a", i), resultCodec); !errors.Is(err, backends.ErrNotFound) {
			t.Fatalf("entry %d after purge: %v", i, err)
		}
	}
	for i := range 3 {
		want(t, s, workflowKey("exec_b", i), result{"b", i})
		want(t, s, globalKey(i), result{"g", i})
	}
	// Nothing of exec_a is left, the index included: exec_b's entries and
	// index and the Global entries remain.
	if keys, _ := raw.Keys(ctx, "p:*").Result(); len(keys) != 3+1+3 {
		t.Fatalf("keys left: %d %q", len(keys), keys)
	}
	if got, err := s.PurgeExecution(ctx, "exec_a"); got != 0 || err != nil {
		t.Fatalf("second PurgeExecution = %d, %v", got, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PurgeExecution(cancelled, "exec_b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("PurgeExecution with a cancelled context: %v", err)
	}
}

// TestIndexTTL: an execution's index lives as long as its longest-lived
// entry, so it never outlives them by much and never drops one early.
func TestIndexTTL(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := redis.New(raw, redis.WithPrefix("p:"))
	index := func() string {
		keys, _ := raw.Keys(ctx, "p:*}i").Result()
		if len(keys) != 1 {
			t.Fatalf("index keys: %q", keys)
		}
		return keys[0]
	}
	set(t, s, workflowKey("e", 1), entry("a", 1, time.Minute))
	if d, _ := raw.PTTL(ctx, index()).Result(); d <= 59*time.Second || d > time.Minute {
		t.Fatalf("index PTTL = %v, want about a minute", d)
	}
	set(t, s, workflowKey("e", 2), entry("a", 2, time.Second))
	if d, _ := raw.PTTL(ctx, index()).Result(); d <= 59*time.Second {
		t.Fatalf("index PTTL after a shorter entry = %v, want about a minute", d)
	}
	set(t, s, workflowKey("e", 3), entry("a", 3, time.Hour))
	if d, _ := raw.PTTL(ctx, index()).Result(); d <= 59*time.Minute {
		t.Fatalf("index PTTL after a longer entry = %v, want about an hour", d)
	}
	set(t, s, workflowKey("e", 4), entry("a", 4, 0))
	if d, _ := raw.PTTL(ctx, index()).Result(); d != -1 {
		t.Fatalf("index PTTL after an entry without expiry = %v, want none", d)
	}
	set(t, s, workflowKey("e", 5), entry("a", 5, time.Second))
	if d, _ := raw.PTTL(ctx, index()).Result(); d != -1 {
		t.Fatalf("index PTTL = %v, want none", d)
	}
}

func TestClosedClient(t *testing.T) {
	srv := redistest.Start(t)
	c := goredis.NewClient(srv.Options())
	s := redis.New(c)
	c.Close()
	k := globalKey(1)
	for name, err := range map[string]error{
		"Get":            func() error { _, err := s.Get(ctx, k, resultCodec); return err }(),
		"Set":            s.Set(ctx, k, entry("a", 1, 0), resultCodec),
		"Delete":         s.Delete(ctx, k),
		"PurgeExecution": func() error { _, err := s.PurgeExecution(ctx, "e"); return err }(),
		"Acquire":        func() error { _, _, err := s.Acquire(ctx, k, resultCodec); return err }(),
	} {
		if !errors.Is(err, backends.ErrClosed) {
			t.Errorf("%s on a closed client: %v, want ErrClosed", name, err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s := newStore(t, redistest.Start(t))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	k := globalKey(1)
	for name, err := range map[string]error{
		"Get":     func() error { _, err := s.Get(cancelled, k, resultCodec); return err }(),
		"Set":     s.Set(cancelled, k, entry("a", 1, 0), resultCodec),
		"Delete":  s.Delete(cancelled, k),
		"Acquire": func() error { _, _, err := s.Acquire(cancelled, k, resultCodec); return err }(),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
	}
}

// TestEviction: under maxmemory with eviction, an evicted entry is a miss,
// never another key's value or a damaged one.
func TestEviction(t *testing.T) {
	srv := redistest.Start(t, "maxmemory 2mb", "maxmemory-policy allkeys-lru")
	s := newStore(t, srv)
	const n = 4000
	pad := string(make([]byte, 1000))
	for i := range n {
		e := entry(pad, i, time.Hour)
		if err := s.Set(ctx, globalKey(i), e, resultCodec); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	hits := 0
	for i := range n {
		e, err := s.Get(ctx, globalKey(i), resultCodec)
		switch {
		case err == nil:
			if e.Value != (result{pad, i}) {
				t.Fatalf("key %d: wrong value, N = %d", i, e.Value.(result).N)
			}
			hits++
		case errors.Is(err, backends.ErrNotFound):
		default:
			t.Fatalf("key %d: %v", i, err)
		}
	}
	if hits == 0 || hits == n {
		t.Fatalf("%d of %d entries left: want eviction to have dropped some, not all", hits, n)
	}
	t.Logf("%d of %d entries survived eviction", hits, n)
}

// TestRedisRestart: while Redis is down every call fails with an error
// (none hangs: each ends with its context), and once it is back the store
// works again; Redis lost its data, so the entry is a miss.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	s := redis.New(srv.Client(t, func(o *goredis.Options) { o.MaxRetries = 1 }))
	k := globalKey(1)
	set(t, s, k, entry("a", 1, 0))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.Get(short, k, resultCodec); err == nil || errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get while Redis is down: %v, want a fault", err)
	}
	if err := s.Set(short, k, entry("b", 2, 0), resultCodec); err == nil {
		t.Fatal("Set while Redis is down succeeded")
	}
	if _, _, err := s.Acquire(short, k, resultCodec); err == nil {
		t.Fatal("Acquire while Redis is down succeeded")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after the restart: %v, want ErrNotFound", err)
	}
	set(t, s, k, entry("c", 3, 0))
	want(t, s, k, result{"c", 3})
}

func TestTiered(t *testing.T) {
	r := newStore(t, redistest.Start(t))
	s := backends.Tiered(memory.New(10), r)
	k := globalKey(1)
	set(t, s, k, entry("a", 1, time.Hour))
	if e := want(t, s, k, result{"a", 1}); e.Tier != "memory" {
		t.Fatalf("Tier = %q, want memory", e.Tier)
	}
	if e := want(t, backends.Tiered(memory.New(10), r), k, result{"a", 1}); e.Tier != "redis" {
		t.Fatalf("Tier on a fresh front = %q, want redis", e.Tier)
	}
}

func TestOptionPanics(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{})
	defer c.Close()
	for name, f := range map[string]func(){
		"nil client":      func() { redis.New(nil) },
		"brace in prefix": func() { redis.New(c, redis.WithPrefix("a{b")) },
		"short lease":     func() { redis.New(c, redis.WithLeaseTTL(time.Millisecond)) },
		"zero poll":       func() { redis.New(c, redis.WithPollInterval(0)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestRetainExecution: the execution's entries, over several batches, and
// its index get the retention's end as their Redis expiry, found through
// the index (no KEYS or SCAN); other executions and Global entries keep
// theirs.
func TestRetainExecution(t *testing.T) {
	srv := redistest.Start(t)
	cmds := &commands{}
	raw := srv.Client(t)
	raw.AddHook(cmds)
	s := redis.New(raw, redis.WithPrefix("p:"))
	const n = 600 // more than two batches
	for i := range n {
		set(t, s, workflowKey("exec_a", i), entry("a", i, 0))
	}
	set(t, s, workflowKey("exec_b", 1), entry("b", 1, 0))
	set(t, s, globalKey(1), entry("g", 1, 0))
	// One of a's entries was deleted, one has expired: neither is counted.
	if err := s.Delete(ctx, workflowKey("exec_a", 0)); err != nil {
		t.Fatal(err)
	}
	set(t, s, workflowKey("exec_a", n), entry("a", n, 20*time.Millisecond))
	time.Sleep(30 * time.Millisecond)
	cmds.take()
	until := time.Now().Add(time.Minute)
	got, err := s.RetainExecution(ctx, "exec_a", until)
	if err != nil || got != n-1 {
		t.Fatalf("RetainExecution = %d, %v; want %d", got, err, n-1)
	}
	for _, c := range cmds.take() {
		if c == "keys" || c == "scan" {
			t.Fatalf("RetainExecution sent %s", c)
		}
	}
	keys, _ := raw.Keys(ctx, "p:*").Result()
	for _, k := range keys {
		at, err := raw.PExpireTime(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		ofA := strings.Contains(k, hex.EncodeToString([]byte("exec_a")))
		switch {
		case ofA && (at < 0 || at.Milliseconds() > until.UnixMilli()+1 || at.Milliseconds() < until.UnixMilli()):
			t.Errorf("%s of exec_a expires at %v; want %v", k, at, until.UnixMilli())
		case !ofA && at != -1:
			t.Errorf("%s (not exec_a's) expires at %v; want no expiry", k, at)
		}
	}
	if len(keys) != n-1+1+2+1 { // a's entries and index, b's entry and index, the Global entry
		t.Errorf("keys: %d", len(keys))
	}
	want(t, s, workflowKey("exec_a", 1), result{"a", 1})
}

// interleave runs fn once, after the first pipeline of GETs the client
// sends: between RetainExecution's read of a batch and its rewrite.
type interleave struct {
	once sync.Once
	fn   func()
}

func (h *interleave) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *interleave) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h *interleave) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		if len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "get") {
			h.once.Do(h.fn)
		}
		return err
	}
}

// TestRetainConcurrentWrite: an entry written or deleted between
// RetainExecution's read and its rewrite is left as the other writer left
// it (a deleted one is not brought back), and the index lives as long as
// the entry written meanwhile.
func TestRetainConcurrentWrite(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := redis.New(raw, redis.WithPrefix("p:"))
	other := redis.New(srv.Client(t), redis.WithPrefix("p:"))
	for i := range 3 {
		set(t, s, workflowKey("e", i), entry("a", i, 0))
	}
	raw.AddHook(&interleave{fn: func() {
		set(t, other, workflowKey("e", 1), entry("changed", 1, 0))
		if err := other.Delete(ctx, workflowKey("e", 2)); err != nil {
			t.Error(err)
		}
	}})
	got, err := s.RetainExecution(ctx, "e", time.Now().Add(time.Minute))
	if err != nil || got != 1 {
		t.Fatalf("RetainExecution = %d, %v; want 1 (the entry nobody changed)", got, err)
	}
	if e := want(t, s, workflowKey("e", 1), result{"changed", 1}); !e.Expires.IsZero() {
		t.Errorf("the entry written meanwhile expires at %v; want never", e.Expires)
	}
	if _, err := s.Get(ctx, workflowKey("e", 2), resultCodec); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("the entry deleted meanwhile: %v; want ErrNotFound", err)
	}
	if e := want(t, s, workflowKey("e", 0), result{"a", 0}); e.Expires.IsZero() {
		t.Error("the entry nobody changed was not retained")
	}
	index, _ := raw.Keys(ctx, "p:*}i").Result()
	if len(index) != 1 {
		t.Fatalf("index keys: %q", index)
	}
	if d, _ := raw.PTTL(ctx, index[0]).Result(); d != -1 {
		t.Errorf("index PTTL = %v; want none, as the entry written meanwhile has none", d)
	}
}
