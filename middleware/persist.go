package middleware

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// Wrap returns step made persistent: Persist[In, Out](name, opts...)(step),
// with In and Out inferred from step.
//
// Like regexp.MustCompile, Wrap panics when its arguments can never work: an
// empty name, no WithPersistence, an invalid scope, an input type that can
// never be keyed (it holds a func, chan or unsafe pointer), or WithClone on
// a result type without a Clone method.
func Wrap[In, Out any](name string, step func(context.Context, In) (Out, error), opts ...Option) Step[In, Out] {
	return Persist[In, Out](name, opts...)(step)
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
	codec backends.Codec
	clone func(Out) Out
	// purger is what Workflow calls register with their execution: the
	// store, or the store and the observer that counts its purges.
	purger scope.Purger

	group   singleflight.Group
	mu      sync.Mutex
	flights map[flightKey]*flight
	gen     uint64
}

// flightKey names the flight of one key; Sum covers everything but the
// execution.
type flightKey struct {
	exec string
	sum  keyer.Sum
}

// flight is one run of the step for one key. Its waiters count the callers
// still waiting on it; when the last one leaves, the step's context is
// cancelled. gen makes its singleflight key unique, so that a caller always
// joins the flight it counted itself in.
type flight struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int
	joined  int // callers that ever waited on it
	gen     uint64
	// goexit is closed when the step called runtime.Goexit.
	goexit chan struct{}
	// key is what KeyFrom gives the step; the context points here.
	key keyer.Key
	// once runs the body; val and err are its result.
	once sync.Once
	val  any
	err  error
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
		cfg:     cfg,
		info:    keyer.StepInfo{Name: name, Version: cfg.version, Scope: cfg.scope},
		store:   cfg.store,
		front:   cfg.store,
		codec:   codec.Bind[Out](cfg.codec),
		flights: map[flightKey]*flight{},
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
		p.front = l.Front()
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

// key computes the call's key. Workflow calls also record the store on the
// execution, so that End(nil) purges it even if this call only reads.
func (p *persisted[In, Out]) key(ctx context.Context, in *In) (keyer.Key, error) {
	var exec *scope.Execution
	if p.info.Scope == scope.Workflow {
		if exec = scope.FromContext(ctx); exec == nil {
			return keyer.Key{}, fmt.Errorf("docket: step %q: %w", p.info.Name, scope.ErrNoExecution)
		}
		if err := exec.Track(p.purger); err != nil {
			return keyer.Key{}, fmt.Errorf("docket: step %q in execution %q: %w", p.info.Name, exec.ID(), err)
		}
	}
	if p.keys == nil {
		k, err := p.cfg.keyer.Key(ctx, p.info, *in)
		if err != nil {
			return keyer.Key{}, fmt.Errorf("docket: step %q: %w", p.info.Name, err)
		}
		return k, nil
	}
	sum, err := p.keys.Sum(in)
	if err != nil {
		return keyer.Key{}, fmt.Errorf("docket: step %q: %w", p.info.Name, err)
	}
	k := keyer.Key{Scope: p.info.Scope, Step: p.info.Name, Sum: sum}
	if exec != nil {
		k.Execution = exec.ID()
	}
	return k, nil
}

func (p *persisted[In, Out]) result(v Out) Out {
	if p.clone != nil {
		return p.clone(v)
	}
	return v
}

func (p *persisted[In, Out]) call(ctx context.Context, next Step[In, Out], in In) (Out, error) {
	if p.cfg.observer == nil {
		return p.do(ctx, next, in, nil)
	}
	ctx, span := p.cfg.observer.Start(ctx, p.callInfo(ctx))
	if span == nil {
		// Kept out of observed, whose frame (Outcome, deferred recover)
		// would cost the hits of an observer that records nothing.
		return p.do(ctx, next, in, nil)
	}
	return p.observed(ctx, span, next, in)
}

