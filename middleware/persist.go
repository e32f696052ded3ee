package middleware

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// Wrap returns step made persistent: Persist[In, Out](name, opts...)(step),
// with In and Out inferred from step. It is New(name, step, opts...).Step(),
// for callers that need no handle on what the step stores.
//
// Like regexp.MustCompile, Wrap panics when its arguments can never work: an
// empty name, no WithPersistence, an invalid scope, an input type that can
// never be keyed (it holds a func, chan or unsafe pointer), or WithClone on
// a result type without a Clone method.
func Wrap[In, Out any](name string, step func(context.Context, In) (Out, error), opts ...Option) Step[In, Out] {
	return New(name, step, opts...).Step()
}

// Persist returns middleware that makes a step persistent under name; see
// the package documentation for what runs once and what is shared. The
// middleware may wrap several steps: they share name, store and flights, so
// they must compute the same thing. It panics like Wrap.
func Persist[In, Out any](name string, opts ...Option) Middleware[In, Out] {
	p := newPersisted[In, Out](name, opts)
	return func(next Step[In, Out]) Step[In, Out] {
		return func(ctx context.Context, in In) (Out, error) {
			return p.call(ctx, next, in)
		}
	}
}

type persisted[In, Out any] struct {
	cfg   config
	info  keyer.StepInfo
	keys  *keyer.For[In]
	store backends.Store
	front backends.Store // looked in before joining a flight
	// coord is the store, or its back tier, when processes share it: the
	// flight then asks it for a lease instead of reading and writing it.
	coord backends.Coordinator
	codec backends.Codec
	clone func(Out) Out
	// purger is what Workflow calls register with their execution: the
	// store, or the store and the observer that counts its purges.
	purger scope.Purger
	// frontTier is the front's name, the tier its hits are counted under.
	frontTier string
	stats     stepStats
}

func newPersisted[In, Out any](name string, opts []Option) *persisted[In, Out] {
	cfg := newConfig(opts)
	if name == "" {
		panic("docket: Persist/Wrap needs a step name")
	}
	if cfg.store == nil {
		panic(fmt.Sprintf("docket: step %q: Persist/Wrap needs WithPersistence with a non-nil store", name))
	}
	if !cfg.scope.Valid() {
		panic(fmt.Sprintf("docket: step %q: invalid scope %d (use scope.Workflow or scope.Global)", name, cfg.scope))
	}
	mustRoundTrip[Out](name, cfg.store, cfg.codec)
	p := &persisted[In, Out]{
		cfg:   cfg,
		info:  keyer.StepInfo{Name: name, Version: cfg.version, Scope: cfg.scope},
		store: cfg.store,
		front: cfg.store,
		codec: codec.Bind[Out](cfg.codec),
	}
	if cfg.ahead != 0 {
		switch {
		case cfg.scope != scope.Global:
			panic(fmt.Sprintf("docket: step %q: WithRefreshAhead is for Global steps (a Workflow entry ends with its execution)", name))
		case cfg.ttl <= 0:
			panic(fmt.Sprintf("docket: step %q: WithRefreshAhead needs a TTL in WithPersistence (entries without one never expire)", name))
		case cfg.ahead < 0 || cfg.ahead >= cfg.ttl:
			panic(fmt.Sprintf("docket: step %q: WithRefreshAhead(%v) needs a window greater than zero and shorter than the TTL (%v)", name, cfg.ahead, cfg.ttl))
		}
	}
	if !reflect.TypeOf(cfg.store).Comparable() {
		// Executions list their stores and compare them with ==.
		panic(fmt.Sprintf("docket: step %q: WithPersistence needs a comparable store (a pointer), not %T", name, cfg.store))
	}
	p.purger = cfg.store
	if cfg.observer != nil {
		if !reflect.TypeOf(cfg.observer).Comparable() {
			panic(fmt.Sprintf("docket: step %q: WithObserver needs a comparable observer (a pointer), not %T", name, cfg.observer))
		}
		p.purger = observedPurger{store: cfg.store, obs: cfg.observer}
	}
	if l, ok := cfg.store.(backends.Layered); ok {
		if p.front = l.Front(); p.front == nil {
			panic(fmt.Sprintf("docket: step %q: %T has no front tier (use backends.Tiered)", name, cfg.store))
		}
	}
	p.frontTier = p.front.Name()
	p.coord, _ = cfg.store.(backends.Coordinator)
	if t, ok := cfg.store.(interface{ Back() backends.Store }); ok && p.coord == nil {
		p.coord, _ = t.Back().(backends.Coordinator)
	}
	if cfg.keyer == nil {
		keys, err := keyer.NewFor[In](p.info)
		if err != nil {
			panic(fmt.Sprintf("docket: step %q: %v", name, err))
		}
		p.keys = keys
	}
	if cfg.clone {
		_, ok := any(*new(Out)).(interface{ Clone() Out })
		if !ok && reflect.TypeFor[Out]().Kind() != reflect.Interface {
			panic(fmt.Sprintf("docket: step %q: WithClone needs a method Clone() %v on the result type", name, reflect.TypeFor[Out]()))
		}
		p.clone = func(v Out) Out {
			if c, ok := any(v).(interface{ Clone() Out }); ok {
				return c.Clone()
			}
			return v
		}
	}
	return p
}

