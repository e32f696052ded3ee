package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
	"github.com/docket-go/docket/keyer"
)

// mustLease acquires k, which must not be stored or leased.
func mustLease(t testing.TB, s *redis.Store, k keyer.Key) backends.Lease {
	t.Helper()
	e, l, err := s.Acquire(ctx, k, resultCodec)
	if err != nil || l == nil {
		t.Fatalf("Acquire(%v) = %v, %v, %v; want a lease", k, e, l, err)
	}
	return l
}

type acquired struct {
	e   backends.Entry
	l   backends.Lease
	err error
	at  time.Time
}

// acquireAsync runs Acquire in a goroutine; the result arrives on the
// channel.
func acquireAsync(ctx context.Context, s *redis.Store, k keyer.Key) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		e, l, err := s.Acquire(ctx, k, resultCodec)
		ch <- acquired{e, l, err, time.Now()}
	}()
	return ch
}

func receive(t testing.TB, ch <-chan acquired, within time.Duration) acquired {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(within):
		t.Fatalf("Acquire did not return within %v", within)
		return acquired{}
	}
}

func notYet(t testing.TB, ch <-chan acquired, d time.Duration) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("Acquire returned while the lease was held: %v, %v, %v", a.e, a.l, a.err)
	case <-time.After(d):
	}
}

// TestAcquireCommit: the first Acquire takes the lease; one in another
// Store (another process, as far as Redis can tell) waits until the
// commit and is woken by it at once, long before it would poll; later
// Acquires are hits.
func TestAcquireCommit(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv)
	b := redis.New(srv.Client(t), redis.WithPrefix(t.Name()+":"), redis.WithPollInterval(time.Minute))
	for _, k := range []keyer.Key{globalKey(1), workflowKey("exec", 1)} {
		l := mustLease(t, a, k)
		if l.Token() == 0 {
			t.Fatal("token 0")
		}
		waiter := acquireAsync(ctx, b, k)
		notYet(t, waiter, 100*time.Millisecond)
		committed := time.Now()
		got, err := l.Commit(ctx, entry("a", 1, time.Hour), resultCodec)
		if err != nil || got.Value != (result{"a", 1}) {
			t.Fatalf("Commit = %v, %v", got.Value, err)
		}
		w := receive(t, waiter, time.Second)
		if w.err != nil || w.l != nil || w.e.Value != (result{"a", 1}) || w.e.Tier != "redis" {
			t.Fatalf("waiter got %+v, %v, %v; want the committed entry", w.e, w.l, w.err)
		}
		if d := w.at.Sub(committed); d > 200*time.Millisecond {
			t.Fatalf("waiter woke %v after the commit", d)
		}
		e, l2, err := b.Acquire(ctx, k, resultCodec)
		if err != nil || l2 != nil || e.Value != (result{"a", 1}) {
			t.Fatalf("Acquire after commit = %v, %v, %v; want a hit", e.Value, l2, err)
		}
		if _, err := l.Commit(ctx, entry("x", 0, 0), resultCodec); err == nil {
			t.Fatal("second Commit succeeded")
		}
		if err := l.Release(ctx); err == nil {
			t.Fatal("Release after Commit succeeded")
		}
	}
}

// TestRenewal: a lease outlives its TTL while its holder runs, because it
// is renewed; others keep waiting and the commit is stored.
func TestRenewal(t *testing.T) {
	srv := redistest.Start(t)
	// Renewal runs every ttl/3: a TTL short enough to make the test quick
	// but long enough that a loaded machine (CI, -race) renews in time.
	ttl := 500 * time.Millisecond
	a := newStore(t, srv, redis.WithLeaseTTL(ttl))
	b := newStore(t, srv, redis.WithLeaseTTL(ttl))
	k := globalKey(1)
	l := mustLease(t, a, k)
	waiter := acquireAsync(ctx, b, k)
	notYet(t, waiter, 4*ttl)
	select {
	case <-l.Lost():
		t.Fatal("lease lost while renewed")
	default:
	}
	if _, err := l.Commit(ctx, entry("a", 1, 0), resultCodec); err != nil {
		t.Fatal(err)
	}
	if w := receive(t, waiter, time.Second); w.err != nil || w.e.Value != (result{"a", 1}) {
		t.Fatalf("waiter: %v, %v", w.e.Value, w.err)
	}
}

// TestLateWriter: a holder whose lease was taken over (here: its lease key
// deleted, as if it expired while the holder was paused) is refused at
// commit and handed the winner's entry; its Lost channel closes; the
// winner's token is greater.
func TestLateWriter(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	ttl := 300 * time.Millisecond
	a := redis.New(raw, redis.WithPrefix("p:"), redis.WithLeaseTTL(ttl))
	b := redis.New(srv.Client(t), redis.WithPrefix("p:"), redis.WithLeaseTTL(ttl))
	for _, k := range []keyer.Key{globalKey(1), workflowKey("exec", 1)} {
		late := mustLease(t, a, k)
		expireLeases(t, raw)
		winner := mustLease(t, b, k)
		if winner.Token() <= late.Token() {
			t.Fatalf("takeover token %d not greater than %d", winner.Token(), late.Token())
		}
		if _, err := winner.Commit(ctx, entry("winner", 2, time.Hour), resultCodec); err != nil {
			t.Fatal(err)
		}
		select {
		case <-late.Lost():
		case <-time.After(ttl):
			t.Fatal("Lost not closed after the lease was taken over")
		}
		got, err := late.Commit(ctx, entry("late", 1, time.Hour), resultCodec)
		if err != nil || got.Value != (result{"winner", 2}) {
			t.Fatalf("late Commit = %v, %v; want the winner's entry", got.Value, err)
		}
		want(t, a, k, result{"winner", 2})
	}
}