// observed is call with an observer that watches it: the outcome is
// collected on the stack and handed to the span at the end, a panic
// included.
func (p *persisted[In, Out]) observed(ctx context.Context, span CallSpan, next Step[In, Out], in In) (out Out, err error) {
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

// do runs one call; o, when not nil, collects what an observer sees.
func (p *persisted[In, Out]) do(ctx context.Context, next Step[In, Out], in In, o *Outcome) (Out, error) {
	var zero Out
	key, err := p.key(ctx, &in)
	if err != nil {
		return zero, err
	}
	e, err := p.front.Get(ctx, key, p.codec)
	if err == nil {
		if v, ok := asOut[Out](e.Value); ok {
			if o != nil {
				o.Key, o.Result, o.Tier, o.Origin = key, ResultHit, e.Tier, e.Origin
			}
			return p.result(v), nil
		}
		err = p.wrongType(e.Value)
	}
	if o != nil {
		o.Key, o.Reason = key, reason(err)
	}
	if !errors.Is(err, backends.ErrNotFound) {
		if p.cfg.strict {
			err = p.storeErr("read", err)
			p.fault(ctx, "read", key, err)
			return zero, err
		}
		if p.front != p.store {
			// The flight looks in the whole store, front included, and
			// reports what it finds there.
			p.fault(ctx, "read", key, err)
		}
	}
	return p.miss(ctx, next, key, in, o)
}

func (p *persisted[In, Out]) wrongType(v any) error {
	return fmt.Errorf("%w: stored value is %T, not %v", backends.ErrCorrupt, v, reflect.TypeFor[Out]())
}

// outcome is what a flight hands its callers.
type outcome[Out any] struct {
	v      Out
	err    error // a store error of a strict step that did produce v
	ran    bool
	dur    time.Duration
	tier   string // the tier the second look found v in
	origin []byte
}

func (p *persisted[In, Out]) miss(ctx context.Context, next Step[In, Out], key keyer.Key, in In, o *Outcome) (Out, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		// Gone already: neither start nor join a flight.
		return zero, err
	}
	fk := flightKey{exec: key.Execution, sum: key.Sum}
	p.mu.Lock()
	f := p.flights[fk]
	started := f == nil
	// A caller whose context can never end never leaves its flight, so
	// when it starts one it runs the step itself: no goroutine, and the
	// step's context needs no cancel of its own.
	inline := started && ctx.Done() == nil
	if started {
		p.gen++
		f = &flight{gen: p.gen, goexit: make(chan struct{}), key: key}
		// The step keeps the starting caller's values (trace, execution,
		// key) but must outlive that caller when others wait on it too.
		base := context.WithValue(ctx, keyCtx{}, &f.key)
		if inline {
			f.ctx, f.cancel = base, func() {}
		} else {
			f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(base))
		}
		p.flights[fk] = f
	}
	f.waiters++
	f.joined++
	p.mu.Unlock()
	if o != nil {
		o.Flight = f.ctx
		if started {
			o.Result = ResultMiss
		} else {
			o.Result = ResultShared
		}
	}

	sk := flightName(key, f.gen)
	// fn runs the flight's body once, however often singleflight calls it:
	// a caller counted in f may reach DoChan only after f's call has ended,
	// and singleflight would then start it again.
	fn := func() (any, error) {
		f.once.Do(func() {
			// What a later call sees if the body ends in runtime.Goexit.
			f.err = ErrGoexit
			f.val, f.err = p.flyOnce(f, fk, next, key, in)
		})
		return f.val, f.err
	}
	var r singleflight.Result
	if inline {
		r.Val, r.Err, _ = p.group.Do(sk, fn)
	} else {
		select {
		case r = <-p.group.DoChan(sk, fn):
		case <-f.goexit:
			r.Err = ErrGoexit
		case <-ctx.Done():
			p.leave(fk, f)
			if o != nil {
				o.Result = ResultError
			}
			return zero, ctx.Err()
		}
	}
	joined := p.leave(fk, f)
	if r.Err != nil {
		if o != nil {
			o.Result = ResultError
		}
		// Only the flight's own panics, never a step's error that wraps
		// one: those arrive as the *PanicError itself.
		if pe, ok := r.Err.(*PanicError); ok {
			panic(pe)
		}
		return zero, r.Err
	}
	res := r.Val.(outcome[Out])
	if o != nil {
		o.Tier, o.Origin = res.tier, res.origin
		if started {
			o.Ran, o.StepDuration, o.Waiters = res.ran, res.dur, joined
		}
	}
	return p.result(res.v), res.err
}