// A call, top to bottom: call (observer) → do (key, front tier) → miss
// (join or start the key's flight, wait) → fly (the flight's body: second
// look, lease, step, write).

func (p *persisted[In, Out]) call(ctx context.Context, next Step[In, Out], in In) (Out, error) {
	if p.cfg.observer == nil {
		return p.do(ctx, next, &in, nil)
	}
	ctx, span := p.cfg.observer.Start(ctx, p.callInfo(ctx))
	if span == nil {
		// Kept out of observed, whose frame (Outcome, deferred recover)
		// would cost the hits of an observer that records nothing.
		return p.do(ctx, next, &in, nil)
	}
	return p.observed(ctx, span, next, &in)
}

// observed is call with an observer that watches it: the outcome is
// collected on the stack and handed to the span at the end, a panic
// included.
func (p *persisted[In, Out]) observed(ctx context.Context, span CallSpan, next Step[In, Out], in *In) (out Out, err error) {
	var o Outcome
	ended := false
	defer func() {
		if ended {
			return
		}
		r := recover()
		if r == nil {
			// runtime.Goexit, in a step run inline: let it go on.
			o.Result, o.Err = ResultError, ErrGoexit
			span.End(o)
			return
		}
		o.Result, o.Err = ResultError, &PanicError{Value: r}
		if pe, ok := r.(*PanicError); ok {
			o.Err = pe
		}
		span.End(o)
		panic(r)
	}()
	out, err = p.do(ctx, next, in, &o)
	if err != nil && o.Result == 0 {
		// Failed before or without a flight. A flight's failures set
		// ResultError themselves; a strict write fault keeps its Result,
		// since the call did return the step's result.
		o.Result = ResultError
	}
	o.Err = err
	ended = true
	span.End(o)
	return out, err
}

// do runs one call; o, when not nil, collects what an observer sees.
func (p *persisted[In, Out]) do(ctx context.Context, next Step[In, Out], in *In, o *Outcome) (Out, error) {
	var zero Out
	ctl := controlOf(ctx)
	if ctl == controlBypass {
		return p.bypass(ctx, next, in, o)
	}
	key, exec, err := p.key(ctx, in)
	if err != nil {
		p.stats.failed()
		return zero, err
	}
	if o != nil {
		o.Key = key
	}
	if ctl == controlRefresh {
		if o != nil {
			o.Reason = ReasonRefresh
		}
		return p.miss(ctx, next, key, exec, in, o, ReasonRefresh)
	}
	// The flight looks in the whole store again and reports what it finds
	// there, so a front fault is reported here only when the front is not
	// the whole store.
	v, e, why, err := p.lookup(ctx, p.front, key, p.front != p.store)
	if why == ReasonNone {
		if o != nil {
			o.Result, o.Tier, o.Origin = ResultHit, e.Tier, e.Origin
		}
		if e.Tier == p.frontTier || e.Tier == "" {
			p.stats.frontHit(e.Failure != nil)
		} else {
			p.stats.hit(e.Tier, e.Failure != nil)
		}
		if e.Failure != nil {
			return zero, p.storedErr(e.Failure)
		}
		if p.cfg.ahead > 0 {
			p.refreshAhead(ctx, next, key, in, e.Expires)
		}
		return p.result(v), nil
	}
	if o != nil {
		o.Reason = why
	}
	if err != nil {
		p.stats.miss(why, true)
		return zero, err
	}
	return p.miss(ctx, next, key, exec, in, o, why)
}

