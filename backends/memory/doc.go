// Package memory is the in-process front tier: a bounded LRU cache of decoded
// results, built on the thread-unsafe core of hashicorp/golang-lru/v2
// (simplelru.LRU).
//
// # Why not golang-lru's Cache directly
//
// An LRU Get is a write: it moves the entry to the front of the recency
// list. golang-lru's Cache therefore takes one exclusive lock for every Get,
// and a cache that every persisted call hits first stops scaling at one core.
// A [Store] splits the capacity over independent shards, each an
// simplelru.LRU with its own mutex, so that concurrent hits on different keys
// rarely meet on a lock. The price is that recency is per shard: the entry
// evicted is the least recently used of its shard, not of the whole store,
// and a shard can be full and evicting while another still has room (a key's
// shard is fixed by its hash, and each shard holds an equal share of the
// capacity). Leave some headroom above the working set, or use
// [WithShards](1) for one LRU order over the whole store.
//
// Recency is also approximate within a shard: a hit moves its entry to the
// front of the LRU list only once the entry has aged by half the shard's
// capacity in inserts since it was last moved. Moving on every hit touches
// the entry's neighbours in the list, two cache misses on a large cache,
// which made a hit cost half again as much; an entry that is hit often is
// still moved long before eviction could reach it, but one hit just
// before a burst of other hits and inserts can be evicted as if unused.
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
package memory
