package badger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// tierName is the Store's Name and what Get puts in Entry.Tier.
const tierName = "badger"

// nsEntry starts every key the Store writes, so that the key space has room
// for other kinds of records (metadata) that no entry key can collide with.
const nsEntry = 'e'

// purgeCheckEvery is how many keys DeleteExecution deletes between looks at
// its context.
const purgeCheckEvery = 256

// ErrLocked is returned (wrapped) by Open when another process, or another
// open Store in this one, holds the directory.
var ErrLocked = errors.New("the directory is in use by another process (or another open Store)")

// unopened is the tier of a Store not made by Open: every method returns
// its error, which says to use Open.
var unopened = backends.UnmadeTier(tierName, fmt.Errorf("badger: store not opened (use badger.Open): %w", backends.ErrClosed))

var (
	_ backends.Store        = (*Store)(nil)
	_ backends.ByteStore    = (*db)(nil)
	_ backends.ByteRetainer = (*db)(nil)
	_ scope.Purger          = (*Store)(nil)
	_ scope.Retainer        = (*Store)(nil)
)

// Store is a durable byte tier on a Badger database in one directory: a
// backends.ByteTier (which owns the entry format, codec, expiry checks and
// group commit) on Badger. Make one with [Open] and release it with
// [Store.Close]. Its methods are safe for concurrent use.
type Store struct {
	tier *backends.ByteTier
	db   *db
}

// Open opens, or creates, the Store in dir. Only one Store may have dir open
// at a time: while one does, Open fails with an error wrapping [ErrLocked],
// in this process or another. See the package documentation for the
// defaults that options change.
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	bo := cfg.options(dir)
	if err := verifyDir(dir, bo); err != nil {
		return nil, err
	}
	if err := checkSpace(dir, bo); err != nil {
		return nil, fmt.Errorf("badger: open %q: %w", dir, err)
	}
	bdb, err := badgerdb.Open(bo)
	if err != nil {
		// Badger formats its lock error without %w, so only its text tells
		// it apart.
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("badger: open %q: %w: %w", dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("badger: open %q: %w", dir, err)
	}
	d := &db{db: bdb, dir: dir, logger: cfg.logger, stopGC: make(chan struct{}), space: &spaceGuard{dir: dir, need: reserve(bo)}}
	if cfg.gcInterval > 0 {
		d.gcDone.Add(1)
		go d.runGC(cfg.gcInterval)
	}
	return &Store{tier: backends.NewByteTier(tierName, d), db: d}, nil
}

// t is the tier s delegates to: unopened for a Store not made by Open.
func (s *Store) t() *backends.ByteTier {
	if s == nil || s.tier == nil {
		return unopened
	}
	return s.tier
}

// Name returns "badger".
func (s *Store) Name() string { return tierName }

// EncodesValues returns true: the Store keeps encoded bytes.
func (s *Store) EncodesValues() bool { return true }

// Close stops the background value-log GC and closes the database, waiting
// for calls in progress to finish. After Close, every method returns an
// error wrapping backends.ErrClosed. Close is idempotent: later calls return
// nil.
func (s *Store) Close() error {
	return s.t().Close()
}

// ByteStore returns the Badger byte store under the Store, for tools and
// for backends/storetest, which plants damaged entries through it.
func (s *Store) ByteStore() backends.ByteStore { return s.t().ByteStore() }

// Get returns the entry stored under key, its value decoded with c, and
// Tier set to "badger". It returns an error wrapping backends.ErrNotFound
// when there is none or it has expired (then also backends.ErrExpired), and
// one wrapping backends.ErrCorrupt when the stored bytes cannot be read back
// with c: damaged, of an unknown format version, written by another codec,
// or undecodable.
func (s *Store) Get(ctx context.Context, key keyer.Key, c backends.Codec) (backends.Entry, error) {
	return s.t().Get(ctx, key, c)
}

// Set stores e under key, encoded with c (see backends.EncodeEntry),
// replacing any entry there. When e.Expires is set, Badger itself drops the
// entry once it has passed, so expired entries do not accumulate: reads
// stop seeing it, and compaction reclaims its space. When Set returns nil the
// entry survives a killed process; with WithSyncWrites it also survives
// power loss.
func (s *Store) Set(ctx context.Context, key keyer.Key, e backends.Entry, c backends.Codec) error {
	return s.t().Set(ctx, key, e, c)
}

// Delete removes the entry stored under key, if any.
func (s *Store) Delete(ctx context.Context, key keyer.Key) error {
	return s.t().Delete(ctx, key)
}