// bypass runs the step for a call under Bypass: no key, no store, no
// flight.
func (p *persisted[In, Out]) bypass(ctx context.Context, next Step[In, Out], in *In, o *Outcome) (out Out, err error) {
	p.stats.calls.Add(1)
	p.stats.misses[ReasonBypass].Add(1)
	var dur time.Duration
	returned := false
	defer func() {
		// A step that panics or calls runtime.Goexit fails the call too.
		if err != nil || !returned {
			p.stats.errors.Add(1)
		}
		if o != nil {
			o.Reason = ReasonBypass
			o.Result, o.Ran, o.StepDuration = ResultMiss, true, dur
		}
	}()
	out, err = p.timed(ctx, next, *in, &dur)
	returned = true
	return out, err
}

// key computes the call's key. Workflow calls also record the store on the
// execution, so that End(nil) purges it even if this call only reads.
func (p *persisted[In, Out]) key(ctx context.Context, in *In) (keyer.Key, *scope.Execution, error) {
	var exec *scope.Execution
	if p.info.Scope == scope.Workflow {
		if exec = scope.FromContext(ctx); exec == nil {
			return keyer.Key{}, nil, fmt.Errorf("docket: step %q: %w", p.info.Name, scope.ErrNoExecution)
		}
		if err := exec.Track(p.purger); err != nil {
			return keyer.Key{}, nil, fmt.Errorf("docket: step %q in execution %q: %w", p.info.Name, exec.ID(), err)
		}
	}
	if p.keys == nil {
		k, err := p.cfg.keyer.Key(ctx, p.info, *in)
		if err != nil {
			return keyer.Key{}, nil, fmt.Errorf("docket: step %q: %w", p.info.Name, err)
		}
		return k, exec, nil
	}
	sum, err := p.keys.Sum(in)
	if err != nil {
		return keyer.Key{}, nil, fmt.Errorf("docket: step %q: %w", p.info.Name, err)
	}
	k := keyer.Key{Scope: p.info.Scope, Step: p.info.Name, Sum: sum}
	if exec != nil {
		k.Execution = exec.ID()
	}
	return k, exec, nil
}

// lookup is the one read of a store, before the flight (front tier) and in
// it (whole store). It returns ReasonNone and the value on a hit (a stored
// failure, under WithErrorCaching, is a hit whose e.Failure is set), and
// why it missed otherwise. A read that is not a plain miss is a fault: reported
// when report is set, and under WithStrict also returned as err, for the
// call to fail without running the step.
func (p *persisted[In, Out]) lookup(ctx context.Context, s backends.Store, key keyer.Key, report bool) (Out, backends.Entry, Reason, error) {
	var zero Out
	e, err := s.Get(ctx, key, p.codec)
	if err == nil {
		if e.Failure != nil {
			return zero, e, ReasonNone, nil
		}
		if v, ok := asOut[Out](e.Value); ok {
			return v, e, ReasonNone, nil
		}
		err = p.wrongType(e.Value)
	}
	why := reason(err)
	if why == ReasonAbsent || why == ReasonExpired {
		return zero, e, why, nil
	}
	if p.cfg.strict {
		err = p.storeErr("read", err)
		p.fault(ctx, "read", key, err)
		return zero, e, why, err
	}
	if report {
		p.fault(ctx, "read", key, err)
	}
	return zero, e, why, nil
}