// flightName is the singleflight key of a flight: the key's identity and the
// flight's generation, so that a caller only ever joins the flight it was
// counted in.
func flightName(key keyer.Key, gen uint64) string {
	var arr [96]byte
	b := append(arr[:0], key.Sum[:]...)
	b = binary.AppendUvarint(b, gen)
	return string(append(b, key.Execution...))
}

// finish unlists a flight that has ended, so that the next call starts anew.
func (p *persisted[In, Out]) finish(fk flightKey, f *flight) {
	p.mu.Lock()
	if p.flights[fk] == f {
		delete(p.flights, fk)
	}
	p.mu.Unlock()
}

// leave counts a caller out of a flight; the last one to leave cancels the
// step's context and unlists the flight, so later callers start a new one
// rather than join a step that is being cancelled. It returns how many
// callers joined the flight so far.
func (p *persisted[In, Out]) leave(fk flightKey, f *flight) int {
	p.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last && p.flights[fk] == f {
		delete(p.flights, fk)
	}
	joined := f.joined
	p.mu.Unlock()
	if last {
		f.cancel()
	}
	return joined
}

// flyOnce is the body of a flight, unlisted when it ends. callStep catches
// the step's panics; this catches a store's or codec's, which singleflight
// would otherwise re-raise where no caller can recover them.
func (p *persisted[In, Out]) flyOnce(f *flight, fk flightKey, next Step[In, Out], key keyer.Key, in In) (v any, err error) {
	defer p.finish(fk, f)
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return p.fly(f, next, key, in)
}

// fly is the body of a flight: the second look, the step, the write.
func (p *persisted[In, Out]) fly(f *flight, next Step[In, Out], key keyer.Key, in In) (any, error) {
	ctx := f.ctx
	// A flight that ended just before this one began has already stored the
	// result; without this look its key would run twice.
	e, err := p.store.Get(ctx, key, p.codec)
	if err == nil {
		if v, ok := asOut[Out](e.Value); ok {
			return outcome[Out]{v: v, tier: e.Tier, origin: e.Origin}, nil
		}
		err = p.wrongType(e.Value)
	}
	if !errors.Is(err, backends.ErrNotFound) {
		if p.cfg.strict {
			err = p.storeErr("read", err)
			p.fault(ctx, "read", key, err)
			return nil, err
		}
		p.fault(ctx, "read", key, err)
	}

	start := time.Now()
	out, err := callStep(ctx, next, in, f.goexit)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	res := outcome[Out]{v: out, ran: true, dur: now.Sub(start)}
	entry := backends.Entry{Value: out, Created: now}
	if p.cfg.ttl > 0 {
		entry.Expires = now.Add(p.cfg.ttl)
	}
	if id, ok := scope.ExecutionID(ctx); ok {
		entry.Execution = id
	}
	if p.cfg.observer != nil {
		entry.Origin = p.cfg.observer.Origin(ctx)
	}
	// The result is worth keeping even if every caller has gone.
	wctx := ctx
	if ctx.Done() != nil {
		wctx = context.WithoutCancel(ctx)
	}
	if err := p.store.Set(wctx, key, entry, p.codec); err != nil {
		if p.cfg.strict {
			res.err = p.storeErr("write", err)
		}
		p.fault(ctx, "write", key, err)
	}
	return res, nil
}

// callStep runs the step, turning a panic into a *PanicError. singleflight
// must never see a panic: under DoChan it re-raises it in a goroutine of its
// own, where no caller can recover it and the process dies. A step that
// calls runtime.Goexit cannot be stopped, and singleflight then tells no
// waiter; closing goexit tells them.
func callStep[In, Out any](ctx context.Context, next Step[In, Out], in In, goexit chan struct{}) (out Out, err error) {
	normal := false
	defer func() {
		if normal {
			return
		}
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
			return
		}
		close(goexit)
	}()
	out, err = next(ctx, in)
	normal = true
	return out, err
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

type keyCtx struct{}

// KeyFrom returns the key of the persisted step running with ctx, in the
// stable string form of keyer.Key.String. Use it as an idempotency key with
// external systems (payment APIs, message brokers): a re-run of the same call,
// in this process or after a crash, has the same key.
func KeyFrom(ctx context.Context) (string, bool) {
	k, ok := ctx.Value(keyCtx{}).(*keyer.Key)
	if !ok {
		return "", false
	}
	return k.String(), true
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