// expireLeases deletes every lease key, as their expiry would.
func expireLeases(t testing.TB, raw *goredis.Client) {
	t.Helper()
	keys, err := raw.Keys(ctx, "*}l*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("lease keys: %q, %v", keys, err)
	}
	if err := raw.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestLostNoResult: a holder whose lease expired with nobody taking it over
// stores nothing: its commit returns ErrLeaseLost.
func TestLostNoResult(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := redis.New(raw, redis.WithPrefix("p:"))
	k := globalKey(1)
	l := mustLease(t, s, k)
	expireLeases(t, raw)
	if _, err := l.Commit(ctx, entry("a", 1, 0), resultCodec); !errors.Is(err, backends.ErrLeaseLost) {
		t.Fatalf("Commit after the lease expired: %v, want ErrLeaseLost", err)
	}
	if _, err := s.Get(ctx, k, resultCodec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
}

// TestTakeover: a holder that stops renewing (a dead process: here a lease
// written by hand with a TTL) is taken over once its lease expires, with a
// greater token; the waiter is not woken early.
func TestTakeover(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	s := redis.New(raw, redis.WithPrefix("p:"))
	k := globalKey(1)
	dead := mustLease(t, s, k)
	token := dead.Token()
	keys, _ := raw.Keys(ctx, "p:*}l").Result()
	// Stop the renewal without telling Redis, then give the lease a short
	// life of its own.
	if err := dead.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	held := 200 * time.Millisecond
	if err := raw.Set(ctx, keys[0], token, held).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a := receive(t, acquireAsync(ctx, s, k), 2*time.Second)
	if a.err != nil || a.l == nil {
		t.Fatalf("Acquire: %v, %v; want the lease", a.l, a.err)
	}
	if d := a.at.Sub(start); d < held-20*time.Millisecond || d > held+300*time.Millisecond {
		t.Fatalf("took over after %v, want about %v", d, held)
	}
	if a.l.Token() <= token {
		t.Fatalf("takeover token %d not greater than %d", a.l.Token(), token)
	}
	if err := a.l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRelease: a released lease is taken by a waiter at once.
func TestRelease(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv)
	b := redis.New(srv.Client(t), redis.WithPrefix(t.Name()+":"), redis.WithPollInterval(time.Minute))
	k := workflowKey("exec", 1)
	l := mustLease(t, a, k)
	waiter := acquireAsync(ctx, b, k)
	notYet(t, waiter, 50*time.Millisecond)
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	w := receive(t, waiter, 500*time.Millisecond)
	if w.err != nil || w.l == nil || w.l.Token() <= l.Token() {
		t.Fatalf("waiter after Release: %v, %v; want a lease with a greater token", w.l, w.err)
	}
	w.l.Release(ctx)
}

// TestTokensIncrease: every lease of a key has a greater token than the
// ones before, also after the per-key counter has expired.
func TestTokensIncrease(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, redis.WithLeaseTTL(10*time.Millisecond))
	k := globalKey(1)
	var last uint64
	for i := range 50 {
		if i == 25 {
			time.Sleep(30 * time.Millisecond) // the counter expires
		}
		l := mustLease(t, s, k)
		if l.Token() <= last {
			t.Fatalf("lease %d: token %d after %d", i, l.Token(), last)
		}
		last = l.Token()
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWaitCancelled: a waiting Acquire returns ctx's error when ctx ends.
func TestWaitCancelled(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	k := globalKey(1)
	l := mustLease(t, s, k)
	defer l.Release(ctx)
	c, cancel := context.WithCancel(ctx)
	waiter := acquireAsync(c, s, k)
	notYet(t, waiter, 50*time.Millisecond)
	cancel()
	if w := receive(t, waiter, 100*time.Millisecond); !errors.Is(w.err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", w.err)
	}
}

// TestLostWhenRedisGoes: a holder that cannot reach Redis loses its lease
// once it would have expired (another process may take it over from then
// on), not before; a restarted Redis has no lease, so the first renewal
// that reaches it reports the loss too.
func TestLostWhenRedisGoes(t *testing.T) {
	srv := redistest.Start(t)
	ttl := 150 * time.Millisecond
	s := redis.New(srv.Client(t, func(o *goredis.Options) { o.MaxRetries = -1 }), redis.WithLeaseTTL(ttl))
	l := mustLease(t, s, globalKey(1))
	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
		if d := time.Since(start); d > ttl+100*time.Millisecond {
			t.Fatalf("Lost after %v, want by the lease's TTL %v", d, ttl)
		}
	case <-time.After(2 * ttl):
		t.Fatal("Lost not closed with Redis down")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Commit(ctx, entry("a", 1, 0), resultCodec); !errors.Is(err, backends.ErrLeaseLost) {
		t.Fatalf("Commit after Redis came back empty: %v, want ErrLeaseLost", err)
	}

	l = mustLease(t, s, globalKey(2))
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(2 * ttl):
		t.Fatal("Lost not closed after Redis restarted without the lease")
	}
	l.Release(ctx)
}
