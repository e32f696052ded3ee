package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// dueAt once: a window one millisecond shorter than the TTL puts every entry
// in it a millisecond after it was stored, whatever the machine's load.
const (
	aheadTTL    = time.Hour
	aheadWindow = time.Hour - time.Millisecond
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitRefreshes waits until no refresh ahead runs in the process, so that
// none writes to a store the test is about to close. A refresh is a
// goroutine no caller waits on: this looks for it on the stacks.
func waitRefreshes(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	waitFor(t, "background refreshes to end", func() bool {
		n := runtime.Stack(buf, true)
		for n == len(buf) { // cut off: look at every goroutine
			buf = make([]byte, 2*len(buf))
			n = runtime.Stack(buf, true)
		}
		// A refresh that has not begun to run shows only its go
		// statement's wrapper, in refreshAhead; one that runs is "created
		// by" refreshAhead.
		return !bytes.Contains(buf[:n], []byte(").refreshAhead"))
	})
}

// TestRefreshAheadServesOldValue: while a refresh ahead runs, a thousand
// callers of the key get the stored result at once, and only one refresh
// runs; when it ends, callers get its result.
func TestRefreshAheadServesOldValue(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			var runs atomic.Int64
			gate := make(chan struct{})
			h := middleware.New("fx", func(_ context.Context, q query) (string, error) {
				n := runs.Add(1)
				if n == 2 {
					<-gate // the first refresh is held until every caller is served
				}
				return fmt.Sprintf("%s#%d", q.User, n), nil
			}, middleware.WithPersistence(tier.open(t), scope.Global, aheadTTL), middleware.WithRefreshAhead(aheadWindow))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q := query{"eur", 1}
			if got, err := h.Call(ctx, q); err != nil || got != "eur#1" {
				t.Fatalf("first call: %q, %v", got, err)
			}
			time.Sleep(2 * time.Millisecond) // into the window

			const callers = 1000
			var wg sync.WaitGroup
			got := make([]string, callers)
			errs := make([]error, callers)
			for i := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i], errs[i] = h.Call(ctx, q)
				}()
			}
			wg.Wait() // returns although the refresh is held: nobody waited on it
			for i := range callers {
				if errs[i] != nil || got[i] != "eur#1" {
					t.Fatalf("caller %d: %q, %v; want the stored result", i, got[i], errs[i])
				}
			}
			waitFor(t, "the refresh to start", func() bool { return runs.Load() == 2 })
			if n := runs.Load(); n != 2 {
				t.Fatalf("%d runs; want 2 (the first call and one refresh)", n)
			}
			close(gate)
			waitFor(t, "the refresh's result", func() bool {
				s, ok, err := h.Peek(ctx, q)
				return err == nil && ok && s.Value == "eur#2"
			})
			// That result is due at once too: a call gets it and starts the
			// next refresh (once the first one's flight is over).
			waitFor(t, "the second refresh", func() bool {
				if v, err := h.Call(ctx, q); err != nil || v == "eur#1" {
					t.Fatalf("after the refresh: %q, %v", v, err)
				}
				s, ok, _ := h.Peek(ctx, q)
				return ok && s.Value != "eur#2"
			})
			st := h.Stats()
			if st.SharedWaits != 0 || st.Misses[middleware.ReasonAbsent] != 1 {
				t.Fatalf("stats %+v: want no caller that waited, one absent miss", st)
			}
			// Every run but the first is a refresh ahead, and the last one's
			// result is stored.
			waitRefreshes(t)
			st = h.Stats()
			s, _, _ := h.Peek(ctx, q)
			if int64(st.Runs) != runs.Load() || st.Misses[middleware.ReasonRefreshAhead] != st.Runs-1 || s.Value != fmt.Sprintf("eur#%d", st.Runs) {
				t.Fatalf("stats %+v, stored %q, %d runs: want every run but the first a refresh ahead, the last one's result stored", st, s.Value, runs.Load())
			}
		})
	}
}

// TestRefreshAheadFailureKeepsEntry: a refresh that fails leaves the old
// entry, which is served (and refreshed again) as before.
func TestRefreshAheadFailureKeepsEntry(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			var runs atomic.Int64
			errDown := errors.New("upstream down")
			h := middleware.New("fx", func(_ context.Context, q query) (string, error) {
				if runs.Add(1) > 1 {
					return "", errDown
				}
				return "rate", nil
			}, middleware.WithPersistence(tier.open(t), scope.Global, aheadTTL), middleware.WithRefreshAhead(aheadWindow),
				// A terminal failure is not stored over a live result either.
				middleware.WithErrorCaching(func(error) (string, bool) { return "down", true }, time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q := query{"eur", 1}
			if _, err := h.Call(ctx, q); err != nil {
				t.Fatal(err)
			}
			before, _, err := h.Peek(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
			for i := range uint64(3) {
				// Each round's hit starts a refresh (the last one has ended),
				// which fails.
				if v, err := h.Call(ctx, q); err != nil || v != "rate" {
					t.Fatalf("got %q, %v; want the stored result", v, err)
				}
				waitFor(t, "the failed refresh", func() bool {
					st := h.Stats()
					return st.Errors == i+1 && st.Misses[middleware.ReasonRefreshAhead] == i+1
				})
			}
			after, ok, err := h.Peek(ctx, q)
			if err != nil || !ok || after.Value != "rate" || after.Err != nil || !after.Created.Equal(before.Created) {
				t.Fatalf("after failed refreshes: %+v, %v, %v; want the first entry", after, ok, err)
			}
			waitRefreshes(t)
			if n := runs.Load(); n != 4 {
				t.Fatalf("%d runs; want 4 (the first call and three refreshes)", n)
			}
		})
	}
}