// miss joins the key's flight, or starts it, and waits for its result or
// for the caller's context to end, whichever comes first. A refresh joins
// the key's refresh flight, which runs the step whatever is stored: a
// flight of plain misses may answer from the store.
func (p *persisted[In, Out]) miss(ctx context.Context, next Step[In, Out], key keyer.Key, exec *scope.Execution, in *In, o *Outcome, why Reason) (Out, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		// Gone already: neither start nor join a flight.
		p.stats.miss(why, true)
		return zero, err
	}
	refresh := why == ReasonRefresh
	// The step keeps the starting caller's values (trace, execution) but
	// outlives that caller when others wait on it too. A caller whose
	// context can never end never leaves, so when it starts a flight it
	// runs the body itself, and the step's context needs no cancel of its
	// own (unless a lease that can be lost needs one).
	inline := ctx.Done() == nil
	f, started := join[Out](flightKey{store: p.store, exec: key.Execution, sum: key.Sum, refresh: refresh}, ctx, key, !inline || p.coord != nil)
	if started {
		// A store that is its own front tier (memory) never blocks, so its
		// second look runs here, on the caller's goroutine: a hit then
		// needs no goroutine, and the flight's starts on a shallow stack.
		near := p.front == p.store && p.coord == nil && !refresh
		switch {
		case inline:
			p.flyInline(f, next, key, exec, *in, o, why)
		case near && p.lookNear(f, key):
		default:
			go p.fly(f.ctx, f, next, key, exec, *in, near)
		}
	}
	if !started {
		p.stats.shared.Add(1)
	}
	if o != nil {
		o.Flight, o.Joined = f.ctx, !started
		o.Result = ResultShared
		if started {
			o.Result = ResultMiss
		}
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		f.leave()
		p.stats.miss(why, true)
		if o != nil {
			o.Result = ResultError
		}
		return zero, ctx.Err()
	}
	// The flight is over and unlisted, so nobody joins it any more and its
	// count of joined callers is final: a caller that got its result
	// leaves without taking the registry's lock (a hot key has a thousand
	// such callers at once), and the step's context was cancelled by fly.
	joined := f.joined
	// The flight's outcome is the call's: a stored result its look found
	// is a hit of that tier, for every caller of the flight.
	failed := f.panicked != nil || f.err != nil || f.storeErr != nil
	if f.tier != "" && f.panicked == nil {
		p.stats.hit(f.tier, failed)
	} else {
		p.stats.miss(why, failed)
	}
	if o != nil {
		if f.panicked == nil {
			o.Tier, o.Origin = f.tier, f.origin
		}
		if started {
			o.Ran, o.StepDuration, o.Waiters = f.ran, f.dur, joined
		}
	}
	if f.panicked != nil {
		if o != nil {
			o.Result = ResultError
		}
		panic(f.panicked)
	}
	if f.err != nil {
		if o != nil {
			o.Result = ResultError
		}
		return zero, f.err
	}
	return p.result(f.val), f.storeErr
}

// fly is the body of a flight. Whatever way the step ends (return, panic,
// runtime.Goexit), the flight is unlisted and done is closed, so that no
// caller is left waiting. A panic of the step, a store or a codec is
// recovered here and re-raised in every caller, where it can be recovered:
// a goroutine of the flight must never die of it, which would kill the
// process. ctx is the step's context: f.ctx, or for a refresh ahead one
// with the refresh's own span.
func (p *persisted[In, Out]) fly(ctx context.Context, f *flight[Out], next Step[In, Out], key keyer.Key, exec *scope.Execution, in In, looked bool) {
	normal := false
	defer func() {
		if !normal {
			if r := recover(); r != nil {
				f.panicked = &PanicError{Value: r, Stack: debug.Stack()}
			} else {
				f.err = ErrGoexit
			}
		}
		// Unlisted only now that the result is stored: a caller that then
		// starts a new flight finds it in its second look.
		f.unlist()
		close(f.done)
		// The step has returned: what it left running on its context
		// stops now, whoever still waits.
		f.sctx.cancel()
	}()
	p.run(ctx, f, next, key, exec, in, looked)
	normal = true
}

// flyInline is fly on the goroutine of the caller that started the flight.
// A step that calls runtime.Goexit ends that goroutine, and with it miss,
// which would count nothing of the call: it is counted here, as a failed
// miss, and its run reported to the observer, so that Stats and metrics
// still see every call and every run.
func (p *persisted[In, Out]) flyInline(f *flight[Out], next Step[In, Out], key keyer.Key, exec *scope.Execution, in In, o *Outcome, why Reason) {
	returned := false
	defer func() {
		if returned {
			return
		}
		p.stats.miss(why, true)
		if o != nil {
			// fly has unlisted f: its count of joined callers is final.
			o.Flight, o.Ran, o.StepDuration, o.Waiters = f.ctx, f.ran, f.dur, f.joined
		}
	}()
	p.fly(f.ctx, f, next, key, exec, in, false)
	returned = true
}

