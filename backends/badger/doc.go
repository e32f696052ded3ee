// Package badger is a durable back tier on Badger (github.com/dgraph-io/badger/v4),
// an embedded key-value store: results written here survive restarts and
// crashes of the process.
//
// A [Store] is a backends.ByteTier on Badger: the tier owns the entry format
// (backends.EncodeEntry: format version, codec ID, created-at, expiry,
// producing execution, then the codec's payload, all under a checksum), the
// codec, expiry checks and group commit; this package keeps bytes in Badger.
// Put a memory tier before it, so that hits do not decode:
//
//	db, err := badger.Open(dir)
//	if err != nil { ... }
//	defer db.Close()
//	store := backends.Tiered(memory.New(10_000), db)
//
// One directory is one Store: while a Store has it open, Open of the same
// directory, in this process or another, fails with an error wrapping
// [ErrLocked].
//
// # Keys, expiry, executions
//
// An entry's database key is one namespace byte followed by the key's binary
// form (keyer.Key.AppendBinary), so all Workflow entries of one execution
// share a prefix. [Store.PurgeExecution] walks that prefix, reading keys
// only, and deletes in write batches: writers go on meanwhile (Badger's
// DropPrefix would block them all).
//
// An entry with an expiry is written with Badger's own TTL, so Badger stops
// returning it and compaction reclaims its space: expired entries do not
// accumulate. Badger's TTL counts whole seconds; the Store rounds it up, and
// the expiry in the entry header, checked on every read, ends the entry at
// the exact time.
//
// # What survives a crash
//
// A Set returns only once Badger has written the entry to its write-ahead
// log, which Badger maps into memory: the bytes are then in the operating
// system's page cache, which belongs to the kernel, not the process.
//
//   - A killed process (SIGKILL, panic, OOM kill, os.Exit) loses no
//     acknowledged write, with or without sync. On the next Open, Badger
//     replays its log; a write cut off midway was never acknowledged and is
//     dropped whole (the Store's batches are Badger transactions, applied
//     entirely or not at all). TestCrash kills a writer with SIGKILL and
//     checks this.
//   - Power loss or a kernel crash loses the writes the kernel had not yet
//     written back to disk (by default it does so within about 30 seconds),
//     unless the Store was opened with [WithSyncWrites](true): then each Set
//     returns only after its write is on stable storage (msync). Either way
//     the store reopens consistent; without sync it may reopen without its
//     most recent entries, which the middleware treats as misses.
//
// Sync costs a disk flush per write, about 0.4 ms here. Concurrent Sets
// share flushes (group commit, done by backends.ByteTier): a Set that
// arrives while another's commit is in flight waits and is committed with
// the others that arrived, in one Badger transaction and one flush. Badger alone does not do this: it
// batches concurrent transactions into one write but flushes its log once
// per transaction. Measured with BenchmarkSetSync, 32 concurrent writers
// reach 9 to 11 times the throughput of one (20k to 28k against 2.2k to
// 2.6k Sets/s); with one Badger transaction per write
// (BenchmarkBadgerTxnSync), 32 writers reach about 2 times.
//
// # Memory
//
// The defaults are sized for a library inside someone else's service, not
// for a database server:
//
//	memtable (write buffer)      8 MiB, NumMemtables 2                 (Badger: 64 MiB, 5)
//	level-0 tables before
//	  compaction / write stall   2 / 4                                 (Badger: 5 / 15)
//	block cache                  8 MiB                                 (Badger: 256 MiB)
//	index and Bloom filter cache 4 MiB, bounded                        (Badger: unbounded)
//	value-log file               64 MiB                                (Badger: 1 GiB)
//	compactors                   2                                     (Badger: 4)
//	value threshold              Badger's, 1 MiB: smaller values live in the LSM tree
//	metrics, conflict detection  off                                   (Badger: on)
//	logging                      none (WithLogger)                     (Badger: stderr)
//
// Measured on linux/amd64, Go 1.26, Badger v4.9.6:
//
//   - Open allocates 11 MiB on the Go heap (BenchmarkOpen; Badger's
//     defaults: 86 MiB, most of it a 64 MiB memtable arena). Allocation
//     counts even where resident memory does not show it: the garbage
//     collector sets the process's heap target from the live heap, so an
//     idle 64 MiB arena lets the whole process grow by as much before a GC.
//   - Peak RSS of a process with an empty Store: 14.5 MiB, of which 2.5 MiB
//     are the Store's (the process before Open: 12 MiB). With Badger's
//     defaults: 15 MiB (their arena is allocated but not yet touched).
//   - Peak RSS of a process that writes 100,000 small entries (about 250
//     bytes each, 8 concurrent writers, full speed) and reads them back:
//     105 to 130 MiB, varying with when compactions run. Most of it is
//     Badger's: memtables being flushed, table builders of compactions
//     (buffers Badger pools and frees after about 2 s idle), the block and
//     index caches, and the garbage of that write rate under the default
//     GOGC. Badger's defaults: 139 MiB.
//
// (TestOpenAllocation and TestPeakRSS measure these; run
// go test -run 'TestOpenAllocation|TestPeakRSS' -v.) For a larger store, or
// a service that can spare the memory, raise [WithMemTableSize] and
// [WithBlockCacheSize], or change anything with [WithBadgerOptions].
//
// # Speed
//
// Medians of go test -bench . -count 6, two runs on a shared 2-core VM: a
// back-tier hit (Badger read plus decoding a small struct with
// encoding/json) takes 7.5 to 8.6 µs from the memtable and 9.5 to 10.5 µs
// from on-disk tables; through Tiered, including promotion to the memory
// tier, 8.7 µs. A Set without sync takes 18 to 21 µs. Decoding JSON is
// about a third of a hit; Badger's read transaction most of the rest.
//
// # Background work and Close
//
// Badger runs compactions in its own goroutines; the Store adds one, which
// runs value-log garbage collection every 5 minutes ([WithGCInterval]) until
// it finds nothing to rewrite. [Store.Close] stops it, waits for calls in
// progress and closes Badger, after which no goroutine of the Store or of
// Badger is left. Get, Set, Delete and PurgeExecution called after Close
// return an error wrapping backends.ErrClosed; Close itself may be called
// again.
package badger