// TestRefreshAheadHotKey: callers that keep calling one key across several
// TTLs never wait for a run (no call finds the entry expired) with refresh
// ahead; without it, some do at every expiry.
func TestRefreshAheadHotKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
		stalls bool
	}{
		{"ahead", 250 * time.Millisecond, false},
		{"without", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runs atomic.Int64
			opts := []middleware.Option{middleware.WithPersistence(memory.New(100), scope.Global, 300*time.Millisecond)}
			if tc.window > 0 {
				opts = append(opts, middleware.WithRefreshAhead(tc.window))
			}
			h := middleware.New("fx", func(ctx context.Context, q query) (string, error) {
				runs.Add(1)
				select {
				case <-time.After(5 * time.Millisecond):
				case <-ctx.Done():
				}
				return q.User, nil
			}, opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q := query{"hot", 1}
			if _, err := h.Call(ctx, q); err != nil {
				t.Fatal(err)
			}
			stop := time.Now().Add(1200 * time.Millisecond) // four TTLs
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(stop) {
						if _, err := h.Call(ctx, q); err != nil {
							t.Error(err)
							return
						}
						time.Sleep(100 * time.Microsecond)
					}
				}()
			}
			wg.Wait()
			st := h.Stats()
			waited := st.SharedWaits + st.Misses[middleware.ReasonExpired] + st.Misses[middleware.ReasonAbsent] - 1
			if tc.stalls != (waited > 0) {
				t.Fatalf("%d calls waited for a run (stats %+v); want stalls=%v", waited, st, tc.stalls)
			}
			if !tc.stalls && st.Misses[middleware.ReasonRefreshAhead] < 3 {
				t.Fatalf("stats %+v: want a refresh ahead per TTL", st)
			}
			waitRefreshes(t)
			if st := h.Stats(); int64(st.Runs) != runs.Load() || (!tc.stalls && st.Misses[middleware.ReasonRefreshAhead] != st.Runs-1) {
				t.Fatalf("stats %+v, %d runs: want every run counted, and each after the first a refresh ahead", st, runs.Load())
			}
		})
	}
}

// TestRefreshAheadObserved: the refresh is reported as a call of its own,
// whose step ran, and its result's origin is the refresh's.
func TestRefreshAheadObserved(t *testing.T) {
	obs := &recordingObserver{}
	var runs atomic.Int64
	h := middleware.New("fx", versioned(&runs), middleware.WithPersistence(memory.New(10), scope.Global, aheadTTL),
		middleware.WithRefreshAhead(aheadWindow), middleware.WithObserver(obs))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := query{"eur", 1}
	h.Call(ctx, q)
	time.Sleep(2 * time.Millisecond)
	h.Call(ctx, q)
	waitFor(t, "the refresh's outcome", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.outcomes) == 3
	})
	// The refresh may end before the hit that started it does.
	var got middleware.Outcome
	obs.mu.Lock()
	for _, o := range obs.outcomes {
		if o.Reason == middleware.ReasonRefreshAhead {
			got = o
		}
	}
	obs.mu.Unlock()
	if got.Result != middleware.ResultMiss || got.Reason != middleware.ReasonRefreshAhead || !got.Ran || got.Err != nil {
		t.Fatalf("refresh outcome %+v", got)
	}
	waitFor(t, "the refresh's result", func() bool {
		s, ok, _ := h.Peek(ctx, q)
		return ok && s.Value == "eur#2"
	})
}

func TestRefreshAheadRefused(t *testing.T) {
	step := func(_ context.Context, q query) (string, error) { return q.User, nil }
	for _, tc := range []struct {
		name string
		s    scope.Scope
		ttl  time.Duration
		win  time.Duration
		want string
	}{
		{"workflow", scope.Workflow, time.Hour, time.Minute, "for Global steps"},
		{"no ttl", scope.Global, 0, time.Minute, "needs a TTL"},
		{"window as long as the ttl", scope.Global, time.Hour, time.Hour, "shorter than the TTL"},
		{"negative window", scope.Global, time.Hour, -time.Minute, "greater than zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if msg, _ := r.(string); !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %v; want one saying %q", r, tc.want)
				}
			}()
			middleware.Wrap("fx", step, middleware.WithPersistence(memory.New(10), tc.s, tc.ttl), middleware.WithRefreshAhead(tc.win))
		})
	}
}

