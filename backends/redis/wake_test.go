package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
)

// subscriber is a connection that has shard channels subscribed, as
// CLIENT LIST shows it.
type subscriber struct {
	id       string
	channels int
}

// subscribers lists the connections of raw's server that have shard
// channels subscribed.
func subscribers(t testing.TB, raw *goredis.Client) []subscriber {
	t.Helper()
	list, err := raw.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var subs []subscriber
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var s subscriber
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				s.id = v
			}
			if v, ok := strings.CutPrefix(f, "ssub="); ok {
				s.channels, _ = strconv.Atoi(v)
			}
		}
		if s.channels > 0 {
			subs = append(subs, s)
		}
	}
	return subs
}

// eventually fails t unless subscribers(raw) satisfies ok within a few
// seconds: the server notices a closed connection, and a subscription's
// confirmation arrives, in their own time.
func eventually(t testing.TB, raw *goredis.Client, what string, ok func([]subscriber) bool) []subscriber {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		subs := subscribers(t, raw)
		if ok(subs) {
			return subs
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription connections %v, want %s", subs, what)
		}
	}
}

// waitRound leases keys first..first+n-1 in holder, starts a waiting
// Acquire of each in waiter, runs during (with every wait begun, as far as
// Redis can tell once its subscriptions are counted), then commits each
// key and checks that its waiter is woken by the commit: waiter polls once
// a minute, so a waiter woken by anything else would take far longer.
func waitRound(t *testing.T, holder, waiter *redis.Store, first, n int, during func()) {
	t.Helper()
	leases := make([]backends.Lease, n)
	waits := make([]<-chan acquired, n)
	for i := range n {
		leases[i] = mustLease(t, holder, globalKey(first+i))
		waits[i] = acquireAsync(ctx, waiter, globalKey(first+i))
	}
	during()
	for i := range n {
		if _, err := leases[i].Commit(ctx, entry("a", first+i, time.Hour), resultCodec); err != nil {
			t.Fatal(err)
		}
		w := receive(t, waits[i], 10*time.Second)
		if w.err != nil || w.e.Value != (result{"a", first + i}) {
			t.Fatalf("waiter %d: %v, %v", first+i, w.e.Value, w.err)
		}
	}
}

func channelsAre(n int) func([]subscriber) bool {
	return func(subs []subscriber) bool { return len(subs) == 1 && subs[0].channels == n }
}

// TestWaitsShareASubscription: waits on many keys in one Store use one
// subscription connection, and each waiter is woken by its own key's
// commit. The connection outlives the waits, keeping their channels, and
// the next round of waits reuses it; Close closes it.
func TestWaitsShareASubscription(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	holder := redis.New(srv.Client(t), redis.WithPrefix("p:"))
	waiter := redis.New(srv.Client(t), redis.WithPrefix("p:"), redis.WithPollInterval(time.Minute),
		redis.WithSubscriptionIdle(time.Hour))
	const n = 50
	var first []subscriber
	waitRound(t, holder, waiter, 0, n, func() {
		first = eventually(t, raw, fmt.Sprintf("1 with %d channels", n), channelsAre(n))
	})
	waitRound(t, holder, waiter, n, n, func() {
		again := eventually(t, raw, fmt.Sprintf("1 with %d channels", 2*n), channelsAre(2*n))
		if again[0].id != first[0].id {
			t.Fatalf("the second round's waits are on connection %s, the first's on %s", again[0].id, first[0].id)
		}
	})
	if err := waiter.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, raw, "none after Close", func(subs []subscriber) bool { return len(subs) == 0 })
}

// TestSubscriptionIdle: a shared subscription that no wait has used for its
// idle period closes by itself, and the next wait opens another.
func TestSubscriptionIdle(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	holder := redis.New(srv.Client(t), redis.WithPrefix("p:"))
	waiter := redis.New(srv.Client(t), redis.WithPrefix("p:"), redis.WithPollInterval(time.Minute),
		redis.WithSubscriptionIdle(50*time.Millisecond))
	defer waiter.Close()
	waitRound(t, holder, waiter, 0, 1, func() { eventually(t, raw, "1 with 1 channel", channelsAre(1)) })
	eventually(t, raw, "none once idle", func(subs []subscriber) bool { return len(subs) == 0 })
	waitRound(t, holder, waiter, 1, 1, func() { eventually(t, raw, "1 with 1 channel", channelsAre(1)) })
}

// TestSubscriptionChannels: once a shared subscription has its share of
// channels, new waits move to a fresh connection, and the full one closes
// when its last wait ends.
func TestSubscriptionChannels(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	holder := redis.New(srv.Client(t), redis.WithPrefix("p:"))
	waiter := redis.New(srv.Client(t), redis.WithPrefix("p:"), redis.WithPollInterval(time.Minute),
		redis.WithSubscriptionChannels(2))
	defer waiter.Close()
	var during []subscriber
	waitRound(t, holder, waiter, 0, 3, func() {
		during = eventually(t, raw, "one with 2 channels and one with 1", func(subs []subscriber) bool {
			return len(subs) == 2 && subs[0].channels+subs[1].channels == 3
		})
	})
	after := eventually(t, raw, "the one with 1 channel", channelsAre(1))
	if !slices.Contains(during, after[0]) {
		t.Fatalf("after the waits: %v, want the newer of %v", after, during)
	}
}

// gapHook runs gap, once armed, right after the first look of its client
// that finds a lease held: between that look and the subscription that
// follows it, where a commit must not be missed. Fault injection: the
// commands are real.
type gapHook struct {
	mu  sync.Mutex
	gap func()
}

