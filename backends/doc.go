// Package backends defines the Store interface that persisted steps keep
// their results in, and Tiered, which puts a fast front tier before a durable
// back tier.
//
// A front tier (backends/memory) keeps decoded values, so a front-tier hit
// decodes nothing. A byte tier (backends/badger, backends/sqlite) keeps
// encoded bytes and uses the Codec the middleware passes to encode on Set
// and decode on Get.
//
// A byte tier is built from a [ByteStore], a small interface that keeps
// opaque records with their metadata as fields, by [NewByteTier], which owns
// everything that is the same for every byte tier: key encoding, the stored
// entry format ([EncodeEntry]) and its checksum, the codec, expiry on read,
// Entry.Tier, the sentinel errors, group commit of concurrent Sets, and
// keeping calls away from a closed store. backends/storetest checks any
// Store against the [Store] contract.
//
// Besides the Store interface, stores implement optional ones that callers
// find by type assertion: [Lister] and [Selector] (bulk operations, for
// tools), [Layered] (Tiered), [Coordinator] (backends/redis), [Encoder],
// and scope.Retainer, which keeps an execution's Workflow entries for a
// retention at End(nil) (scope.WithRetention) by moving their expiry
// forward to its end, never past their own. Every store here is a
// Retainer: memory, every ByteTier whose ByteStore is a [ByteRetainer]
// (badger, sqlite, redis), and Tiered, in both tiers. A store that is not
// one, or a ByteTier on a ByteStore that is not a ByteRetainer, is purged
// at End(nil) instead; [RetainExecution] reports it as [ErrUnsupported].
package backends
