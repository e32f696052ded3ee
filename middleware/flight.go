package middleware

import (
	"context"
	"sync"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
)

// flights is the one registry of calls in flight in this process, for every
// step and store: a flight belongs to (store, key), not to a Wrap, so two
// Wraps of one step over one store, or a Wrap made per request, share it.
var flights registry

// flightKey names the flight of one key in one store. Sum covers everything
// but the execution; the store is compared as an interface, which is why
// Wrap refuses stores that are not comparable.
type flightKey struct {
	store backends.Store
	exec  string
	sum   keyer.Sum
	// refresh marks the flight of Refresh calls, which runs the step even
	// when a result is stored.
	refresh bool
}

// registry maps flight keys to flights. Shards keep concurrent misses of
// different keys off one lock; SHA-256 sums spread keys evenly.
type registry struct {
	shards [64]flightShard
}

type flightShard struct {
	mu sync.Mutex
	m  map[flightKey]any // *flight[Out] for the step's Out
	_  [40]byte          // keep neighbouring shards' locks off one cache line
}

func (r *registry) shard(k *flightKey) *flightShard {
	return &r.shards[k.sum[0]&63]
}

// flight is one run of a step for one key: one struct, one done channel that
// covers return, panic and Goexit alike. waiters and joined are guarded by
// the registry shard's lock; the result fields are written by the flight's
// body before done is closed and only read after it.
type flight[Out any] struct {
	fk      flightKey // zero for a flight that is not listed
	key     keyer.Key
	done    chan struct{}
	waiters int // callers still waiting
	joined  int // callers that ever waited

	// ctx is the step's context: &base, or &sctx when callers can leave.
	base stepBase
	sctx stepCtx
	ctx  context.Context

	val      Out
	err      error       // the step's error, ErrGoexit, or a strict store fault before the step
	storeErr error       // a strict step's write fault: returned with val
	panicked *PanicError // the step's (or a store's) panic, re-raised in every caller
	ran      bool
	ahead    bool      // a refresh ahead (WithRefreshAhead), which no caller started
	replaces time.Time // a refresh ahead's: the expiry of the entry it replaces
	dur      time.Duration
	tier     string // where the flight found a stored result
	origin   []byte
}

// join counts the caller into the flight of fk, starting one if there is
// none; started reports whether this caller started it and must run its
// body. A new flight's step context is made before the flight is listed,
// so that callers who join it see it whole: it keeps parent's values and
// key, and has a cancel of its own when cancellable is set. A flight of
// another result type under the same key (two steps that share a name and
// input type but not their result) is not joined: the caller gets an
// unlisted flight of its own.
func join[Out any](fk flightKey, parent context.Context, key keyer.Key, cancellable bool) (f *flight[Out], started bool) {
	sh := flights.shard(&fk)
	sh.mu.Lock()
	v, listed := sh.m[fk]
	if listed {
		if f, ok := v.(*flight[Out]); ok {
			f.waiters++
			f.joined++
			sh.mu.Unlock()
			return f, false
		}
		fk = flightKey{refresh: fk.refresh} // unlisted, but still a refresh
	}
	f = &flight[Out]{fk: fk, key: key, done: make(chan struct{}), waiters: 1, joined: 1}
	f.base = stepBase{parent: parent, key: &f.key}
	f.ctx = &f.base
	if cancellable {
		// WithoutCancel also hides the caller's cancellation cause from
		// context.Cause of the step's context.
		f.base.parent = context.WithoutCancel(parent)
		f.sctx.base = &f.base
		f.ctx = &f.sctx
	}
	if !listed {
		if sh.m == nil {
			sh.m = map[flightKey]any{}
		}
		sh.m[fk] = f
	}
	sh.mu.Unlock()
	return f, true
}

