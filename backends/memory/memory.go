package memory

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// tierName is what Get puts in Entry.Tier; a constant, so a hit allocates
// nothing.
const tierName = "memory"

// maxDefaultShards caps the default shard count: beyond it, lock contention
// is no longer what limits a hit.
const maxDefaultShards = 64

// maxShards bounds WithShards: execShards keeps one bit per shard in a
// uint64.
const (
	maxShardBits = 6
	maxShards    = 1 << maxShardBits
)

// DefaultMaxEntries is the bound of a zero Store, one not made by New.
const DefaultMaxEntries = 10_000

// minEntriesPerShard keeps default shards large enough that per-shard LRU
// order stays a fair approximation of global LRU order.
const minEntriesPerShard = 16

var (
	_ backends.Store = (*Store)(nil)
	_ scope.Retainer = (*Store)(nil)
)

// Store is a sharded, bounded LRU cache of decoded entries. Its methods are
// safe for concurrent use. Make one with [New]; the zero Store is ready to
// use too, and holds at most [DefaultMaxEntries] entries. A Store must not
// be copied after first use.
type Store struct {
	// ready is set once shards, mask and seed are built; they are not
	// changed afterwards, so every operation reads them without a lock.
	ready  atomic.Bool
	initMu sync.Mutex
	shards []paddedShard
	mask   uint64
	seed   maphash.Seed
	// execs is behind a pointer: its mutex, written by Sets of executions,
	// must not share a cache line with the fields every Get reads.
	execs *execShards
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

// item is what a shard keeps per key. Its fields are not changed once it is
// published, except hit.
type item struct {
	key   mapKey
	entry backends.Entry
	// deadline is Entry.Expires on the monotonic clock (see monoNow), or
	// noDeadline. Comparing two int64s on Get is cheaper than a time.Time
	// comparison and immune to wall-clock steps.
	deadline int64
	// hit is set by a Get and cleared when the item is moved to the front
	// of the LRU list (see makeRoom): the item's one mutable field.
	hit atomic.Bool
}

const noDeadline = math.MaxInt64

type shard struct {
	// read is the index Get searches without a lock. It is alone in its
	// cache line: the fields below are written by every Set.
	read atomic.Pointer[table]
	_    [120]byte

	mu  sync.Mutex
	lru *simplelru.LRU[mapKey, *item]
	// seed is the Store's, for hashing keys (see keyHash).
	seed maphash.Seed
	// bit is this shard's bit in execs.
	bit   uint64
	execs *execShards
	// index lists each execution's keys in this shard, so PurgeExecution
	// visits only them. Kept in step with lru by Set and by onEvict, which
	// simplelru calls (under mu) for every removal: eviction, Remove, sweep;
	// onEvict also takes the key out of read.
	index map[string]map[mapKey]struct{}
	// capacity is this shard's share of maxEntries.
	capacity int
	// sets counts Sets since the last full sweep.
	sets int
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
	s := &Store{}
	s.build(maxEntries, cfg)
	s.ready.Store(true)
	return s
}

// lazyInit builds a zero Store on its first use.
func (s *Store) lazyInit() {
	if s.ready.Load() {
		return
	}
	s.initMu.Lock()
	defer s.initMu.Unlock()
	if !s.ready.Load() {
		s.build(DefaultMaxEntries, config{})
		s.ready.Store(true)
	}
}

func (s *Store) build(maxEntries int, cfg config) {
	n := cfg.shards
	if n == 0 {
		n = floorPow2(max(1, min(maxDefaultShards, maxEntries/minEntriesPerShard)))
	}
	n = min(n, floorPow2(maxEntries), maxShards)

	s.shards = make([]paddedShard, n)
	s.mask = uint64(n - 1)
	s.seed = maphash.MakeSeed()
	s.execs = &execShards{m: map[string]uint64{}}
	per, extra := maxEntries/n, maxEntries%n
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.capacity = per
		if i < extra {
			sh.capacity++
		}
		sh.index = make(map[string]map[mapKey]struct{})
		sh.bit, sh.execs = 1<<i, s.execs
		sh.seed = s.seed
		sh.minDeadline = noDeadline
		sh.read.Store(newTable(minTableSlots))
		lru, err := simplelru.NewLRU(sh.capacity, sh.onEvict)
		if err != nil { // unreachable: capacity >= 1 since n <= maxEntries
			panic("memory: " + err.Error())
		}
		sh.lru = lru
	}
}

