package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// tierName is the Store's Name and what it puts in Entry.Tier.
const tierName = "redis"

// purgeBatch is how many entries DeleteExecution removes per script, so
// that no single script keeps Redis busy for long.
const purgeBatch = 256

// errNotMade is what every method of a Store not made by New returns.
var errNotMade = fmt.Errorf("redis: store not made with redis.New: %w", backends.ErrClosed)

// unmade is the tier of a Store not made by New: every method returns
// errNotMade.
var unmade = backends.UnmadeTier(tierName, errNotMade)

var (
	_ backends.Coordinator = (*Store)(nil)
	_ backends.ByteStore   = (*byteStore)(nil)
	_ scope.Purger         = (*Store)(nil)
)

// Store is a byte tier on Redis that several processes share, and the
// Coordinator that lets them run each key's step once between them: a
// backends.ByteTier (which owns the entry format, codec, expiry checks and
// group commit) on Redis, plus Acquire. Make one with [New]. Its methods
// are safe for concurrent use.
type Store struct {
	tier   *backends.ByteTier
	bytes  *byteStore
	closed atomic.Bool
}

// byteStore is the backends.ByteStore on Redis, and the state the leases
// share.
type byteStore struct {
	c        goredis.UniversalClient
	prefix   string
	leaseTTL time.Duration
	poll     time.Duration
	wakeups  *wakeups
}

// New returns a Store on client, which may be a single node's, a Sentinel
// (failover) or a Cluster client of Redis 7 or later. The client stays the
// caller's: the Store never closes it; once it is closed every operation
// returns an error wrapping backends.ErrClosed. New panics if client is nil
// or an option is invalid.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	if client == nil {
		panic("redis: New needs a client, got nil")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	b := &byteStore{c: client, prefix: cfg.prefix, leaseTTL: cfg.leaseTTL, poll: cfg.poll, wakeups: newWakeups(client)}
	return &Store{tier: backends.NewByteTier(tierName, b), bytes: b}
}

func (s *Store) made() bool { return s != nil && s.tier != nil }

// t is the tier s delegates to: unmade for a Store not made by New.
func (s *Store) t() *backends.ByteTier {
	if !s.made() {
		return unmade
	}
	return s.tier
}

// Name returns "redis".
func (s *Store) Name() string { return tierName }

// EncodesValues returns true: the Store keeps encoded bytes.
func (s *Store) EncodesValues() bool { return true }

// LeaseTTL returns the lease TTL the Store was made with (WithLeaseTTL).
func (s *Store) LeaseTTL() time.Duration {
	if !s.made() {
		return 0
	}
	return s.bytes.leaseTTL
}

// Close makes every later call of the Store fail with an error wrapping
// backends.ErrClosed, after the calls in progress have returned; it does
// not close the client. Leases already held still commit or release.
// Close is idempotent: later calls return nil.
func (s *Store) Close() error {
	if s.made() {
		s.closed.Store(true)
	}
	return s.t().Close()
}

// ByteStore returns the Redis byte store under the Store, for tools and
// for backends/storetest, which plants damaged entries through it.
func (s *Store) ByteStore() backends.ByteStore { return s.t().ByteStore() }

// Get returns the entry stored under key, its value decoded with c, and
// Tier set to "redis". It returns an error wrapping backends.ErrNotFound
// when there is none or it has expired (then also backends.ErrExpired), and
// one wrapping backends.ErrCorrupt when the stored bytes cannot be read back
// with c. A Get is one GET.
func (s *Store) Get(ctx context.Context, key keyer.Key, c backends.Codec) (backends.Entry, error) {
	return s.t().Get(ctx, key, c)
}

// Set stores e under key, encoded with c (see backends.EncodeEntry),
// replacing any entry there, with Redis's own expiry when e.Expires is set,
// so expired entries do not accumulate. A Workflow entry is added to its
// execution's index in the same script. Set wakes processes waiting on a
// lease of key: they find the entry. Concurrent Sets share one pipelined
// round trip.
func (s *Store) Set(ctx context.Context, key keyer.Key, e backends.Entry, c backends.Codec) error {
	return s.t().Set(ctx, key, e, c)
}

// Delete removes the entry stored under key, if any. A lease on key is
// left alone: its holder's commit stores its result.
func (s *Store) Delete(ctx context.Context, key keyer.Key) error {
	return s.t().Delete(ctx, key)
}

