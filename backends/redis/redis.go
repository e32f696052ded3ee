package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// tierName is the Store's Name and what it puts in Entry.Tier.
const tierName = "redis"

// purgeBatch is how many entries PurgeExecution removes per script, so that
// no single script keeps Redis busy for long.
const purgeBatch = 256

var (
	_ backends.Coordinator = (*Store)(nil)
	_ scope.Purger         = (*Store)(nil)
)

// Store is a byte tier on Redis that several processes share, and the
// Coordinator that lets them run each key's step once between them. Make
// one with [New]. Its methods are safe for concurrent use.
type Store struct {
	c        goredis.UniversalClient
	prefix   string
	leaseTTL time.Duration
	poll     time.Duration
}

// New returns a Store on client, which may be a single node's, a Sentinel
// (failover) or a Cluster client. The client stays the caller's: the Store
// never closes it, and once it is closed every operation returns an error
// wrapping backends.ErrClosed. New panics if client is nil or an option is
// invalid.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	if client == nil {
		panic("redis: New needs a client, got nil")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	return &Store{c: client, prefix: cfg.prefix, leaseTTL: cfg.leaseTTL, poll: cfg.poll}
}

// Name returns "redis".
func (s *Store) Name() string { return tierName }

// LeaseTTL returns the lease TTL the Store was made with (WithLeaseTTL).
func (s *Store) LeaseTTL() time.Duration { return s.leaseTTL }

// fault wraps an error from the client, making a closed client's error
// backends.ErrClosed.
func fault(op string, err error) error {
	if errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("redis: %s: %w: %w", op, backends.ErrClosed, err)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// Get returns the entry stored under key, its value decoded with c, and
// Tier set to "redis". It returns an error wrapping backends.ErrNotFound
// when there is none or it has expired (then also backends.ErrExpired), and
// one wrapping backends.ErrCorrupt when the stored bytes cannot be read back
// with c. A Get is one GET.
func (s *Store) Get(ctx context.Context, key keyer.Key, c backends.Codec) (backends.Entry, error) {
	if err := ctx.Err(); err != nil {
		return backends.Entry{}, err
	}
	n, err := s.names(key)
	if err != nil {
		return backends.Entry{}, fmt.Errorf("redis: get: %w", err)
	}
	b, err := s.c.Get(ctx, n.result).Bytes()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return backends.Entry{}, backends.ErrNotFound
		}
		return backends.Entry{}, fault("get", err)
	}
	return decode(key, b, c)
}

// decode reads stored bytes, which the caller owns (the codec may keep
// slices of them).
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

// pxArg is an entry's expiry as a PX argument: milliseconds from now,
// rounded up so that Redis never drops an entry before its Expires (the
// header's exact expiry, checked on every read, ends it on time), "0" for
// none. ok is false when e has already expired.
func pxArg(expires time.Time) (px string, ok bool) {
	if expires.IsZero() {
		return "0", true
	}
	d := time.Until(expires)
	if d <= 0 {
		return "", false
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10), true
}

// Set stores e under key, encoded with c (see backends.EncodeEntry),
// replacing any entry there, with Redis's own expiry when e.Expires is
// set, so expired entries do not accumulate. A Workflow entry is added to
// its execution's index in the same script. Set wakes processes waiting
// on a lease of key: they find the entry. An e that has already expired
// removes the key's entry instead. A Set is one script call.
func (s *Store) Set(ctx context.Context, key keyer.Key, e backends.Entry, c backends.Codec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := s.names(key)
	if err != nil {
		return fmt.Errorf("redis: set: %w", err)
	}
	val, err := backends.EncodeEntry(e, c)
	if err != nil {
		return fmt.Errorf("redis: set %v: %w", key, err)
	}
	px, live := pxArg(e.Expires)
	if !live {
		return s.del(ctx, n, "set")
	}
	keys := []string{n.result, n.channel}
	args := []any{val, px}
	if n.index != "" {
		keys = append(keys, n.index)
		args = append(args, n.member)
	}
	if err := setScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return fault("set", err)
	}
	return nil
}

// Delete removes the entry stored under key, if any. A lease on key is
// left alone: its holder's commit stores its result.
func (s *Store) Delete(ctx context.Context, key keyer.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := s.names(key)
	if err != nil {
		return fmt.Errorf("redis: delete: %w", err)
	}
	return s.del(ctx, n, "delete")
}

func (s *Store) del(ctx context.Context, n names, op string) error {
	keys := []string{n.result}
	var args []any
	if n.index != "" {
		keys = append(keys, n.index)
		args = append(args, n.member)
	}
	if err := deleteScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return fault(op, err)
	}
	return nil
}

// PurgeExecution removes every Workflow entry of execution executionID and
// returns how many it removed; Global entries and other executions' entries
// are untouched. It reads the execution's index set, never KEYS or SCAN,
// and removes entries in batches, each batch and its index members in one
// script. If ctx ends midway, it returns the count removed so far and
// ctx's error.
func (s *Store) PurgeExecution(ctx context.Context, executionID string) (int, error) {
	tag := s.executionTag(executionID)
	index := tag + kindIndex
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		members, err := s.c.SRandMemberN(ctx, index, purgeBatch).Result()
		if err != nil {
			return total, fault(fmt.Sprintf("purge execution %q", executionID), err)
		}
		if len(members) == 0 {
			return total, nil
		}
		keys := make([]string, 1, 1+len(members))
		keys[0] = index
		args := make([]any, len(members))
		for i, m := range members {
			keys = append(keys, s.resultOf(tag, m))
			args[i] = m
		}
		n, err := purgeScript.Run(ctx, s.c, keys, args...).Int()
		if err != nil {
			return total, fault(fmt.Sprintf("purge execution %q", executionID), err)
		}
		total += n
	}
}
