// Package memory is the in-process front tier: a bounded LRU cache of decoded
// results, built on the thread-unsafe core of hashicorp/golang-lru/v2
// (simplelru.LRU).
//
// # Why not golang-lru's Cache directly
//
// An LRU Get is a write: it moves the entry to the front of the recency
// list. golang-lru's Cache therefore takes one exclusive lock for every Get,
// and a cache that every persisted call hits first stops scaling at one
// core; even an uncontended lock is a write to a cache line that the other
// cores then have to fetch back.
//
// A [Store] splits the capacity over independent shards, each an
// simplelru.LRU with its own mutex, which keeps the eviction order, and a
// read index beside it: a hash table of the shard's entries that writers
// change under the shard's mutex in ways a reader may observe at any moment,
// and replace whole with one atomic store when it grows. A hit searches the
// read index with loads alone: no lock, no reader count, no shared counter,
// so concurrent hits, on one key or many, do not slow each other down.
//
// Recency is recorded by a hit and applied by a later Set, as the CLOCK
// algorithm does: a hit marks its entry (a write only if the mark is not
// already set, so an entry hit all the time is written once per trip
// through the LRU order), and a Set that has to evict first moves every
// marked entry it finds at the end of the LRU list to the front, clearing
// its mark, and then evicts the oldest unmarked one. An entry hit since it
// last reached the end of the list is therefore never evicted ahead of an
// unused one, but among entries hit in that time the order is that of their
// last move, not of their last hit: eviction order is approximately, not
// exactly, least recently used.
//
// Recency is also per shard: the entry evicted is the least recently used
// of its shard, not of the whole store, and a shard can be full and
// evicting while another still has room (a key's shard is fixed by its
// hash, and each shard holds an equal share of the capacity). Leave some
// headroom above the working set, or use [WithShards](1) for one LRU order
// over the whole store.
//
// A Store also knows what a plain LRU does not: per-entry expiry
// (Entry.Expires) and which execution an entry belongs to, so that
// PurgeExecution removes one execution's entries without scanning the cache.
//
// # Guarantees
//
//   - Bounded memory: a Store made by New(maxEntries) never holds more than
//     maxEntries entries. Shard capacities add up to exactly maxEntries; a
//     Set into a full shard evicts the entry at the end of that shard's
//     (approximately) least-recently-used order.
//   - Expiry: an entry is never returned after its Expires time. Expiry is
//     measured on the monotonic clock, so wall-clock jumps do not revive an
//     entry; it may end a little early, never late. Expired entries do not
//     accumulate: Sets sweep them as they go (see [Store.DeleteExpired]).
//   - Shared values: a Store keeps Entry.Value as given, neither copied nor
//     encoded, and every Get returns that same value. Results are shared
//     between callers and must be treated as immutable.
//   - No goroutines: all work happens inside the calls, so a Store needs no
//     Close.
//   - The zero Store is ready to use, with a bound of [DefaultMaxEntries]
//     entries; [New] sets another bound.
package memory
