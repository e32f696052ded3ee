package memory

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
)

// tierName is what Get puts in Entry.Tier; a constant, so a hit allocates
// nothing.
const tierName = "memory"

// maxDefaultShards caps the default shard count: beyond it, lock contention
// is no longer what limits a hit.
const maxDefaultShards = 64

// maxShards bounds WithShards: execShards keeps one bit per shard in a
// uint64.
const maxShards = 64

// minEntriesPerShard keeps default shards large enough that per-shard LRU
// order stays a fair approximation of global LRU order.
const minEntriesPerShard = 16

var _ backends.Store = (*Store)(nil)

// Store is a sharded, bounded LRU cache of decoded entries. Its methods are
// safe for concurrent use. Make one with [New].
type Store struct {
	shards []paddedShard
	mask   uint64
	seed   maphash.Seed
	execs  execShards
}

// execShards records which shards hold entries of each execution, so that
// PurgeExecution locks only those: an execution's handful of entries would
// otherwise cost a lock of every shard at its end. A bit is set by Set and
// cleared when the shard's last entry of the execution goes, so executions
// that never end leave nothing behind. Lock order: shard, then execShards.
type execShards struct {
	mu sync.Mutex
	m  map[string]uint64 // execution ID -> bit per shard (at most 64 shards)
}

// mapKey is a Store's identity for a keyer.Key. Key.Step is left out: Sum
// already covers the step name, and Step is only for display. Scope is left
// out too: Sum covers it, and a Workflow key always has an Execution.
type mapKey struct {
	exec string
	sum  keyer.Sum
}

// item is what a shard keeps per key.
type item struct {
	entry backends.Entry
	// deadline is Entry.Expires on the monotonic clock (see monoNow), or
	// noDeadline. Comparing two int64s on Get is cheaper than a time.Time
	// comparison and immune to wall-clock steps.
	deadline int64
	// promoted is the shard's insert count when the item was last moved to
	// the front of the LRU list (under the shard's lock).
	promoted uint64
}

const noDeadline = math.MaxInt64

type shard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[mapKey, *item]
	// bit is this shard's bit in execs.
	bit   uint64
	execs *execShards
	// index lists each execution's keys in this shard, so PurgeExecution
	// visits only them. Kept in step with lru by Set and by onEvict, which
	// simplelru calls (under mu) for every removal: eviction, Remove, sweep.
	index map[string]map[mapKey]struct{}
	// capacity is this shard's share of maxEntries.
	capacity int
	// sets counts Sets since the last full sweep.
	sets int
	// inserts counts every Set, for the age of items (see Get).
	inserts uint64
	// promoteAge is the age at which a hit moves an item: capacity/2.
	promoteAge uint64
	// minDeadline is a lower bound of the deadlines in the shard: a full
	// sweep is pointless while it lies in the future. Removals leave it
	// stale-low, which costs at most one sweep that finds nothing.
	minDeadline int64
}

// paddedShard keeps each shard's mutex, written by every operation, out of
// its neighbours' cache lines (128 bytes also covers adjacent-line
// prefetch); otherwise operations on different shards would still contend,
// in the CPU caches instead of on the lock.
type paddedShard struct {
	shard
	_ [128]byte
}

// Option configures a Store.
type Option interface{ apply(*config) }