func floorPow2(n int) int { return 1 << (bits.Len(uint(n)) - 1) }

// Name returns "memory".
func (s *Store) Name() string { return tierName }

// EncodesValues returns false: the memory tier keeps decoded values, so it
// carries every result type exactly.
func (s *Store) EncodesValues() bool { return false }

func (s *Store) hash(k *mapKey) uint64 { return keyHash(s.seed, k) }

// keyHash returns k's hash: its low bits pick the shard, the others the
// slot in the shard's read index. Sum is a SHA-256, so its first bytes are
// as good a hash as any. (A plain function, not a func value, so that k
// stays on the caller's stack.)
func keyHash(seed maphash.Seed, k *mapKey) uint64 {
	h := binary.LittleEndian.Uint64(k.sum[:8])
	if k.exec != "" {
		// Sum does not cover the execution ID, so without this every
		// execution's call of one step with one input would land in the
		// same shard and slot: many executions running the same workflow
		// would contend on one lock and probe one long run of slots.
		h ^= maphash.String(seed, k.exec)
	}
	return h
}

func (s *Store) shardOf(h uint64) *shard { return &s.shards[h&s.mask].shard }

// Get returns the entry stored under key, with Tier set to "memory". A miss
// returns backends.ErrNotFound; an expired entry is removed and
// backends.ErrExpired (which is also ErrNotFound) returned. The codec is not
// used: the entry's Value is returned as it was stored.
//
// A hit takes no lock and writes no memory other goroutines read, except
// once per trip of its entry through the LRU order: the first hit after the
// entry was stored or moved to the front marks it as used.
func (s *Store) Get(_ context.Context, key keyer.Key, _ backends.Codec) (backends.Entry, error) {
	s.lazyInit()
	k := mapKey{exec: key.Execution, sum: key.Sum}
	h := s.hash(&k)
	sh := s.shardOf(h)
	it := sh.read.Load().lookup(&k, h)
	if it == nil {
		return backends.Entry{}, backends.ErrNotFound
	}
	if it.deadline != noDeadline {
		if now := monoNow(); now >= it.deadline {
			sh.removeExpired(&k, it)
			return backends.Entry{}, backends.ErrExpired
		}
	}
	// Recency is recorded, not applied: moving the entry to the front of
	// the LRU list needs the lock, so it is left to the Set that finds the
	// entry at the end of the list (see makeRoom). Loading first keeps an
	// entry that is hit all the time from being written all the time.
	if !it.hit.Load() {
		it.hit.Store(true)
	}
	return it.entry, nil
}

// removeExpired removes it if it is still the entry under k: since Get
// found it, another goroutine may have stored a fresh entry under k, which
// must stay.
func (sh *shard) removeExpired(k *mapKey, it *item) {
	sh.mu.Lock()
	if cur, ok := sh.lru.Peek(*k); ok && cur == it {
		sh.lru.Remove(*k)
	}
	sh.mu.Unlock()
}

