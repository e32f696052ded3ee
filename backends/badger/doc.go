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
// Sync costs a disk flush per write. Concurrent Sets share flushes (group
// commit, done by backends.ByteTier): a Set that arrives while another's commit is in flight waits and
// is committed with the others that arrived, in one Badger transaction and
// one flush. Badger alone flushes its log once per transaction. README.md
// has the measurements.
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
// What these cost (heap allocated by Open, peak RSS) is measured by
// TestOpenAllocation and TestPeakRSS and reported in README.md.
//
// For a larger store, or a service that can spare the memory, raise
// [WithMemTableSize] and [WithBlockCacheSize], or change anything with
// [WithBadgerOptions].
//
// # Full disk
//
// Badger writes its log and memtables through memory maps of sparse files,
// and on a full disk such a write is a SIGBUS that kills the process, not
// an error. So a Store keeps a reserve: the space of a value-log file and of
// every memtable Badger may map, plus room for a flush. A write (Set,
// Delete, PurgeExecution, RetainExecution) when less is free fails with an
// error wrapping [ErrNoSpace]: the middleware reports it and returns the
// result (with WithStrict, the call fails). Reads never check. Writes work again once
// space is freed. Open on a disk below the reserve fails with ErrNoSpace.
// The free space is read at most every 100 ms and every 1 MiB written, so
// what remains is another process filling the disk faster than that, or
// past the reserve between two readings: where that matters, put the store
// on its own file system or quota, or choose the SQLite tier, whose writes
// fail with an error on a full disk.
//
// # Damaged files
//
// Open verifies before Badger sees the directory: every table is opened and
// its checksums are checked (so Open takes time in proportion to the data),
// and a MANIFEST that is missing, unreadable, or cut mid-entry beside
// tables it does not list is refused, as Badger would delete those tables.
// Open then fails with an error wrapping [ErrDamaged] and
// backends.ErrCorrupt that names the file, and changes nothing on disk.
// While open, every block read is checked: a damaged block reads as a
// missing or corrupt entry, which the middleware overwrites, and a panic in
// Badger during a call is returned as backends.ErrCorrupt, never raised in
// the caller. A table damaged while open can still crash the process in a
// compaction, which runs in Badger's goroutines; the next Open then refuses
// the table by name.
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