// lookNear is the second look of a flight, on the goroutine that starts
// it: in a store that is its own front tier (which never blocks), and in
// the front tier for a refresh ahead, which only a result no longer due
// settles (a refresh stored it after the hit that started this one read
// the old entry). It reports whether that settled the flight (a hit, a
// strict fault, a panic of the store), which is then over: callers that
// joined it get what it found.
func (p *persisted[In, Out]) lookNear(f *flight[Out], key keyer.Key) (settled bool) {
	defer func() {
		if r := recover(); r != nil {
			f.panicked = &PanicError{Value: r, Stack: debug.Stack()}
			settled = true
		}
		if settled {
			f.unlist()
			close(f.done)
		}
	}()
	if f.ahead {
		v, e, why, _ := p.lookup(f.ctx, p.front, key, false)
		if why != ReasonNone || e.Failure != nil || p.due(e.Expires) {
			return false
		}
		p.settle(f, v, e, e.Tier)
		return true
	}
	v, e, why, err := p.lookup(f.ctx, p.store, key, true)
	if why == ReasonNone {
		p.settle(f, v, e, e.Tier)
		return true
	}
	f.err = err
	return err != nil
}

// run looks in the store a second time, runs the step and stores its result.
func (p *persisted[In, Out]) run(ctx context.Context, f *flight[Out], next Step[In, Out], key keyer.Key, exec *scope.Execution, in In, looked bool) {
	// A flight that ended just before this one began has already stored the
	// result; without this look (here or in lookNear) its key would run
	// twice.
	var lease backends.Lease
	switch {
	case looked:
	case f.fk.refresh || f.ahead:
		// A refresh runs the step whatever is stored, and takes no lease:
		// a lease would hand it the stored result it is meant to replace.
		// (A refresh ahead has looked already, in lookNear.)
	case p.coord == nil:
		v, e, why, err := p.lookup(ctx, p.store, key, true)
		if why == ReasonNone {
			p.settle(f, v, e, e.Tier)
			return
		}
		if err != nil {
			f.err = err
			return
		}
	default:
		var hit bool
		if lease, hit = p.acquire(f, key); hit || f.err != nil {
			return
		}
		if lease != nil {
			defer p.watch(f, lease)()
			// Every lease is ended once, by Commit or Release: also when the
			// step panics or calls runtime.Goexit, or the key stays stuck
			// while this process renews it.
			defer func() {
				if lease != nil {
					_ = lease.Release(&f.base)
				}
			}()
		}
	}

	f.ran = true // before the step, so that a run that panics is reported too
	out, err := p.timed(ctx, next, in, &f.dur)
	if err == nil && f.ahead {
		if f.err = p.inputChanged(ctx, key, &in); f.err != nil {
			return
		}
		if p.replaced(ctx, f, key) {
			return
		}
	}
	if err != nil {
		// Failures are not stored, but for those WithErrorCaching marks
		// terminal; a lease is given up so that another process can try
		// at once, or ended with the terminal failure as its result.
		f.err = err
		code, terminal := p.terminal(ctx, err)
		if lease != nil && closed(lease.Lost()) {
			// The step most likely failed because its context was cancelled
			// when the lease was lost: say so, rather than a bare
			// context.Canceled its callers never asked for.
			f.err = p.storeErr("lease", fmt.Errorf("%w: the step's context was cancelled: %w", backends.ErrLeaseLost, err))
			p.fault(ctx, "lease", key, f.err)
			terminal = false
		}
		switch {
		case lease != nil && terminal && !(exec != nil && exec.Dropped()):
			// Commit stores the failure only if no result is stored.
			if _, cerr := p.commit(f, lease, key, p.failureEntry(ctx, exec, code, err)); cerr != nil {
				p.fault(ctx, "write", key, cerr)
			}
			lease = nil
		case lease != nil:
			if rerr := lease.Release(&f.base); rerr != nil {
				p.fault(ctx, "release", key, rerr)
			}
			lease = nil
		case terminal:
			p.storeFailure(f, key, exec, code, err)
		}
		return
	}
	now := time.Now()
	f.val = out
	if exec != nil && exec.Dropped() {
		// The execution ended with End(nil) while the step ran (its callers
		// may have gone): nothing lands.
		if lease != nil {
			_ = lease.Release(&f.base)
			lease = nil
		}
		return
	}
	entry := backends.Entry{Value: out, Created: now, Version: p.info.Version, Step: key.Step}
	if p.cfg.ttl > 0 {
		entry.Expires = now.Add(p.cfg.ttl)
	}
	if exec != nil {
		entry.Execution = exec.ID()
	} else if id, ok := scope.ExecutionID(ctx); ok {
		entry.Execution = id
	}
	if p.cfg.observer != nil {
		entry.Origin = p.cfg.observer.Origin(ctx)
	}
	// The result is worth keeping even if every caller has gone: the
	// flight's base context has the step's values and is never cancelled.
	wctx := context.Context(&f.base)
	var err2 error
	if lease != nil {
		var won backends.Entry
		won, err2 = p.commit(f, lease, key, entry)
		if err2 == nil {
			// A late writer gets the winner's result, a stored failure
			// included.
			p.settle(f, f.val, won, f.tier)
		}
		lease = nil
	} else {
		err2 = p.store.Set(wctx, key, entry, p.codec)
	}
	if err2 != nil {
		if p.cfg.strict {
			f.storeErr = p.storeErr("write", err2)
		}
		p.fault(ctx, "write", key, err2)
	}
	if exec != nil && exec.Dropped() {
		// End(nil) began while this result was being written, and its
		// purge may have run before the write: remove it.
		_ = p.store.Delete(wctx, key)
	}
}

