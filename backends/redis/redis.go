package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
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
	_ backends.Coordinator  = (*Store)(nil)
	_ backends.ByteStore    = (*byteStore)(nil)
	_ backends.ByteRetainer = (*byteStore)(nil)
	_ scope.Purger          = (*Store)(nil)
	_ scope.Retainer        = (*Store)(nil)
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
	b := &byteStore{c: client, prefix: cfg.prefix, leaseTTL: cfg.leaseTTL, poll: cfg.poll, wakeups: newWakeups(client, cfg.subIdle, cfg.subChannels)}
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
// Close also closes the Store's subscription connection, at once if no
// Acquire waits on it, else when the last one ends. Close is idempotent:
// later calls return nil.
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

// RetainExecution keeps every Workflow entry of execution executionID until
// until, or its own expiry where that is earlier, and returns how many it
// kept; see scope.Retainer. It reads the execution's index (SSCAN, never
// KEYS or SCAN) and each batch's values in one pipeline, then rewrites the
// batch with its new expiry (PXAT) in one script, which leaves an entry
// another writer changed meanwhile as it is; the index then expires with
// the entries. If ctx ends midway, it returns the count kept so far and
// ctx's error.
func (s *Store) RetainExecution(ctx context.Context, executionID string, until time.Time) (int, error) {
	return s.t().RetainExecution(ctx, executionID, until)
}

// Close closes the shared subscription (see Store.Close); the tier calls
// it once, after the calls in progress have returned.
func (b *byteStore) Close() error {
	b.wakeups.close()
	return nil
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

// RetainExecution walks the execution's index a batch at a time: one
// pipeline reads the batch's values, rewrite gives their new bytes, and
// one retainScript stores those whose bytes are still what was read. Then
// the index is made to end with the entries, or with the latest of those
// another writer changed meanwhile (none of which may outlive it).
func (b *byteStore) RetainExecution(ctx context.Context, executionID string, _ []byte, until time.Time,
	rewrite func([]byte) ([]byte, time.Time, bool)) (int, error) {
	tag := b.executionTag(executionID)
	index := tag + kindIndex
	total := 0
	end := pxat(until)
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		members, next, err := b.c.SScan(ctx, index, cursor, "", purgeBatch).Result()
		if err != nil {
			return total, fault(err)
		}
		if len(members) > 0 {
			n, foreign, err := b.retainMembers(ctx, tag, index, members, rewrite)
			total += n
			if err != nil {
				return total, err
			}
			if foreign == -1 || end == -1 {
				end = -1 // the index keeps its expiry, or none
			} else {
				end = max(end, foreign)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if end != -1 {
		err := retainIndexScript.Run(ctx, b.c, []string{index}, strconv.FormatInt(end, 10)).Err()
		if err != nil {
			return total, fault(err)
		}
	}
	return total, nil
}

// pxat is an expiry in Unix milliseconds, rounded up so that Redis never
// drops an entry before its Expires.
func pxat(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.UnixNano()%int64(time.Millisecond) != 0 {
		ms++
	}
	return max(ms, 1)
}

// retainMembers rewrites the entries of one batch of index members and
// returns how many it kept and retainScript's latest foreign expiry.
func (b *byteStore) retainMembers(ctx context.Context, tag, index string, members []string,
	rewrite func([]byte) ([]byte, time.Time, bool)) (n int, foreign int64, err error) {
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = b.resultOf(tag, m)
	}
	vals, err := b.values(ctx, names)
	if err != nil {
		return 0, 0, err
	}
	keys := []string{index}
	var args []any
	for i, v := range vals {
		if v == nil {
			continue // expired or removed: the index's expiry takes its member
		}
		sum := sha1.Sum(v)
		var nv, at any = "", "0" // remove it
		if val, exp, ok := rewrite(v); ok {
			nv, at = val, strconv.FormatInt(pxat(exp), 10)
		}
		keys = append(keys, names[i])
		args = append(args, members[i], hex.EncodeToString(sum[:]), nv, at)
	}
	if len(keys) == 1 {
		return 0, 0, nil
	}
	r, err := retainScript.Run(ctx, b.c, keys, args...).Int64Slice()
	if err != nil {
		return 0, 0, fault(err)
	}
	if len(r) != 2 {
		return 0, 0, fmt.Errorf("retain script replied %v", r)
	}
	return int(r[0]), r[1], nil
}
