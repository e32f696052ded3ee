package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// tierName is the Store's Name and what Get puts in Entry.Tier.
const tierName = "sqlite"

// deleteBatch is how many rows one transaction of DeleteExecution or
// DeleteExpired removes: other writers, in this process and others, get
// their turn between batches.
const deleteBatch = 1000

// Sentinel errors of Open; compare with errors.Is.
var (
	// ErrNotDatabase means the file is not a SQLite database. Open leaves
	// it untouched.
	ErrNotDatabase = errors.New("not a SQLite database")
	// ErrForeignDatabase means the file is a SQLite database that holds
	// tables of another application and no Docket schema. Open leaves it
	// untouched.
	ErrForeignDatabase = errors.New("the SQLite database belongs to another application")
	// ErrNewerSchema means the database was written by a newer Docket, with
	// a schema version this one does not know. Open leaves it untouched.
	ErrNewerSchema = errors.New("the SQLite schema is newer than this version of Docket knows")
)

// errNotOpened is what every method of a Store not made by Open returns.
var errNotOpened = fmt.Errorf("sqlite: store not opened (use sqlite.Open): %w", backends.ErrClosed)

// unopened is the tier of a Store not made by Open: every method returns
// errNotOpened.
var unopened = backends.UnmadeTier(tierName, errNotOpened)

var (
	_ backends.Store        = (*Store)(nil)
	_ backends.ByteStore    = (*db)(nil)
	_ backends.ByteRetainer = (*db)(nil)
	_ scope.Purger          = (*Store)(nil)
	_ scope.Retainer        = (*Store)(nil)
)

// Store is a durable byte tier in one SQLite database file: a
// backends.ByteTier (which owns the entry format, codec, expiry checks and
// group commit) on a table of that file. Make one with [Open] and release
// it with [Store.Close]. Its methods are safe for concurrent use, and
// several processes may open the same file.
type Store struct {
	tier *backends.ByteTier
	db   *db
}

// Open opens, or creates, the Store in the SQLite database file at path,
// and creates or checks its schema. See the package documentation for what
// it refuses and why.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	d, err := openDB(path, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if cfg.expiryInterval > 0 {
		d.sweepDone.Add(1)
		go d.sweep(cfg.expiryInterval)
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

// Name returns "sqlite".
func (s *Store) Name() string { return tierName }

// EncodesValues returns true: the Store keeps encoded bytes.
func (s *Store) EncodesValues() bool { return true }

// Close stops the background expiry, waits for calls in progress and closes
// the database. After Close, every method returns an error wrapping
// backends.ErrClosed. Close is idempotent: later calls return nil.
func (s *Store) Close() error {
	return s.t().Close()
}

// ByteStore returns the byte store under the Store, for tools and for
// backends/storetest, which plants damaged entries through it.
func (s *Store) ByteStore() backends.ByteStore { return s.t().ByteStore() }

// Get returns the entry stored under key, its value decoded with c, and
// Tier set to "sqlite"; see backends.ByteTier for its errors.
func (s *Store) Get(ctx context.Context, key keyer.Key, c backends.Codec) (backends.Entry, error) {
	return s.t().Get(ctx, key, c)
}

// Set stores e under key, encoded with c, replacing any entry there, in a
// row whose columns describe it. When Set returns nil the entry survives a
// killed process; with WithSyncFull it also survives power loss.
func (s *Store) Set(ctx context.Context, key keyer.Key, e backends.Entry, c backends.Codec) error {
	return s.t().Set(ctx, key, e, c)
}

// Delete removes the entry stored under key, if any.
func (s *Store) Delete(ctx context.Context, key keyer.Key) error {
	return s.t().Delete(ctx, key)
}

// PurgeExecution removes every Workflow entry of execution executionID and
// returns how many it removed, in transactions of a bounded number of rows.
// If ctx ends midway, it returns the count removed so far and ctx's error.
func (s *Store) PurgeExecution(ctx context.Context, executionID string) (int, error) {
	return s.t().PurgeExecution(ctx, executionID)
}

// RetainExecution keeps every Workflow entry of execution executionID until
// until, or its own expiry where that is earlier, and returns how many it
// kept; see scope.Retainer. It rewrites each row's value and expires_at in
// BEGIN IMMEDIATE transactions of a bounded number of rows, so no other
// writer changes a row between its read and its rewrite. Once until has
// passed, the rows are expired and the background expiry deletes them. If
// ctx ends midway, it returns the count kept so far and ctx's error.
func (s *Store) RetainExecution(ctx context.Context, executionID string, until time.Time) (int, error) {
	return s.t().RetainExecution(ctx, executionID, until)
}

// DeleteExpired deletes the rows whose expiry has passed, now, and returns
// how many. The Store does this in the background (WithExpiryInterval);
// DeleteExpired is for a Store opened without it, or a tool.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if s == nil || s.tier == nil {
		return 0, errNotOpened
	}
	n, err := s.db.deleteExpired(ctx)
	if err != nil {
		return n, fmt.Errorf("sqlite: delete expired: %w", err)
	}
	return n, nil
}

