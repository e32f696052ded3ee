package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
)

// errLeaseEnded is returned by a second Commit or Release of one lease.
var errLeaseEnded = errors.New("redis: lease already committed or released")

// Acquire returns key's stored entry (a hit, nil Lease) or a Lease to run
// its step; see backends.Coordinator for the contract. Each look is one
// script call: it returns the entry, or takes the lease, or reports the
// holder and the time its lease has left.
//
// While another process holds the lease, Acquire subscribes to the key's
// channel (sharded pub/sub; on a single node's or failover client, the
// waits of one Store share one connection, which stays open for a few
// seconds after the last wait, so that the next waits reuse it) and looks
// again when the holder's commit or release is announced, when the lease
// would expire, and at least every poll interval (WithPollInterval). It
// looks again once the subscription is confirmed, so an announcement made
// in between is not missed.
//
// An entry that cannot be read back (corrupt, or written with another
// codec) is deleted by the next look if it is still the same bytes, and
// the lease taken; Acquire then returns the lease with an error wrapping
// backends.ErrCorrupt.
func (s *Store) Acquire(ctx context.Context, key keyer.Key, c backends.Codec) (backends.Entry, backends.Lease, error) {
	if !s.made() {
		return backends.Entry{}, nil, errNotMade
	}
	if s.closed.Load() {
		return backends.Entry{}, nil, fmt.Errorf("redis: acquire: %w", backends.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return backends.Entry{}, nil, err
	}
	b := s.bytes
	n, err := b.names(key)
	if err != nil {
		return backends.Entry{}, nil, fmt.Errorf("redis: acquire: %w", err)
	}
	ttl := strconv.FormatInt(b.leaseTTL.Milliseconds(), 10)
	var (
		unreadable string // SHA-1 of stored bytes that could not be read
		corrupt    error
		sub        *wait
		timer      *time.Timer
	)
	defer func() {
		if sub != nil {
			sub.stop()
		}
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Taken before the look, so that the lease's local deadline never
		// falls after Redis's.
		start := time.Now()
		r, err := acquireScript.Run(ctx, b.c, []string{n.result, n.lease, n.counter}, ttl, unreadable).Slice()
		if err != nil {
			return backends.Entry{}, nil, fmt.Errorf("redis: acquire: %w", fault(err))
		}
		state, _ := r[0].(int64)
		switch state {
		case acquireHit:
			v := []byte(r[1].(string))
			e, err := decode(key, v, c)
			if err == nil {
				return e, nil, nil
			}
			if !errors.Is(err, backends.ErrExpired) {
				corrupt = err
			}
			sum := sha1.Sum(v)
			unreadable = hex.EncodeToString(sum[:])
			continue
		case acquireTaken:
			tok, err := strconv.ParseUint(r[1].(string), 10, 64)
			if err != nil {
				return backends.Entry{}, nil, fmt.Errorf("redis: acquire: bad token %q: %w", r[1], err)
			}
			return backends.Entry{}, b.newLease(key, n, r[1].(string), tok, start), corrupt
		case acquireHeld:
		default:
			return backends.Entry{}, nil, fmt.Errorf("redis: acquire: unexpected reply %v", r)
		}
		if sub == nil {
			// The subscription's confirmation wakes this loop, and the
			// look it triggers closes the gap between the look above and
			// the subscription.
			sub = b.wakeups.subscribe(ctx, n.channel)
		}
		wait := b.poll
		if left, _ := r[2].(int64); left >= 0 {
			// One millisecond past the expiry, so that the next look finds
			// the lease gone.
			wait = min(wait, time.Duration(left+1)*time.Millisecond)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-sub.c:
		case <-timer.C:
		case <-ctx.Done():
			return backends.Entry{}, nil, ctx.Err()
		}
	}
}

// lease is one process's lease on one key. A goroutine renews it until
// Commit or Release.
type lease struct {
	s       *byteStore
	key     keyer.Key
	n       names
	token   string // as stored in Redis
	tokenID uint64

	lost     chan struct{}
	loseOnce sync.Once
	stop     chan struct{}
	renewed  chan struct{} // closed when the renewing goroutine returns
	ended    atomic.Bool
}

func (s *byteStore) newLease(key keyer.Key, n names, token string, tokenID uint64, start time.Time) *lease {
	l := &lease{
		s: s, key: key, n: n, token: token, tokenID: tokenID,
		lost:    make(chan struct{}),
		stop:    make(chan struct{}),
		renewed: make(chan struct{}),
	}
	go l.renew(start.Add(s.leaseTTL))
	return l
}

// Token returns the lease's fencing token.
func (l *lease) Token() uint64 { return l.tokenID }

// Lost is closed when the lease could not be renewed before it would
// expire, or was found taken over or gone. It is never closed once Commit
// or Release has been called.
func (l *lease) Lost() <-chan struct{} { return l.lost }

func (l *lease) lose() { l.loseOnce.Do(func() { close(l.lost) }) }

// renew extends the lease every third of its TTL. deadline is when the
// lease expires in Redis at the latest, as far as this process knows: each
// successful renewal moves it to the renewal's start plus the TTL. Renewal
// calls that fail are retried at the next tick; once deadline passes
// without a successful one, the lease is lost (another process may take it
// over from then on).
func (l *lease) renew(deadline time.Time) {
	defer close(l.renewed)
	ttl := l.s.leaseTTL
	ttlArg := strconv.FormatInt(ttl.Milliseconds(), 10)
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	expire := time.NewTimer(time.Until(deadline))
	defer expire.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-expire.C:
			l.lose()
			return
		case <-tick.C:
		}
		start := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		ok, err := renewScript.Run(ctx, l.s.c, []string{l.n.lease}, l.token, ttlArg).Int()
		cancel()
		switch {
		case err == nil && ok == 1:
			deadline = start.Add(ttl)
			expire.Reset(time.Until(deadline))
		case err == nil:
			// The lease expired in Redis, or another process holds it.
			l.lose()
			return
		}
	}
}

