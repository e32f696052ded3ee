// Package sqlite is a durable back tier in a SQLite database file, on
// modernc.org/sqlite (pure Go, no cgo): results survive restarts and
// crashes, several processes on one host may share the file, and anyone can
// open it with the sqlite3 shell and query it with plain SQL.
//
//	db, err := sqlite.Open("docket.db")
//	if err != nil { ... }
//	defer db.Close()
//	store := backends.Tiered(memory.New(10_000), db)
//
// A [Store] is a backends.ByteTier on one table: the tier owns the entry
// format, the codec, expiry checks and group commit; this package keeps
// rows.
//
// # The table
//
// One row per entry, in the table docket_entries:
//
//	key           BLOB PRIMARY KEY   the entry's key (backends.EntryKey)
//	step          TEXT               step name
//	scope         TEXT               'global' or 'workflow'
//	execution_id  TEXT (indexed)     Workflow: the execution the entry belongs to;
//	                                 Global: the execution that produced it; or NULL
//	version       TEXT               the step's version, or NULL
//	created_at    INTEGER            Unix milliseconds, or NULL
//	expires_at    INTEGER (indexed)  Unix milliseconds, rounded up; NULL: never
//	codec         INTEGER            the codec's ID
//	trace_id      TEXT               hex trace ID of the run that produced it, or NULL
//	span_id       TEXT               hex span ID of that run, or NULL
//	value         BLOB               the entry (backends.EncodeEntry), checksummed
//
// Get reads only value, whose header repeats the other columns under a
// checksum: a damaged value is backends.ErrCorrupt (a miss that the
// middleware overwrites), and a column edited by hand changes no result.
// Treat the file as read-only from outside: delete rows to drop entries,
// but do not update them.
//
// # Opening
//
// Open refuses, with an error and without writing to it: a path whose
// directory is missing or not writable; a file that is not a SQLite
// database ([ErrNotDatabase]); a SQLite database with tables of its own and
// no Docket schema ([ErrForeignDatabase]); and a schema newer than this
// code knows ([ErrNewerSchema]). The schema's version is PRAGMA
// user_version, so the file belongs to the Store: do not put other tables
// in it. A new file is switched to WAL mode, and the schema is created in a
// transaction that any number of processes may race.
//
// # Writes, durability, processes
//
// The file is in WAL mode: readers never block the writer, nor it them.
// Every write is a BEGIN IMMEDIATE transaction, which takes the write lock
// when it begins and waits for it up to the busy timeout (5 s,
// [WithBusyTimeout]) while another process writes. Concurrent Sets in one
// process are committed together in one transaction (group commit), so they
// share the commit's cost.
//
// With the default synchronous=NORMAL, a Set that returned survives the
// process being killed (SIGKILL, panic, OOM): the commit is in the
// write-ahead log, in the operating system's page cache. Power loss or a
// kernel crash may lose the latest commits, never the file's consistency.
// [WithSyncFull] makes each commit wait for the disk, so that acknowledged
// writes survive power loss too.
//
// A full disk fails the write (SQLITE_FULL), which the middleware reports
// and, by default, survives by returning the result anyway. Nothing
// committed before is lost, and writes succeed again once there is space.
//
// # Expiry and Close
//
// Rows past expires_at are never served (the entry header's exact expiry is
// checked on every read) and are deleted by one background goroutine every
// minute ([WithExpiryInterval]), a bounded batch per transaction;
// [Store.DeleteExpired] does it on demand. RetainExecution
// (scope.WithRetention) rewrites an execution's rows, value and
// expires_at, with the retention's end, so the same expiry removes them. [Store.Close] stops that
// goroutine, waits for calls in progress and closes the database; then
// every method returns an error wrapping backends.ErrClosed.
package sqlite