// PurgeExecution removes every Workflow entry of execution executionID and
// returns how many it removed; Global entries and other executions' entries
// are untouched. It walks the execution's key prefix (keys only, no values)
// and deletes in batches, so writers are never blocked (Badger's DropPrefix
// would stop all writes while it runs). If ctx ends midway, it returns the
// count removed so far and ctx's error.
func (s *Store) PurgeExecution(ctx context.Context, executionID string) (int, error) {
	return s.t().PurgeExecution(ctx, executionID)
}

// RetainExecution keeps every Workflow entry of execution executionID until
// until, or its own expiry where that is earlier, and returns how many it
// kept; see scope.Retainer. It rewrites each entry with the new expiry in
// its header and Badger's TTL, in transactions of a bounded size that never
// undo a concurrent write. If ctx ends midway, it returns the count kept so
// far and ctx's error.
func (s *Store) RetainExecution(ctx context.Context, executionID string, until time.Time) (int, error) {
	return s.t().RetainExecution(ctx, executionID, until)
}

// db is the backends.ByteStore on Badger. The ByteTier over it never calls
// it after Close has begun, so it needs no guard against a closed Badger
// (which panics in places rather than erring).
type db struct {
	db     *badgerdb.DB
	dir    string
	logger *slog.Logger

	space *spaceGuard

	stopGC chan struct{}
	gcDone sync.WaitGroup
}

// damagedRead marks a failed checksum as backends.ErrCorrupt: Badger has no
// sentinel for it, only its text.
func damagedRead(err error) error {
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "checksum") {
		return fmt.Errorf("%w: %w", backends.ErrCorrupt, err)
	}
	return err
}

// recovered turns a panic in Badger into an error: a damaged table makes
// Badger panic on read, and a store's panic must never reach a caller. A
// read that panics is backends.ErrCorrupt, a miss the next write replaces:
// the new version lands in a memtable, which reads consult first.
func recovered(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: badger %s panicked (damaged file?): %v", backends.ErrCorrupt, op, r)
	}
}

// dbKey is the Badger key of an entry key.
func dbKey(key []byte) []byte {
	return append(append(make([]byte, 0, 1+len(key)), nsEntry), key...)
}

func (d *db) Get(_ context.Context, key []byte) (val []byte, err error) {
	defer recovered(&err, "read")
	txn := d.db.NewTransaction(false)
	defer txn.Discard()
	item, err := txn.Get(dbKey(key))
	if err != nil {
		if errors.Is(err, badgerdb.ErrKeyNotFound) {
			return nil, backends.ErrNotFound
		}
		return nil, damagedRead(err)
	}
	val, err = item.ValueCopy(nil)
	return val, damagedRead(err)
}

// Put commits batch in as few transactions as Badger's size limit allows;
// with SyncWrites, each is one fsync.
func (d *db) Put(_ context.Context, batch []backends.Record) (err error) {
	defer recovered(&err, "write")
	n := 0
	for _, r := range batch {
		n += len(r.Key) + len(r.Value)
	}
	if err := d.space.check(n); err != nil {
		return err
	}
	txn := d.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, r := range batch {
		e := &badgerdb.Entry{Key: dbKey(r.Key), Value: r.Value, ExpiresAt: expiresAt(r.Meta.Expires)}
		err := txn.SetEntry(e)
		if errors.Is(err, badgerdb.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn = d.db.NewTransaction(true)
			err = txn.SetEntry(e)
		}
		if err != nil {
			return err
		}
	}
	return txn.Commit()
}

// expiresAt is Badger's form of an expiry: Unix seconds, 0 for never. It
// rounds up, so Badger never drops an entry before its Expires; the entry
// header's exact expiry covers the last second.
func expiresAt(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	if sec < 1 {
		return 1 // long past; 0 would mean never
	}
	return uint64(sec)
}

func (d *db) Delete(_ context.Context, key []byte) (err error) {
	defer recovered(&err, "delete")
	if err := d.space.check(len(key)); err != nil {
		return err
	}
	k := dbKey(key)
	return d.db.Update(func(txn *badgerdb.Txn) error { return txn.Delete(k) })
}

// DeleteExecution walks the execution's key prefix, reading keys only, and
// deletes in a write batch, so writers go on meanwhile.
func (d *db) DeleteExecution(ctx context.Context, _ string, prefix []byte) (n int, err error) {
	defer recovered(&err, "purge")
	if err := d.space.check(len(prefix)); err != nil {
		return 0, err
	}
	wb := d.db.NewWriteBatch()
	n, stopped, err := d.deletePrefix(ctx, wb, dbKey(prefix))
	if err != nil {
		wb.Cancel()
		return 0, err
	}
	// Also when ctx ended midway: the deletes queued so far are made, so
	// the count returned is true.
	if err := wb.Flush(); err != nil {
		return 0, err
	}
	return n, stopped
}

