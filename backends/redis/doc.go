// Package redis is a shared byte tier on Redis (github.com/redis/go-redis/v9),
// and the backends.Coordinator that makes several processes run each key's
// step once between them.
//
//	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
//	shared := redis.New(client, redis.WithPrefix("billing:"))
//	store := backends.Tiered(memory.New(10_000), shared)
//
// The client may be a single node's, a Sentinel (failover) or a Cluster
// client; Redis 7 or later (the Store publishes with sharded pub/sub). The
// client stays the caller's to configure (timeouts, pool, TLS) and close.
//
// # Entries
//
// An entry is stored under one key in the format of backends.EncodeEntry,
// the same bytes Badger and SQLite keep, with Redis's own expiry (PX) from
// the entry's Expires, rounded up: Redis drops expired entries itself, and
// the header's exact expiry, checked on every read, ends an entry on time.
// A hit is one GET. Get, Set, Delete and PurgeExecution are a
// backends.ByteTier, so concurrent Sets share one pipelined round trip.
//
// All keys of one entry share a hash tag, so every script runs on a Redis
// Cluster: a Global entry's keys share a tag of their own, and all keys of
// one execution (its Workflow entries and its index) share the execution's.
// A Workflow entry is added to its execution's index (a set, alive as long
// as its longest-lived entry) by the script that stores it;
// PurgeExecution removes what the index lists, in batches, never scanning
// the key space (no KEYS, no SCAN). RetainExecution (scope.WithRetention)
// finds the entries the same way and rewrites each batch with the
// retention's end as its expiry (PXAT), each entry only if it is unchanged
// since it was read; the index then expires with them.
//
// Evicting Redis (maxmemory with an eviction policy) is safe: an evicted
// entry is a miss, and an evicted lease lets another process run the key,
// as an expired one does. A bit that Redis or the network damaged is caught
// by the entry's checksum: backends.ErrCorrupt, which the middleware
// overwrites.
//
// # One run per key across processes
//
// The stored result is the truth; the lease only gives liveness. When the
// middleware finds a Coordinator it calls, inside its flight (so one
// process sends one request per key however many goroutines call it):
//
//   - Acquire: one script returns the stored entry (a hit), or takes the
//     key's lease (SET NX PX) with a fencing token, or reports who holds it
//     and for how long. A process that finds the lease held subscribes to
//     the key's channel, looks again (so a commit made in between is not
//     missed), and then looks whenever the holder's commit or release is
//     announced, when the lease would expire, and at least every poll
//     interval (WithPollInterval) in case a message was lost. When the
//     lease expires with no result, the next look takes it over with a
//     greater token.
//   - Renewal: the holder extends its lease every third of the lease TTL
//     (WithLeaseTTL), each time only if the lease still carries its token.
//     If a renewal finds the lease gone or another's, or none succeeds
//     before the lease would expire, Lost closes and the middleware
//     cancels the step's context.
//   - Commit: one script stores the result only if no result is stored
//     and the lease still carries the holder's token, ends the lease and
//     announces the result. A late writer (a holder that was paused or cut
//     off past its lease while another process took over and committed) is
//     refused and handed the winner's entry, so every caller in every
//     process gets the same value. A holder whose lease expired with no
//     result stored stores nothing (backends.ErrLeaseLost).
//   - Release: a failed step gives the lease up at once, and the waiting
//     processes are woken to take it over.
//
// On a single node's or a failover client, the waits of a Store share one
// subscription connection. It stays open for 5 s after the last wait ends,
// so that the waits of the next calls reuse it instead of dialling, and
// then closes, as it does on Close; a connection that breaks (Redis
// restarted) is re-established and its channels subscribed again, which
// wakes their waits to look again. A channel stays subscribed as long as
// its connection; after 1024 channels, new waits move to a fresh
// connection and the old one closes with its last wait. A Cluster or Ring
// client places a channel on the shard of its key, so there each wait
// subscribes on a connection of its own.
//
// What this promises: one completed run recorded per key. It does not
// promise that a step starts only once: a holder that crashes, or stops
// longer than the lease TTL, is taken over, so the step may run again
// (after the lease TTL) while the first run's side effects stand. Steps
// with external effects should pass their key (middleware.KeyFrom) as the
// idempotency key, and their fencing token to systems that can refuse a
// writer whose token is lower than one they have seen.
//
// # Fencing tokens
//
// A token is greater than the token of every earlier lease of the same
// key. It comes from a per-key counter (INCR) that is first raised to
// Redis's clock in microseconds when it is behind: the counter lives only
// as long as a lease, so counters of keys no one runs do not accumulate,
// and once one has expired the clock has passed every token it issued.
// Tokens therefore keep increasing as long as Redis's clock does not step
// back by more than the lease TTL. They are large numbers, not 1, 2, 3.
//
// # When Redis is away
//
// Every operation returns an error (bounded by the client's timeouts and
// the caller's context), never a wrong value: the middleware then fails
// open by default (the step runs in this process, its result is returned,
// the fault is observed) or fails the call in strict mode. A holder that
// cannot renew loses its lease once it would have expired. A Redis that
// comes back empty (no persistence) has no entries and no leases: calls
// miss and run again, once per key across the processes.
//
// Close makes the Store refuse further calls and closes its subscription
// connection (once no Acquire waits on it); it does not close the client.
package redis