// Set stores e under key, replacing any entry there, and evicts the least
// recently used entry of key's shard if the shard is full. e.Value is kept as
// is, not copied; the codec is not used. An entry whose Expires has already
// passed is not stored (and the old entry under key is removed). Set never
// fails.
func (s *Store) Set(_ context.Context, key keyer.Key, e backends.Entry, _ backends.Codec) error {
	s.lazyInit()
	k := mapKey{exec: key.Execution, sum: key.Sum}
	h := s.hash(&k)
	sh := s.shardOf(h)
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
	// Items are never changed once stored (Get hands out copies of the
	// entry without holding the lock), so Tier and Step are set here.
	e.Tier = tierName
	if e.Step == "" {
		e.Step = key.Step
	}
	it := &item{key: k, entry: e, deadline: deadline}

	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Expired entries at the LRU tail are dropped first, so they, and not a
	// live entry, make room for the new one.
	sh.sweepTail(now)
	read := sh.read.Load()
	if read.lookup(&k, h) == nil && sh.lru.Len() >= sh.capacity {
		sh.makeRoom()
	}
	sh.lru.Add(k, it) // evicts the oldest entry if the shard is full
	if read.put(it, h) {
		sh.read.Store(read.rebuild(sh.seed))
	}
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

// makeRoom applies the recency that hits recorded (Get cannot: it takes no
// lock) to the end of the LRU list, where it decides what is evicted: while
// the oldest entry has been hit since it was last moved, it is moved to the
// front and its mark cleared. The Add that follows evicts the first oldest
// entry without hits, as the CLOCK algorithm does. Each move clears a mark
// that a hit set, so the work is O(1) per operation, amortized, and the loop
// ends within one pass over the shard. The caller holds sh.mu.
func (sh *shard) makeRoom() {
	for {
		k, it, ok := sh.lru.GetOldest()
		if !ok || !it.hit.Load() {
			return
		}
		it.hit.Store(false)
		sh.lru.Get(k)
	}
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

// onEvict keeps the read index and the execution index in step with the
// LRU. simplelru calls it synchronously for every removal, so it runs under
// sh.mu.
func (sh *shard) onEvict(k mapKey, _ *item) {
	sh.read.Load().remove(&k, keyHash(sh.seed, &k))
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
	s.lazyInit()
	k := mapKey{exec: key.Execution, sum: key.Sum}
	sh := s.shardOf(s.hash(&k))
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
	n := 0
	s.eachShardOf(executionID, func(sh *shard) {
		// onEvict deletes from this map while we range over it, which Go
		// permits; each key is still visited at most once.
		for k := range sh.index[executionID] {
			sh.lru.Remove(k)
			n++
		}
	})
	return n, nil
}

// RetainExecution sets the expiry of every entry whose key has the given
// execution ID to until, or keeps its own where that is earlier, and
// returns how many it kept; see scope.Retainer. Like PurgeExecution it
// visits only that execution's entries, and never Global ones. Entries are
// never changed once stored (Get reads them without a lock), so each is
// replaced by a copy with the new expiry, which also moves it to the front
// of its shard's LRU order; one whose expiry has passed is removed.
func (s *Store) RetainExecution(_ context.Context, executionID string, until time.Time) (int, error) {
	// As in Set: the monotonic clock first, so the deadline errs early.
	now := monoNow()
	left := int64(time.Until(until))
	n := 0
	s.eachShardOf(executionID, func(sh *shard) { n += sh.retain(executionID, until, now, left) })
	return n, nil
}

// eachShardOf calls f, with the shard's lock held, for each shard that
// holds entries of execution executionID; none for the empty ID, which is
// no execution's. An execution's keys are spread over the shards (see
// Store.hash), and execs says which. A Set racing with f may add a shard
// after execs was read: End is for executions whose steps have returned.
func (s *Store) eachShardOf(executionID string, f func(*shard)) {
	if executionID == "" {
		return
	}
	s.lazyInit()
	s.execs.mu.Lock()
	mask := s.execs.m[executionID]
	s.execs.mu.Unlock()
	for i := range s.shards {
		if mask&(1<<i) == 0 {
			continue
		}
		sh := &s.shards[i].shard
		sh.mu.Lock()
		f(sh)
		sh.mu.Unlock()
	}
}

// retain does RetainExecution's work in one shard, whose lock the caller
// holds: until is the retention's end, left the time from now (monotonic)
// to it.
func (sh *shard) retain(executionID string, until time.Time, now, left int64) int {
	keys := sh.index[executionID]
	if left <= 0 {
		// The retention has already ended: the entries are expired.
		n := 0
		for k := range keys {
			if it, ok := sh.lru.Peek(k); ok && it.deadline > now {
				n++
			}
			sh.lru.Remove(k)
		}
		return n
	}
	deadline := now + left
	var expired []mapKey
	n := 0
	for k := range keys {
		it, ok := sh.lru.Peek(k)
		if !ok {
			continue
		}
		if it.deadline <= now {
			expired = append(expired, k)
			continue
		}
		n++
		if it.deadline <= deadline {
			continue // its own expiry is earlier
		}
		e := it.entry
		e.Expires = until
		fresh := &item{key: k, entry: e, deadline: deadline}
		fresh.hit.Store(it.hit.Load())
		// Add replaces the item without an eviction (the key is there), so
		// the execution index, ranged over here, is not changed.
		sh.lru.Add(k, fresh)
		read := sh.read.Load()
		if read.put(fresh, keyHash(sh.seed, &k)) {
			sh.read.Store(read.rebuild(sh.seed))
		}
	}
	for _, k := range expired {
		sh.lru.Remove(k)
	}
	sh.minDeadline = min(sh.minDeadline, deadline)
	return n
}

// DeleteExpired removes every expired entry now and returns how many. Sets
// already sweep expired entries as they go; DeleteExpired is for freeing
// them at once, for instance before measuring memory.
func (s *Store) DeleteExpired() int {
	s.lazyInit()
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
	s.lazyInit()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}