// db is the backends.ByteStore on one table of a SQLite file.
type db struct {
	sql    *sql.DB
	path   string
	logger *slog.Logger

	// writeMu makes this process's write transactions take turns here
	// rather than in SQLite's busy handler, which sleeps between retries;
	// other processes are still met by busy_timeout.
	writeMu sync.Mutex
	get     *sql.Stmt
	put     *sql.Stmt

	closed    atomic.Bool
	stopSweep context.CancelFunc
	sweepCtx  context.Context
	sweepDone sync.WaitGroup
}

func dsn(path string, cfg config) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10))
	// Every transaction the Store begins writes: BEGIN IMMEDIATE takes the
	// write lock at once, waiting for it under busy_timeout. A deferred
	// transaction that reads first and then upgrades fails with
	// SQLITE_BUSY at the upgrade, without waiting, when another connection
	// has written meanwhile.
	q.Set("_txlock", "immediate")
	if cfg.syncFull {
		q.Set("_synchronous", "FULL")
	} else {
		q.Set("_synchronous", "NORMAL")
	}
	return path + "?" + q.Encode()
}

func openDB(path string, cfg config) (*db, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, errors.New("need the path of a database file (without '?', '#' or a file: URI)")
	}
	sdb, err := sql.Open("sqlite", dsn(path, cfg))
	if err != nil {
		return nil, err
	}
	sdb.SetMaxOpenConns(maxConns)
	sdb.SetMaxIdleConns(maxConns)
	d := &db{sql: sdb, path: path, logger: cfg.logger}
	if err := d.setup(); err != nil {
		_ = sdb.Close()
		if code(err) == sqlite3.SQLITE_CANTOPEN {
			return nil, cantOpen(path, err)
		}
		return nil, err
	}
	if d.get, err = sdb.Prepare(`SELECT value FROM docket_entries WHERE key = ?`); err == nil {
		d.put, err = sdb.Prepare(putSQL)
	}
	if err != nil {
		_ = sdb.Close()
		return nil, err
	}
	d.sweepCtx, d.stopSweep = context.WithCancel(context.Background())
	return d, nil
}

// cantOpen says why SQLite could not open path, which its own message
// does not.
func cantOpen(path string, err error) error {
	if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
		return fmt.Errorf("%q is a directory: %w", path, err)
	}
	dir := filepath.Dir(path)
	if _, serr := os.Stat(dir); serr != nil {
		return fmt.Errorf("directory %q: %w: %w", dir, serr, err)
	}
	return fmt.Errorf("cannot create or write the file (permissions?): %w", err)
}

// code is the primary SQLite result code of err, or 0.
func code(err error) int {
	var se *sqlitedrv.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

const putSQL = `INSERT INTO docket_entries
	(key, step, scope, execution_id, version, created_at, expires_at, codec, trace_id, span_id, value)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (key) DO UPDATE SET
		step = excluded.step, scope = excluded.scope, execution_id = excluded.execution_id,
		version = excluded.version, created_at = excluded.created_at, expires_at = excluded.expires_at,
		codec = excluded.codec, trace_id = excluded.trace_id, span_id = excluded.span_id,
		value = excluded.value`

func (d *db) Get(ctx context.Context, key []byte) ([]byte, error) {
	var val []byte
	if err := d.get.QueryRowContext(ctx, key).Scan(&val); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, backends.ErrNotFound
		}
		return nil, err
	}
	if val == nil {
		val = []byte{} // an empty blob reads back as NULL
	}
	return val, nil
}

