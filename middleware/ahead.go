package middleware

import (
	"context"
	"fmt"
	"time"

	"github.com/docket-go/docket/keyer"
)

// WithRefreshAhead refreshes a Global step's results before they expire
// (stale-while-revalidate), so that a hot key never stalls its callers at
// expiry. A call answered by the front tier with an entry that has less
// than window of its TTL left gets it at once and starts a refresh in the
// background, unless a flight of that key is already running in this
// process: one run per key, however many callers hit it meanwhile. The
// refresh runs the step and stores its result in place of the old one.
//
// A refresh that fails stores nothing, not even a terminal failure under
// WithErrorCaching, and the old result is served until its TTL ends; the
// next hit in the window starts another refresh (one at a time, as the
// misses of a failing step run one flight at a time). A call that finds
// the entry expired while the refresh runs joins it rather than starting a
// run of its own. From the entry's expiry on, the refresh is a flight like
// any other: abandoned, its context cancelled, once no caller waits on it,
// so a refresh that hangs holds its key no longer than a miss would. A
// result that a call under Refresh stores while the refresh runs is kept:
// the refresh, which began earlier, does not overwrite it.
//
// The refresh's step context has the values of the call that started it
// (trace, execution) and none of its cancellation, since it outlives that
// call. It also runs with that call's input, after the call has returned:
// a caller must not change what its input refers to (a slice or map it
// reuses) afterwards; a refresh whose input no longer has its key stores
// nothing. The refresh is reported to the observer, and counted by Stats,
// as a call of its own with ReasonRefreshAhead (a failed one in
// Stats.Errors). Stored failures are not refreshed ahead. On a store that
// processes share, a refresh takes no lease: each process refreshes the
// keys it serves.
//
// A window of zero turns refresh-ahead off. New, Wrap and Persist panic on
// a negative window, one not shorter than the TTL of WithPersistence, a
// step without a TTL, and a Workflow step (whose entries end with their
// execution).
func WithRefreshAhead(window time.Duration) Option {
	return optionFunc(func(c *config) { c.ahead = window })
}

// refreshAhead starts the background refresh of key if its entry, which a
// call has just been served, expires within the window. Only then does it
// read the clock or touch the registry.
func (p *persisted[In, Out]) refreshAhead(ctx context.Context, next Step[In, Out], key keyer.Key, in *In, expires time.Time) {
	if !p.due(expires) {
		return
	}
	f, ok := begin[Out](flightKey{store: p.store, sum: key.Sum}, ctx, key)
	if !ok {
		return
	}
	f.replaces = expires
	go p.flyAhead(f, next, key, *in, expires)
}

// flyAhead is the body of a refresh ahead: it looks once more (a refresh
// that ended a moment ago may have stored a fresh result, and this one is
// then not needed), and runs the step as a refresh otherwise.
//
// Until the entry it refreshes expires, the refresh is waited on by that
// entry, so to speak: nobody needs its result yet, and it runs whatever
// callers do. From then on it is a flight like any other: callers that
// find the entry expired join it, and once none of them waits (there may
// be none), it is abandoned, its context cancelled, and the next call
// starts a flight of its own. So a refresh that hangs holds its key no
// longer than a miss's flight would.
func (p *persisted[In, Out]) flyAhead(f *flight[Out], next Step[In, Out], key keyer.Key, in In, expires time.Time) {
	if p.lookNear(f, key) {
		return
	}
	hold := time.AfterFunc(time.Until(expires), func() { f.leave() })
	defer hold.Stop()
	ctx, span := p.startAhead(f.ctx)
	defer func() {
		// fly has recovered a panic, or is letting a Goexit go on; either
		// way the flight is over and its fields are final.
		var err error
		switch {
		case f.panicked != nil:
			err = f.panicked
		case f.err != nil:
			err = f.err
		}
		if span != nil {
			o := Outcome{Key: key, Result: ResultMiss, Reason: ReasonRefreshAhead, Flight: ctx,
				Ran: f.ran, StepDuration: f.dur, Waiters: f.joined, Err: err}
			if err != nil {
				o.Result = ResultError
			}
			p.endAhead(span, o)
		}
		// Counted last, so that a refresh Stats shows is reported already.
		p.stats.miss(ReasonRefreshAhead, err != nil)
	}()
	p.fly(ctx, f, next, key, nil, in, false)
}

// due reports whether an entry that expires at expires is in the refresh
// window.
func (p *persisted[In, Out]) due(expires time.Time) bool {
	return !expires.IsZero() && time.Until(expires) < p.cfg.ahead
}

// inputChanged reports, as an error, that the input of a refresh ahead no
// longer has the key it was called with. The refresh runs after its call
// has returned, on a shallow copy of that call's input: a caller that then
// changes what the input refers to (a slice or map it reuses) would have
// the refresh store a result of the new input under the old key. That
// result is not stored.
func (p *persisted[In, Out]) inputChanged(ctx context.Context, key keyer.Key, in *In) error {
	now, _, err := p.key(ctx, in)
	if err == nil && now.Sum == key.Sum {
		return nil
	}
	err = fmt.Errorf("docket: step %q: refresh ahead: the input changed after its call returned (a slice, map or pointer the caller reused); the result is not stored", p.info.Name)
	if p.cfg.logger != nil {
		p.cfg.logger.Warn(err.Error(), "key", key.String())
	}
	return err
}

// replaced reports whether a result newer than the entry a refresh ahead
// replaces is stored now (a call under Refresh ran meanwhile, in a flight
// of its own): the refresh then hands its callers that result and stores
// nothing, so that a run that began earlier never overwrites a later one.
func (p *persisted[In, Out]) replaced(ctx context.Context, f *flight[Out], key keyer.Key) bool {
	v, e, why, _ := p.lookup(ctx, p.front, key, false)
	if why != ReasonNone || e.Failure != nil || !e.Expires.After(f.replaces) {
		return false
	}
	p.settle(f, v, e, e.Tier)
	return true
}

// startAhead starts the observer's span of a refresh ahead. The refresh
// runs on a goroutine of its own, where a panic of the observer would end
// the process and leave the flight listed for good: it is recovered and
// logged, and the refresh runs unobserved.
func (p *persisted[In, Out]) startAhead(ctx context.Context) (sctx context.Context, span CallSpan) {
	obs := p.cfg.observer
	if obs == nil {
		return ctx, nil
	}
	defer func() {
		if r := recover(); r != nil {
			p.observerPanic(r)
			sctx, span = ctx, nil
		}
	}()
	if sctx, span = obs.Start(ctx, p.callInfo(ctx)); span == nil {
		return ctx, nil
	}
	return sctx, span // the step runs inside the refresh's span
}

// endAhead ends the span of a refresh ahead, recovering a panic of the
// observer as startAhead does.
func (p *persisted[In, Out]) endAhead(span CallSpan, o Outcome) {
	defer func() {
		if r := recover(); r != nil {
			p.observerPanic(r)
		}
	}()
	span.End(o)
}

func (p *persisted[In, Out]) observerPanic(r any) {
	if p.cfg.logger != nil {
		p.cfg.logger.Error("docket: observer panicked in a refresh ahead", "step", p.info.Name, "panic", fmt.Sprint(r))
	}
}