// PurgeExecution removes every Workflow entry of execution executionID and
// returns how many it removed; Global entries and other executions' entries
// are untouched. It reads the execution's index set, never KEYS or SCAN,
// and removes entries in batches, each batch and its index members in one
// script. If ctx ends midway, it returns the count removed so far and
// ctx's error.
func (s *Store) PurgeExecution(ctx context.Context, executionID string) (int, error) {
	return s.t().PurgeExecution(ctx, executionID)
}

// fault wraps an error from the client, making a closed client's error
// backends.ErrClosed.
func fault(err error) error {
	if errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("%w: %w", backends.ErrClosed, err)
	}
	return err
}

// namesOf parses a key in the ByteTier's form (backends.EntryKey).
func (b *byteStore) namesOf(key []byte) (names, error) {
	k, err := keyer.ParseBinary(key)
	if err != nil {
		return names{}, err
	}
	return b.names(k)
}

func (b *byteStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	n, err := b.namesOf(key)
	if err != nil {
		return nil, err
	}
	v, err := b.c.Get(ctx, n.result).Bytes()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return nil, backends.ErrNotFound
		}
		return nil, fault(err)
	}
	return v, nil
}

// pxArg is an entry's expiry as a PX argument: milliseconds from now,
// rounded up so that Redis never drops an entry before its Expires (the
// header's exact expiry, checked on every read, ends it on time); "0" for
// none, "-1" when it has already expired.
func pxArg(expires time.Time) string {
	if expires.IsZero() {
		return "0"
	}
	d := time.Until(expires)
	if d <= 0 {
		return "-1"
	}
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)
}

// Put runs setScript for each record: one call alone, a batch in one
// pipeline (on a Cluster client, one per node).
func (b *byteStore) Put(ctx context.Context, batch []backends.Record) error {
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, len(batch))
	for i, r := range batch {
		n, err := b.namesOf(r.Key)
		if err != nil {
			return err
		}
		c := call{keys: []string{n.result, n.channel}, args: []any{r.Value, pxArg(r.Meta.Expires)}}
		if n.index != "" {
			c.keys = append(c.keys, n.index)
			c.args = append(c.args, n.member)
		}
		calls[i] = c
	}
	if len(calls) == 1 {
		return fault(setScript.Run(ctx, b.c, calls[0].keys, calls[0].args...).Err())
	}
	run := func() ([]goredis.Cmder, error) {
		pipe := b.c.Pipeline()
		for _, c := range calls {
			setScript.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		return pipe.Exec(ctx)
	}
	cmds, err := run()
	if err != nil && noScript(cmds) {
		// The server has not seen the script yet (or restarted): load it
		// and try again, as Script.Run does for one call.
		if err := setScript.Load(ctx, b.c).Err(); err != nil {
			return fault(err)
		}
		_, err = run()
	}
	return fault(err)
}

func noScript(cmds []goredis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			return true
		}
	}
	return false
}

func (b *byteStore) Delete(ctx context.Context, key []byte) error {
	n, err := b.namesOf(key)
	if err != nil {
		return err
	}
	keys := []string{n.result}
	var args []any
	if n.index != "" {
		keys = append(keys, n.index)
		args = append(args, n.member)
	}
	return fault(deleteScript.Run(ctx, b.c, keys, args...).Err())
}

// DeleteExecution removes the execution's entries in batches: a random
// batch of its index's members, then one script that deletes those entries
// and members. It never scans the key space.
func (b *byteStore) DeleteExecution(ctx context.Context, executionID string, _ []byte) (int, error) {
	tag := b.executionTag(executionID)
	index := tag + kindIndex
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		members, err := b.c.SRandMemberN(ctx, index, purgeBatch).Result()
		if err != nil {
			return total, fault(err)
		}
		if len(members) == 0 {
			return total, nil
		}
		keys := make([]string, 1, 1+len(members))
		keys[0] = index
		args := make([]any, len(members))
		for i, m := range members {
			keys = append(keys, b.resultOf(tag, m))
			args[i] = m
		}
		n, err := purgeScript.Run(ctx, b.c, keys, args...).Int()
		if err != nil {
			return total, fault(err)
		}
		total += n
	}
}