func (h *gapHook) arm(gap func()) {
	h.mu.Lock()
	h.gap = gap
	h.mu.Unlock()
}

func (h *gapHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *gapHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if r, ok := cmd.(*goredis.Cmd); ok && err == nil {
			// The acquire script's reply {3, holder, left}: held.
			if v, _ := r.Val().([]any); len(v) == 3 && v[0] == int64(3) {
				h.mu.Lock()
				gap := h.gap
				h.gap = nil
				h.mu.Unlock()
				if gap != nil {
					gap()
				}
			}
		}
		return err
	}
}

func (h *gapHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestWaitNeverMissesACommit: the holder commits between a waiter's look
// that finds the lease held and its subscription, so the announcement
// reaches no wait. The waiter polls once a minute and the lease has 30 s
// left: only the look that follows its subscription finds the result in
// time. That holds for a channel the shared subscription has yet to
// subscribe, and for one it has already subscribed (an earlier wait on the
// key ended while the lease was held), whose message arrives before the
// wait joins.
func TestWaitNeverMissesACommit(t *testing.T) {
	for _, subscribed := range []bool{false, true} {
		t.Run(fmt.Sprintf("subscribed=%v", subscribed), func(t *testing.T) {
			srv := redistest.Start(t)
			raw := srv.Client(t)
			holder := redis.New(srv.Client(t), redis.WithPrefix("p:"))
			hook := &gapHook{}
			wc := srv.Client(t)
			wc.AddHook(hook)
			waiter := redis.New(wc, redis.WithPrefix("p:"), redis.WithPollInterval(time.Minute))
			defer waiter.Close()
			// The shared subscription is open, with another key's channel.
			waitRound(t, holder, waiter, 0, 1, func() { eventually(t, raw, "1 with 1 channel", channelsAre(1)) })
			k := globalKey(1)
			l := mustLease(t, holder, k)
			if subscribed {
				c, cancel := context.WithCancel(ctx)
				first := acquireAsync(c, waiter, k)
				eventually(t, raw, "1 with 2 channels", channelsAre(2))
				cancel()
				if w := receive(t, first, time.Second); !errors.Is(w.err, context.Canceled) {
					t.Fatalf("cancelled waiter: %v", w.err)
				}
			}
			hook.arm(func() {
				if _, err := l.Commit(ctx, entry("a", 1, time.Hour), resultCodec); err != nil {
					t.Error(err)
				}
				if subscribed {
					// Time for the subscription to deliver the announcement,
					// which no wait is on yet.
					time.Sleep(50 * time.Millisecond)
				}
			})
			if w := receive(t, acquireAsync(ctx, waiter, k), 10*time.Second); w.err != nil || w.e.Value != (result{"a", 1}) {
				t.Fatalf("waiter: %v, %v", w.e.Value, w.err)
			}
		})
	}
}

// TestSubscriptionAfterRestart: Redis restarts (empty) under an idle shared
// subscription and under one with a wait on it. go-redis connects again and
// subscribes the channels again; the confirmation wakes the wait, which
// finds the lease gone and takes it, and later waits are woken by commits
// as before.
func TestSubscriptionAfterRestart(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	holder := redis.New(srv.Client(t), redis.WithPrefix("p:"))
	waiter := redis.New(srv.Client(t), redis.WithPrefix("p:"), redis.WithPollInterval(time.Minute))
	defer waiter.Close()
	waitRound(t, holder, waiter, 0, 1, func() { eventually(t, raw, "1 with 1 channel", channelsAre(1)) })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitRound(t, holder, waiter, 1, 1, func() { eventually(t, raw, "2 channels", anyWith(2)) })

	k := globalKey(10)
	l := mustLease(t, holder, k)
	defer l.Release(ctx)
	w := acquireAsync(ctx, waiter, k)
	eventually(t, raw, "3 channels", anyWith(3))
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	a := receive(t, w, 10*time.Second)
	if a.err != nil || a.l == nil {
		t.Fatalf("waiter after the restart: %v, %v; want the lease", a.l, a.err)
	}
	if err := a.l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// anyWith reports whether one subscription connection has n channels.
func anyWith(n int) func([]subscriber) bool {
	return func(subs []subscriber) bool {
		return slices.ContainsFunc(subs, func(s subscriber) bool { return s.channels == n })
	}
}

// TestCloseWhileWaiting: Close leaves the shared subscription to the
// Acquire waiting on it, which is still woken by the commit; the connection
// closes when that wait ends.
func TestCloseWhileWaiting(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	holder := redis.New(srv.Client(t), redis.WithPrefix("p:"))
	waiter := redis.New(srv.Client(t), redis.WithPrefix("p:"), redis.WithPollInterval(time.Minute))
	waitRound(t, holder, waiter, 0, 1, func() {
		eventually(t, raw, "1 with 1 channel", channelsAre(1))
		if err := waiter.Close(); err != nil {
			t.Fatal(err)
		}
	})
	eventually(t, raw, "none once the wait ended", func(subs []subscriber) bool { return len(subs) == 0 })
}

// TestCloseWithRedisDown: Close returns while the shared subscription's
// connection cannot be re-established, and leaves none of its goroutines
// behind.
func TestCloseWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	raw := srv.Client(t)
	holder := redis.New(srv.Client(t), redis.WithPrefix("p:"))
	wc := srv.Client(t)
	before := goleak.IgnoreCurrent()
	waiter := redis.New(wc, redis.WithPrefix("p:"), redis.WithPollInterval(time.Minute))
	waitRound(t, holder, waiter, 0, 1, func() { eventually(t, raw, "1 with 1 channel", channelsAre(1)) })
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- waiter.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return with Redis down")
	}
	goleak.VerifyNone(t, before)
}