// end stops renewing; it reports false if the lease had already ended.
func (l *lease) end() bool {
	if !l.ended.CompareAndSwap(false, true) {
		return false
	}
	close(l.stop)
	<-l.renewed
	return true
}

// Commit stores e unless a result is stored or the lease is no longer the
// key's current one, and ends the lease: see backends.Lease. It is one
// script call, which also adds a Workflow entry to its execution's index
// and announces the result to waiting processes. An e that has already
// expired is not stored: the lease is released and e returned.
func (l *lease) Commit(ctx context.Context, e backends.Entry, c backends.Codec) (backends.Entry, error) {
	if !l.end() {
		return backends.Entry{}, errLeaseEnded
	}
	val, err := backends.EncodeEntry(e, c)
	if err != nil {
		_ = l.release(ctx)
		return backends.Entry{}, fmt.Errorf("redis: commit %v: %w", l.key, err)
	}
	px := pxArg(e.Expires)
	if px == "-1" {
		return e, l.release(ctx)
	}
	keys := []string{l.n.result, l.n.lease, l.n.channel}
	args := []any{l.token, val, px}
	if l.n.index != "" {
		keys = append(keys, l.n.index)
		args = append(args, l.n.member)
	}
	r, err := commitScript.Run(ctx, l.s.c, keys, args...).Slice()
	if err != nil {
		return backends.Entry{}, fmt.Errorf("redis: commit %v: %w", l.key, fault(err))
	}
	state, _ := r[0].(int64)
	switch state {
	case commitStored:
		return e, nil
	case commitWinner:
		return decode(l.key, []byte(r[1].(string)), c)
	case commitLost:
		return backends.Entry{}, fmt.Errorf("redis: commit %v (token %d): %w", l.key, l.tokenID, backends.ErrLeaseLost)
	default:
		return backends.Entry{}, fmt.Errorf("redis: commit: unexpected reply %v", r)
	}
}

// Release ends the lease without a result and, if it was still the key's
// current one, wakes the waiting processes so that one takes it over.
func (l *lease) Release(ctx context.Context) error {
	if !l.end() {
		return errLeaseEnded
	}
	return l.release(ctx)
}

func (l *lease) release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.s.c, []string{l.n.lease, l.n.channel}, l.token).Err(); err != nil {
		return fmt.Errorf("redis: release %v: %w", l.key, fault(err))
	}
	return nil
}

// decode reads stored bytes, which the caller owns (the codec may keep
// slices of them), as the ByteTier's Get does.
func decode(key keyer.Key, b []byte, c backends.Codec) (backends.Entry, error) {
	e, err := backends.DecodeEntry(b, c)
	if err != nil {
		if errors.Is(err, backends.ErrExpired) {
			return backends.Entry{}, err
		}
		return backends.Entry{}, fmt.Errorf("redis: get %v: %w", key, err)
	}
	e.Tier = tierName
	return e, nil
}