// begin lists a new flight of fk for a refresh ahead, which no caller
// waits on, unless a flight of fk is listed already (a miss's, or another
// refresh ahead: either stores a new result). The flight counts one waiter
// for the entry it refreshes, which leaves when that entry expires (see
// flyAhead); callers who join it, their entry expired, count as usual. Its
// step context has parent's values and none of its cancellation.
func begin[Out any](fk flightKey, parent context.Context, key keyer.Key) (*flight[Out], bool) {
	sh := flights.shard(&fk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, listed := sh.m[fk]; listed {
		return nil, false
	}
	f := &flight[Out]{fk: fk, key: key, done: make(chan struct{}), waiters: 1, ahead: true}
	f.base = stepBase{parent: context.WithoutCancel(parent), key: &f.key}
	f.sctx.base = &f.base
	f.ctx = &f.sctx
	if sh.m == nil {
		sh.m = map[flightKey]any{}
	}
	sh.m[fk] = f
	return f, true
}

// unlist removes f from the registry if it is still listed, so that the next
// caller of its key starts a new flight.
func (f *flight[Out]) unlist() {
	if f.fk.store == nil {
		return // never listed
	}
	sh := flights.shard(&f.fk)
	sh.mu.Lock()
	if v, ok := sh.m[f.fk]; ok && v == any(f) {
		delete(sh.m, f.fk)
	}
	sh.mu.Unlock()
}

// leave counts a caller that gives up waiting out of f and returns how
// many callers joined it.
// The last caller to leave unlists f before it cancels the step's context,
// so that no caller ever joins a flight that is being cancelled (the role
// singleflight's Forget plays).
func (f *flight[Out]) leave() (joined int) {
	var sh *flightShard
	if f.fk.store != nil {
		sh = flights.shard(&f.fk)
		sh.mu.Lock()
	}
	f.waiters--
	last := f.waiters == 0
	joined = f.joined
	if last && sh != nil {
		if v, ok := sh.m[f.fk]; ok && v == any(f) {
			delete(sh.m, f.fk)
		}
	}
	if sh != nil {
		sh.mu.Unlock()
	}
	if last {
		f.sctx.cancel()
	}
	return joined
}

// stepBase is the parent of a step's context: the values of the context of
// the caller that started the flight, the key (KeyFrom) and fencing token
// (FenceFrom), and none of that caller's deadline or cancellation, since the
// step must outlive the caller when others wait on it too. It is a field of
// the flight, so a flight costs no context allocations for it.
type stepBase struct {
	parent context.Context
	key    *keyer.Key
	fence  uint64
	fenced bool
}

func (*stepBase) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns nil: a stepBase is never cancelled, so context.WithCancel of
// it needs no goroutine and registers nothing with the starting caller's
// context.
func (*stepBase) Done() <-chan struct{} { return nil }
func (*stepBase) Err() error            { return nil }

func (b *stepBase) Value(k any) any {
	switch k.(type) {
	case keyCtx:
		return b.key
	case fenceCtx:
		if b.fenced {
			return b.fence
		}
		return nil
	}
	return b.parent.Value(k)
}

func (b *stepBase) String() string { return "docket step context" }

type keyCtx struct{}

type fenceCtx struct{}

// KeyFrom returns the key of the persisted step running with ctx, in the
// stable string form of keyer.Key.String. Use it as an idempotency key with
// external systems (payment APIs, message brokers): a re-run of the same call,
// in this process, another one or after a crash, has the same key.
func KeyFrom(ctx context.Context) (string, bool) {
	k, ok := ctx.Value(keyCtx{}).(*keyer.Key)
	if !ok {
		return "", false
	}
	return k.String(), true
}

// FenceFrom returns the fencing token of the lease the running step holds,
// when its store is shared between processes (a backends.Coordinator such
// as backends/redis). Tokens of one key only grow: hand the token to
// external systems that can refuse a write carrying a token lower than one
// they have already seen, so that a holder that paused past its lease
// cannot overwrite its successor's work. ok is false for steps of stores
// that are not shared, and for calls that ran without a lease because the
// shared store was unreachable.
func FenceFrom(ctx context.Context) (token uint64, ok bool) {
	t, ok := ctx.Value(fenceCtx{}).(uint64)
	return t, ok
}

// stepCtx is the context of a step whose callers can leave: stepBase's
// values, cancelled when the last caller has left (or the flight's lease is
// lost). It is a field of the flight, so making it allocates nothing; its
// done channel is made only if someone asks for it. It implements the
// AfterFunc method that package context looks for, so contexts the step
// derives from it start no goroutine to follow it.
type stepCtx struct {
	base *stepBase

	mu     sync.Mutex
	done   chan struct{}
	err    error
	afters map[*afterFunc]struct{}
}

type afterFunc struct{ f func() }

func (c *stepCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *stepCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *stepCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *stepCtx) Value(k any) any { return c.base.Value(k) }

func (c *stepCtx) String() string { return "docket step context (cancellable)" }

// AfterFunc arranges for f to run in its own goroutine once c is cancelled,
// as context.AfterFunc does; stop reports whether it stopped f from running.
func (c *stepCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.afters == nil {
		c.afters = map[*afterFunc]struct{}{}
	}
	c.afters[a] = struct{}{}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.afters[a]
		delete(c.afters, a)
		return ok
	}
}

// cancel cancels c with context.Canceled; later calls do nothing. A zero
// stepCtx (a flight whose callers cannot leave) has nothing to cancel.
func (c *stepCtx) cancel() {
	if c.base == nil {
		return
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	afters := c.afters
	c.afters = nil
	c.mu.Unlock()
	for a := range afters {
		go a.f()
	}
}