type config struct {
	shards int // 0: default
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithShards sets the number of shards, a power of two (so that a shard is
// picked with a mask). More shards mean less lock contention between
// goroutines and a coarser LRU order; one shard keeps one order for the
// whole store. Every shard must hold at least one entry, so New lowers n to
// the largest power of two not above maxEntries, and to 64 at most.
// WithShards panics if n is not a positive power of two.
//
// The default is the largest power of two not above min(64, maxEntries/16),
// and at least 1.
func WithShards(n int) Option {
	if n <= 0 || n&(n-1) != 0 {
		panic(fmt.Sprintf("memory: WithShards(%d): shard count must be a positive power of two", n))
	}
	return optionFunc(func(c *config) { c.shards = n })
}

// New returns a Store that holds at most maxEntries entries. It panics if
// maxEntries is not positive.
func New(maxEntries int, opts ...Option) *Store {
	if maxEntries <= 0 {
		panic(fmt.Sprintf("memory: New(%d): maxEntries must be positive", maxEntries))
	}
	var cfg config
	for _, o := range opts {
		o.apply(&cfg)
	}
	n := cfg.shards
	if n == 0 {
		n = floorPow2(max(1, min(maxDefaultShards, maxEntries/minEntriesPerShard)))
	}
	n = min(n, floorPow2(maxEntries), maxShards)

	s := &Store{
		shards: make([]paddedShard, n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		execs:  execShards{m: map[string]uint64{}},
	}
	per, extra := maxEntries/n, maxEntries%n
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.capacity = per
		if i < extra {
			sh.capacity++
		}
		sh.index = make(map[string]map[mapKey]struct{})
		sh.bit, sh.execs = 1<<i, &s.execs
		sh.minDeadline = noDeadline
		sh.promoteAge = uint64(sh.capacity / 2)
		lru, err := simplelru.NewLRU(sh.capacity, sh.onEvict)
		if err != nil { // unreachable: capacity >= 1 since n <= maxEntries
			panic("memory: " + err.Error())
		}
		sh.lru = lru
	}
	return s
}

func floorPow2(n int) int { return 1 << (bits.Len(uint(n)) - 1) }

// Name returns "memory".
func (s *Store) Name() string { return tierName }

// EncodesValues returns false: the memory tier keeps decoded values, so it
// carries every result type exactly.
func (s *Store) EncodesValues() bool { return false }

func (s *Store) shardFor(k *mapKey) *shard {
	h := binary.LittleEndian.Uint64(k.sum[:8])
	if k.exec != "" {
		// Sum does not cover the execution ID, so without this every
		// execution's call of one step with one input would land in the
		// same shard: many executions running the same workflow would
		// contend on one lock.
		h ^= maphash.String(s.seed, k.exec)
	}
	return &s.shards[h&s.mask].shard
}

// Get returns the entry stored under key, with Tier set to "memory". A miss
// returns backends.ErrNotFound; an expired entry is removed and
// backends.ErrExpired (which is also ErrNotFound) returned. The codec is not
// used: the entry's Value is returned as it was stored.
func (s *Store) Get(_ context.Context, key keyer.Key, _ backends.Codec) (backends.Entry, error) {
	k := mapKey{exec: key.Execution, sum: key.Sum}
	sh := s.shardFor(&k)
	sh.mu.Lock()
	it, ok := sh.lru.Peek(k)
	// Moving an entry to the front of the list touches its neighbours, two
	// cache misses on a large cache, on every hit. An entry is moved only
	// once it has aged by half the shard's capacity in inserts since it was
	// last moved, before eviction can reach it: eviction order is then
	// approximately, not exactly, least recently used.
	if ok && sh.inserts-it.promoted > sh.promoteAge {
		sh.lru.Get(k)
		it.promoted = sh.inserts
	}
	sh.mu.Unlock()
	if !ok {
		return backends.Entry{}, backends.ErrNotFound
	}
	// The clock is read outside the lock, and only for entries that can
	// expire, to keep the critical section to the map lookup and list move.
	if it.deadline != noDeadline {
		if now := monoNow(); now >= it.deadline {
			sh.removeExpired(k, now)
			return backends.Entry{}, backends.ErrExpired
		}
	}
	return it.entry, nil
}

// removeExpired removes k if it is still expired: between Get's unlock and
// this lock another goroutine may have stored a fresh entry under k, which
// must stay.
func (sh *shard) removeExpired(k mapKey, now int64) {
	sh.mu.Lock()
	if it, ok := sh.lru.Peek(k); ok && it.deadline <= now {
		sh.lru.Remove(k)
	}
	sh.mu.Unlock()
}

// Set stores e under key, replacing any entry there, and evicts the least
// recently used entry of key's shard if the shard is full. e.Value is kept as
// is, not copied; the codec is not used. An entry whose Expires has already
// passed is not stored (and the old entry under key is removed). Set never
// fails.
func (s *Store) Set(_ context.Context, key keyer.Key, e backends.Entry, _ backends.Codec) error {
	k := mapKey{exec: key.Execution, sum: key.Sum}
	sh := s.shardFor(&k)
	// Read the monotonic clock before time.Until reads the wall clock, so
	// that the deadline errs early, never late.
	now := monoNow()
	deadline := int64(noDeadline)
	if !e.Expires.IsZero() {
		d := int64(time.Until(e.Expires))
		if d <= 0 {
			sh.mu.Lock()
			sh.lru.Remove(k)
			sh.mu.Unlock()
			return nil
		}
		if d < noDeadline-now {
			deadline = now + d
		}
	}

	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Expired entries at the LRU tail are dropped first, so they, and not a
	// live entry, make room for the new one.
	sh.sweepTail(now)
	// Items are never changed once stored (Get hands out copies of the
	// entry without holding the lock), so Tier is set here.
	e.Tier = tierName
	sh.inserts++
	sh.lru.Add(k, &item{entry: e, deadline: deadline, promoted: sh.inserts})
	if k.exec != "" {
		keys := sh.index[k.exec]
		if keys == nil {
			keys = make(map[mapKey]struct{})
			sh.index[k.exec] = keys
			sh.execs.mu.Lock()
			sh.execs.m[k.exec] |= sh.bit
			sh.execs.mu.Unlock()
		}
		keys[k] = struct{}{}
	}
	sh.minDeadline = min(sh.minDeadline, deadline)
	// The tail check misses expired entries that are kept away from the
	// tail by live entries that are older or were used since. A full sweep
	// every capacity Sets catches them at amortized O(1) per Set.
	sh.sets++
	if sh.sets >= sh.capacity {
		sh.sets = 0
		if sh.minDeadline <= now {
			sh.sweep(now)
		}
	}
	return nil
}

// sweepTail removes up to two expired entries from the least recently used
// end of the shard. Two, so that sweeping keeps ahead of one Set per call.
func (sh *shard) sweepTail(now int64) {
	for range 2 {
		k, it, ok := sh.lru.GetOldest()
		if !ok || it.deadline > now {
			return
		}
		sh.lru.Remove(k)
	}
}

// sweep removes every expired entry of the shard and returns how many.
func (sh *shard) sweep(now int64) int {
	n := 0
	next := int64(noDeadline)
	for _, k := range sh.lru.Keys() {
		it, _ := sh.lru.Peek(k)
		if it.deadline <= now {
			sh.lru.Remove(k)
			n++
		} else {
			next = min(next, it.deadline)
		}
	}
	sh.minDeadline = next
	return n
}

// onEvict keeps the execution index in step with the LRU. simplelru calls it
// synchronously for every removal, so it runs under sh.mu.
func (sh *shard) onEvict(k mapKey, _ *item) {
	if k.exec == "" {
		return
	}
	keys := sh.index[k.exec]
	delete(keys, k)
	if len(keys) == 0 {
		delete(sh.index, k.exec)
		sh.execs.mu.Lock()
		if m := sh.execs.m[k.exec] &^ sh.bit; m != 0 {
			sh.execs.m[k.exec] = m
		} else {
			delete(sh.execs.m, k.exec)
		}
		sh.execs.mu.Unlock()
	}
}

// Delete removes the entry stored under key, if any.
func (s *Store) Delete(_ context.Context, key keyer.Key) error {
	k := mapKey{exec: key.Execution, sum: key.Sum}
	sh := s.shardFor(&k)
	sh.mu.Lock()
	sh.lru.Remove(k)
	sh.mu.Unlock()
	return nil
}

// PurgeExecution removes every entry whose key has the given execution ID
// and returns how many it removed. It visits only that execution's entries,
// not the whole cache. Global entries (empty execution ID) are never purged:
// PurgeExecution("") removes nothing.
func (s *Store) PurgeExecution(_ context.Context, executionID string) (int, error) {
	if executionID == "" {
		return 0, nil
	}
	s.execs.mu.Lock()
	mask := s.execs.m[executionID]
	s.execs.mu.Unlock()
	n := 0
	// An execution's keys are spread over the shards (see shardFor); visit
	// the ones that hold some. A Set racing with this purge may add a shard
	// after mask was read: End is for executions whose steps have returned.
	for i := range s.shards {
		if mask&(1<<i) == 0 {
			continue
		}
		sh := &s.shards[i].shard
		sh.mu.Lock()
		// onEvict deletes from this map while we range over it, which Go
		// permits; each key is still visited at most once.
		for k := range sh.index[executionID] {
			sh.lru.Remove(k)
			n++
		}
		sh.mu.Unlock()
	}
	return n, nil
}

// DeleteExpired removes every expired entry now and returns how many. Sets
// already sweep expired entries as they go; DeleteExpired is for freeing
// them at once, for instance before measuring memory.
func (s *Store) DeleteExpired() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		if now := monoNow(); sh.minDeadline <= now {
			n += sh.sweep(now)
		}
		sh.mu.Unlock()
	}
	return n
}

// Len returns the number of entries held, expired ones not yet removed
// included. It locks each shard in turn, so under concurrent writes it is a
// close estimate, never above maxEntries.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}