// deletePrefix queues the deletion of every key with prefix in wb. It
// returns early with ctx's error in stopped when ctx ends.
func (d *db) deletePrefix(ctx context.Context, wb *badgerdb.WriteBatch, prefix []byte) (n int, stopped, err error) {
	txn := d.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if n%purgeCheckEvery == purgeCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return n, err, nil
			}
		}
		// The batch keeps the key until it commits, and the iterator
		// reuses its buffer: copy.
		if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
			return n, nil, err
		}
		n++
	}
	return n, nil, nil
}

// Close stops the value-log GC, then closes Badger.
func (d *db) Close() error {
	close(d.stopGC)
	d.gcDone.Wait()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("%q: %w", d.dir, err)
	}
	return nil
}

// runGC runs value-log GC every interval until Close.
func (d *db) runGC(interval time.Duration) {
	defer d.gcDone.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stopGC:
			return
		case <-t.C:
			d.gcOnce()
		}
	}
}

// gcOnce rewrites value-log files until Badger finds none worth rewriting.
func (d *db) gcOnce() {
	for {
		select {
		case <-d.stopGC:
			return
		default:
		}
		err := d.db.RunValueLogGC(gcDiscardRatio)
		if err == nil {
			continue // a file was rewritten; there may be more
		}
		if !errors.Is(err, badgerdb.ErrNoRewrite) && !errors.Is(err, badgerdb.ErrRejected) && d.logger != nil {
			d.logger.Warn("docket: badger value-log GC failed", "dir", d.dir, "err", err)
		}
		return
	}
}

// retainBatch bounds one transaction of RetainExecution: at most this many
// records, and values of at most retainBatchBytes (but at least one record),
// so that a transaction stays well inside Badger's size limit.
const (
	retainBatch      = 256
	retainBatchBytes = 4 << 20
)

// RetainExecution rewrites the execution's records in read-write
// transactions of a bounded size, each reading the records it rewrites:
// Badger refuses the commit (ErrConflict) if another writer changed one of
// them meanwhile, and the batch is read again, so a concurrent Set or
// Delete is never undone.
func (d *db) RetainExecution(ctx context.Context, _ string, prefix []byte, _ time.Time,
	rewrite func([]byte) ([]byte, time.Time, bool)) (n int, err error) {
	defer recovered(&err, "retain")
	p := dbKey(prefix)
	from := p
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, next, err := d.retainBatch(p, from, rewrite)
		if errors.Is(err, badgerdb.ErrConflict) {
			continue // read the batch again
		}
		if err != nil {
			return n, err
		}
		n += m
		if next == nil {
			return n, nil
		}
		from = next
	}
}

// retainBatch rewrites, in one transaction, up to a batch of the records
// with prefix p from key from on, and returns how many it kept and the key
// to go on from (nil at the end).
func (d *db) retainBatch(p, from []byte, rewrite func([]byte) ([]byte, time.Time, bool)) (kept int, next []byte, err error) {
	type rec struct{ key, val []byte }
	txn := d.db.NewTransaction(true)
	defer txn.Discard()
	var batch []rec
	size := 0
	it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: p, PrefetchValues: false})
	for it.Seek(from); it.ValidForPrefix(p); it.Next() {
		if len(batch) == retainBatch || (len(batch) > 0 && size >= retainBatchBytes) {
			// The successor of the last key read: it.Item() would add the
			// next key to the transaction's reads, and a write to it to
			// the conflicts.
			next = append(slices.Clone(batch[len(batch)-1].key), 0)
			break
		}
		// Reading the item in a read-write transaction is what makes the
		// commit conflict with another writer of the key.
		val, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return 0, nil, damagedRead(err)
		}
		batch = append(batch, rec{it.Item().KeyCopy(nil), val})
		size += len(val)
	}
	it.Close()
	if err := d.space.check(size); err != nil {
		return 0, nil, err
	}
	for _, r := range batch {
		nv, exp, ok := rewrite(r.val)
		if !ok {
			err = txn.Delete(r.key)
		} else {
			err = txn.SetEntry(&badgerdb.Entry{Key: r.key, Value: nv, ExpiresAt: expiresAt(exp)})
			kept++
		}
		if err != nil {
			return 0, nil, err
		}
	}
	if err := txn.Commit(); err != nil {
		return 0, nil, err
	}
	return kept, next, nil
}