// TestRefreshAheadHangs: a refresh whose step hangs (it honours its context
// but has no deadline of its own) holds its key no longer than a miss's
// flight would: once the entry has expired and no caller waits on it, it is
// cancelled, and the next call runs the step afresh.
func TestRefreshAheadHangs(t *testing.T) {
	var runs atomic.Int64
	cancelled := make(chan struct{})
	h := middleware.New("fx", func(ctx context.Context, q query) (string, error) {
		n := runs.Add(1)
		if n == 2 { // the refresh: the upstream hangs
			<-ctx.Done()
			close(cancelled)
			return "", ctx.Err()
		}
		return fmt.Sprintf("%s#%d", q.User, n), nil
	}, middleware.WithPersistence(memory.New(10), scope.Global, 300*time.Millisecond),
		middleware.WithRefreshAhead(250*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := query{"eur", 1}
	if v, err := h.Call(ctx, q); err != nil || v != "eur#1" {
		t.Fatalf("first call: %q, %v", v, err)
	}
	time.Sleep(60 * time.Millisecond) // into the window
	if v, err := h.Call(ctx, q); err != nil || v != "eur#1" {
		t.Fatalf("hit: %q, %v", v, err)
	}
	waitFor(t, "the refresh to start", func() bool { return runs.Load() == 2 })
	// A caller that comes after expiry joins the refresh, and leaves on its
	// own deadline.
	waitFor(t, "the entry to expire", func() bool {
		_, ok, err := h.Peek(ctx, q)
		return err == nil && !ok
	})
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err := h.Call(short, q)
	cancelShort()
	if err == nil {
		// The refresh was already abandoned and this call ran the step.
		t.Log("the call after expiry did not join the refresh")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the hung refresh was never cancelled")
	}
	waitFor(t, "a fresh result", func() bool {
		v, err := h.Call(ctx, q)
		return err == nil && v != "eur#1"
	})
}

// TestRefreshAheadYieldsToRefresh: a call under Refresh that ends while a
// refresh ahead of the same key still runs stores the newer result, and the
// refresh ahead, which began earlier, does not overwrite it.
func TestRefreshAheadYieldsToRefresh(t *testing.T) {
	for _, tier := range tiers {
		t.Run(tier.name, func(t *testing.T) {
			var runs atomic.Int64
			gate := make(chan struct{})
			h := middleware.New("fx", func(_ context.Context, q query) (string, error) {
				n := runs.Add(1)
				if n == 2 {
					<-gate // the refresh ahead, held until the Refresh call is done
				}
				return fmt.Sprintf("%s#%d", q.User, n), nil
			}, middleware.WithPersistence(tier.open(t), scope.Global, aheadTTL), middleware.WithRefreshAhead(aheadWindow))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q := query{"eur", 1}
			h.Call(ctx, q)
			time.Sleep(2 * time.Millisecond)
			h.Call(ctx, q) // starts the refresh ahead
			waitFor(t, "the refresh ahead to start", func() bool { return runs.Load() == 2 })
			if v, err := h.Call(middleware.Refresh(ctx), q); err != nil || v != "eur#3" {
				t.Fatalf("refresh: %q, %v", v, err)
			}
			close(gate)
			waitRefreshes(t)
			if s, ok, err := h.Peek(ctx, q); err != nil || !ok || s.Value != "eur#3" {
				t.Fatalf("stored %+v, %v, %v; want the Refresh call's result", s, ok, err)
			}
		})
	}
}

// panickyObserver panics in Start or End of a refresh ahead (whose context,
// a step's, has a key), on purpose (fault injection).
type panickyObserver struct {
	recordingObserver
	inStart bool
}

type panickySpan struct{}

func (panickySpan) End(o middleware.Outcome) {
	if o.Reason == middleware.ReasonRefreshAhead {
		panic("observer End (injected)")
	}
}

func (o *panickyObserver) Start(ctx context.Context, _ middleware.CallInfo) (context.Context, middleware.CallSpan) {
	if _, refresh := middleware.KeyFrom(ctx); refresh && o.inStart {
		panic("observer Start (injected)")
	}
	return ctx, panickySpan{}
}

// TestRefreshAheadObserverPanics: an observer that panics in the background
// refresh neither ends the process nor leaves the key's flight listed.
func TestRefreshAheadObserverPanics(t *testing.T) {
	for _, inStart := range []bool{true, false} {
		t.Run(fmt.Sprintf("inStart=%v", inStart), func(t *testing.T) {
			obs := &panickyObserver{inStart: inStart}
			var runs atomic.Int64
			h := middleware.New("fx", versioned(&runs), middleware.WithPersistence(memory.New(10), scope.Global, aheadTTL),
				middleware.WithRefreshAhead(aheadWindow), middleware.WithObserver(obs), middleware.WithLogger(nil))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q := query{"eur", 1}
			h.Call(ctx, q)
			for want := int64(2); want <= 3; want++ {
				// Refreshes keep going, each stored: the flight of one that
				// panicked in the observer is not left listed.
				time.Sleep(2 * time.Millisecond)
				waitFor(t, "a refresh", func() bool {
					h.Call(ctx, q)
					s, _, _ := h.Peek(ctx, q)
					var n int64
					fmt.Sscanf(s.Value, "eur#%d", &n)
					return n >= want
				})
			}
			waitRefreshes(t)
		})
	}
}