// timed runs the step, sets *dur to how long it took and counts the run,
// one that panics or calls runtime.Goexit included.
func (p *persisted[In, Out]) timed(ctx context.Context, next Step[In, Out], in In, dur *time.Duration) (Out, error) {
	start := time.Now()
	defer func() {
		*dur = time.Since(start)
		p.stats.ran(*dur)
	}()
	return next(ctx, in)
}

// acquire is the second look of a flight whose store processes share: the
// front tier (another flight of this process may have just filled it), then
// the shared tier's lease, which either finds the result another process
// stored or makes this process the one that runs the step. With the shared
// tier unreachable the step runs without a lease (WithStrict: the call
// fails), as a failed read of any store would.
func (p *persisted[In, Out]) acquire(f *flight[Out], key keyer.Key) (backends.Lease, bool) {
	ctx := f.ctx
	if p.front != p.store {
		if v, e, why, _ := p.lookup(ctx, p.front, key, false); why == ReasonNone {
			p.settle(f, v, e, e.Tier)
			return nil, true
		}
	}
	e, lease, err := p.coord.Acquire(ctx, key, p.codec)
	if err == nil && lease == nil {
		if v, ok := asOut[Out](e.Value); ok || e.Failure != nil {
			p.settle(f, v, e, p.coord.Name())
			if p.front != p.store {
				_ = p.front.Set(context.WithoutCancel(ctx), key, e, p.codec)
			}
			return nil, true
		}
		// A result of another type under this key: run the step, and let
		// the commit settle which result stays.
		err = p.wrongType(e.Value)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Every caller has left while this process waited on another
			// one's lease.
			f.err = ctx.Err()
			if lease != nil {
				_ = lease.Release(&f.base)
			}
			return nil, false
		}
		if p.cfg.strict && lease == nil {
			f.err = p.storeErr("acquire", err)
			p.fault(ctx, "acquire", key, f.err)
			return nil, false
		}
		p.fault(ctx, "acquire", key, err)
	}
	if lease != nil {
		f.base.fence, f.base.fenced = lease.Token(), true
	}
	return lease, false
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// watch cancels the step's context when its lease is lost, until the
// returned stop is called.
func (p *persisted[In, Out]) watch(f *flight[Out], lease backends.Lease) (stop func()) {
	stopped := make(chan struct{})
	go func() {
		select {
		case <-lease.Lost():
			f.sctx.cancel()
		case <-stopped:
		}
	}()
	return func() { close(stopped) }
}