// Put writes batch in one BEGIN IMMEDIATE transaction: one commit, and with
// WithSyncFull one flush, for every Set the ByteTier batched.
func (d *db) Put(ctx context.Context, batch []backends.Record) error {
	return d.write(ctx, func(tx *sql.Tx) error {
		stmt := tx.StmtContext(ctx, d.put)
		defer stmt.Close()
		for _, r := range batch {
			m := r.Meta
			traceID, spanID := origin(m.Origin)
			_, err := stmt.ExecContext(ctx, r.Key, m.Step, m.Scope.String(), null(m.Execution), null(m.Version),
				millis(m.Created, false), millis(m.Expires, true), int64(m.Codec), traceID, spanID, nonNil(r.Value))
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (d *db) Delete(ctx context.Context, key []byte) error {
	return d.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM docket_entries WHERE key = ?`, key)
		return err
	})
}

// DeleteExecution deletes by the indexed execution_id column, a batch per
// transaction; the key prefix is not needed.
func (d *db) DeleteExecution(ctx context.Context, executionID string, _ []byte) (int, error) {
	return d.deleteWhere(ctx, `scope = 'workflow' AND execution_id = ?`, executionID)
}

// retainBatch bounds one transaction of RetainExecution: at most this many
// rows, and values of at most retainBatchBytes (but at least one row).
const (
	retainBatch      = 256
	retainBatchBytes = 4 << 20
)

// RetainExecution reads and rewrites the execution's rows a batch per
// transaction, in key order; the write lock that BEGIN IMMEDIATE takes
// makes each row's read and rewrite one step for every other writer.
func (d *db) RetainExecution(ctx context.Context, executionID string, _ []byte, _ time.Time,
	rewrite func([]byte) ([]byte, time.Time, bool)) (int, error) {
	total := 0
	after := []byte{} // below every key
	for after != nil {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var kept int
		err := d.write(ctx, func(tx *sql.Tx) error {
			var err error
			kept, after, err = retainRows(ctx, tx, executionID, after, rewrite)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, err
		}
		total += kept
	}
	return total, nil
}

// retainRows rewrites, in tx, a batch of the execution's rows with keys
// after after, and returns how many it kept and the last key it read (nil
// when there are no more rows).
func retainRows(ctx context.Context, tx *sql.Tx, executionID string, after []byte,
	rewrite func([]byte) ([]byte, time.Time, bool)) (kept int, last []byte, err error) {
	type row struct{ key, val []byte }
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM docket_entries
		WHERE scope = 'workflow' AND execution_id = ? AND key > ? ORDER BY key LIMIT ?`,
		executionID, after, retainBatch)
	if err != nil {
		return 0, nil, err
	}
	var batch []row
	size, full := 0, false
	for rows.Next() {
		if len(batch) > 0 && size >= retainBatchBytes {
			full = true
			break
		}
		var r row
		if err := rows.Scan(&r.key, &r.val); err != nil {
			rows.Close()
			return 0, nil, err
		}
		batch = append(batch, r)
		size += len(r.val)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, nil, err
	}
	for _, r := range batch {
		nv, exp, ok := rewrite(nonNil(r.val))
		if !ok {
			_, err = tx.ExecContext(ctx, `DELETE FROM docket_entries WHERE key = ?`, r.key)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE docket_entries SET value = ?, expires_at = ? WHERE key = ?`,
				nv, millis(exp, true), r.key)
			kept++
		}
		if err != nil {
			return 0, nil, err
		}
	}
	if !full && len(batch) < retainBatch {
		return kept, nil, nil
	}
	return kept, batch[len(batch)-1].key, nil
}

func (d *db) deleteExpired(ctx context.Context) (int, error) {
	if d.closed.Load() {
		return 0, backends.ErrClosed
	}
	return d.deleteWhere(ctx, `expires_at <= ?`, time.Now().UnixMilli())
}

// deleteWhere deletes the rows that match cond, deleteBatch at a time, and
// returns how many. The count is of committed deletes only, so it is true
// when ctx ends midway.
func (d *db) deleteWhere(ctx context.Context, cond string, args ...any) (int, error) {
	q := `DELETE FROM docket_entries WHERE key IN (SELECT key FROM docket_entries WHERE ` + cond +
		` LIMIT ` + strconv.Itoa(deleteBatch) + `)`
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var n int64
		err := d.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, err
		}
		total += int(n)
		if n < deleteBatch {
			return total, nil
		}
	}
}

// write runs f in a BEGIN IMMEDIATE transaction and commits it.
func (d *db) write(ctx context.Context, f func(*sql.Tx) error) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Close stops the background expiry and closes the database; SQLite
// checkpoints the write-ahead log into the file as the last connection
// closes.
func (d *db) Close() error {
	d.closed.Store(true)
	d.stopSweep()
	d.sweepDone.Wait()
	err := errors.Join(d.get.Close(), d.put.Close(), d.sql.Close())
	if err != nil {
		return fmt.Errorf("%q: %w", d.path, err)
	}
	return nil
}

// sweep deletes expired rows every interval until Close.
func (d *db) sweep(interval time.Duration) {
	defer d.sweepDone.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.sweepCtx.Done():
			return
		case <-t.C:
			if _, err := d.deleteWhere(d.sweepCtx, `expires_at <= ?`, time.Now().UnixMilli()); err != nil &&
				d.sweepCtx.Err() == nil && d.logger != nil {
				d.logger.Warn("docket: sqlite background expiry failed", "path", d.path, "err", err)
			}
		}
	}
}

// millis is t as Unix milliseconds, or NULL for the zero time. An expiry
// rounds up, so that a row is never deleted while its entry is live.
func millis(t time.Time, up bool) any {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	if up && t.UnixNano()%int64(time.Millisecond) > 0 {
		ms++
	}
	return ms
}

// origin splits an Origin in package tracing's form (a 16-byte trace ID,
// then an 8-byte span ID) into hex columns; any other form stays in the
// entry only.
func origin(o []byte) (traceID, spanID any) {
	if len(o) != 24 {
		return nil, nil
	}
	return hex.EncodeToString(o[:16]), hex.EncodeToString(o[16:])
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nonNil keeps an empty value a blob: a nil []byte binds as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