// commit stores entry under the flight's lease and returns the entry the
// shared tier holds then: entry, or, for a late writer (its lease expired
// and another process committed), the winner's, which the caller hands its
// callers in place of its own: every caller in every process gets the same
// value. The front tier gets the same entry.
func (p *persisted[In, Out]) commit(f *flight[Out], lease backends.Lease, key keyer.Key, entry backends.Entry) (backends.Entry, error) {
	wctx := context.Context(&f.base)
	won, err := lease.Commit(wctx, entry, p.codec)
	if err != nil {
		if !errors.Is(err, backends.ErrLeaseLost) && p.front != p.store {
			// The shared tier failed: this process still serves the result.
			_ = p.front.Set(wctx, key, entry, p.codec)
		}
		return entry, err
	}
	if won.Failure != nil && entry.Failure != nil {
		// The failure stored is this flight's own: keep the original error
		// in the front tier.
		won.Failure = entry.Failure
	}
	if p.front != p.store {
		return won, p.front.Set(wctx, key, won, p.codec)
	}
	return won, nil
}

// settle gives a flight what a look or a commit found: a stored result,
// or a stored failure (WithErrorCaching), from tier. A value of another
// type than Out (a commit's winner of another step) leaves f.val as is.
func (p *persisted[In, Out]) settle(f *flight[Out], v Out, e backends.Entry, tier string) {
	if e.Failure != nil {
		f.err, f.tier, f.origin = p.storedErr(e.Failure), tier, e.Origin
		return
	}
	if w, ok := asOut[Out](e.Value); ok {
		v = w
	}
	f.val, f.tier, f.origin = v, tier, e.Origin
}

func (p *persisted[In, Out]) result(v Out) Out {
	if p.clone != nil {
		return p.clone(v)
	}
	return v
}

func (p *persisted[In, Out]) wrongType(v any) error {
	return fmt.Errorf("%w: stored value is %T, not %v", backends.ErrCorrupt, v, reflect.TypeFor[Out]())
}

func (p *persisted[In, Out]) callInfo(ctx context.Context) CallInfo {
	id, _ := scope.ExecutionID(ctx)
	return CallInfo{Step: p.info.Name, Version: p.info.Version, Scope: p.info.Scope, Execution: id}
}

// reason classifies a failed lookup for observers.
func reason(err error) Reason {
	switch {
	case errors.Is(err, backends.ErrExpired):
		return ReasonExpired
	case errors.Is(err, backends.ErrNotFound):
		return ReasonAbsent
	case errors.Is(err, backends.ErrCorrupt):
		return ReasonCorrupt
	}
	return ReasonFault
}

func (p *persisted[In, Out]) storeErr(op string, err error) error {
	return fmt.Errorf("docket: step %q: %s %s: %w: %w", p.info.Name, p.store.Name(), op, ErrStore, err)
}

// fault reports a store fault to the observer and the log.
func (p *persisted[In, Out]) fault(ctx context.Context, op string, key keyer.Key, err error) {
	if p.cfg.observer != nil {
		p.cfg.observer.Fault(ctx, p.callInfo(ctx), p.store.Name(), op, err)
	}
	if p.cfg.logger == nil {
		return
	}
	msg := "docket: store fault treated as a miss"
	if p.cfg.strict {
		msg = "docket: store fault"
	}
	p.cfg.logger.Warn(msg, "step", p.info.Name, "store", p.store.Name(), "op", op, "key", key.String(), "err", err)
}

// observedPurger reports an execution's purge of one store to an observer.
// It is comparable, so an execution that many steps share registers it once
// per (store, observer).
type observedPurger struct {
	store backends.Store
	obs   Observer
}

func (o observedPurger) PurgeExecution(ctx context.Context, id string) (int, error) {
	n, err := o.store.PurgeExecution(ctx, id)
	o.obs.Purged(ctx, o.store.Name(), id, n, err)
	return n, err
}

// asOut returns v as a result: a stored nil is the zero value of an
// interface result type, which a type assertion would refuse.
func asOut[Out any](v any) (Out, bool) {
	out, ok := v.(Out)
	if !ok && v == nil && reflect.TypeFor[Out]().Kind() == reflect.Interface {
		return out, true
	}
	return out, ok
}
