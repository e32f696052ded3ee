package badger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
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

// purgeCheckEvery is how many keys PurgeExecution deletes between looks at
// its context.
const purgeCheckEvery = 256

// ErrLocked is returned (wrapped) by Open when another process, or another
// open Store in this one, holds the directory.
var ErrLocked = errors.New("docket: badger directory is in use by another process (or another open Store)")

var (
	_ backends.Store = (*Store)(nil)
	_ scope.Purger   = (*Store)(nil)
)

// Store is a durable byte tier on a Badger database in one directory. Make
// one with [Open] and release it with [Store.Close]. Its methods are safe for
// concurrent use.
type Store struct {
	// mu guards db against Close: every use of db holds it for reading, and
	// Close takes it for writing before it closes db, so no call ever
	// reaches a closed Badger (which panics in places rather than erring).
	mu     sync.RWMutex
	closed bool
	db     *badgerdb.DB

	dir     string
	logger  *slog.Logger
	commits committer

	closeOnce sync.Once
	closeErr  error
	stopGC    chan struct{}
	gcDone    sync.WaitGroup
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
	db, err := badgerdb.Open(cfg.options(dir))
	if err != nil {
		// Badger formats its lock error without %w, so only its text tells
		// it apart.
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("badger: open %q: %w: %w", dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("badger: open %q: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, logger: cfg.logger, stopGC: make(chan struct{})}
	if cfg.gcInterval > 0 {
		s.gcDone.Add(1)
		go s.runGC(cfg.gcInterval)
	}
	return s, nil
}

// Name returns "badger".
func (s *Store) Name() string { return tierName }

// Close stops the background value-log GC and closes the database, waiting
// for calls in progress to finish. After Close, every method returns an
// error wrapping backends.ErrClosed. Close is idempotent: later calls return
// nil.
func (s *Store) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		// GC holds mu for reading while it runs, so it must stop before
		// Close can take mu.
		close(s.stopGC)
		s.gcDone.Wait()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("badger: close %q: %w", s.dir, err)
		}
	})
	if !first {
		return nil
	}
	return s.closeErr
}

func (s *Store) errClosed(op string) error {
	return fmt.Errorf("badger: %s: %w", op, backends.ErrClosed)
}

// entryKey is the database key of k.
func entryKey(k keyer.Key) ([]byte, error) {
	b := make([]byte, 1, 1+keyHeaderMax+len(k.Execution)+len(k.Sum))
	b[0] = nsEntry
	return k.AppendBinary(b)
}

// keyHeaderMax bounds what a binary keyer.Key has besides the execution ID
// and Sum: a tag byte and a uvarint length.
const keyHeaderMax = 1 + binary.MaxVarintLen64

// executionPrefix is the prefix of the database keys of every Workflow
// entry of execution id, and of no other key.
func executionPrefix(id string) []byte {
	return keyer.AppendExecutionPrefix([]byte{nsEntry}, id)
}

// Get returns the entry stored under key, its value decoded with c, and
// Tier set to "badger". It returns an error wrapping backends.ErrNotFound
// when there is none or it has expired (then also backends.ErrExpired), and
// one wrapping backends.ErrCorrupt when the stored bytes cannot be read back
// with c: damaged, of an unknown format version, written by another codec,
// or undecodable.
func (s *Store) Get(ctx context.Context, key keyer.Key, c backends.Codec) (backends.Entry, error) {
	if err := ctx.Err(); err != nil {
		return backends.Entry{}, err
	}
	k, err := entryKey(key)
	if err != nil {
		return backends.Entry{}, fmt.Errorf("badger: get: %w", err)
	}
	val, err := s.read(k)
	if err != nil {
		return backends.Entry{}, err
	}
	// val is a copy owned here, so the codec may keep slices of it.
	e, err := backends.DecodeEntry(val, c)
	if err != nil {
		if errors.Is(err, backends.ErrExpired) {
			return backends.Entry{}, err
		}
		return backends.Entry{}, fmt.Errorf("badger: get %v: %w", key, err)
	}
	e.Tier = tierName
	return e, nil
}

func (s *Store) read(k []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.errClosed("get")
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	item, err := txn.Get(k)
	if err != nil {
		if errors.Is(err, badgerdb.ErrKeyNotFound) {
			return nil, backends.ErrNotFound
		}
		return nil, fmt.Errorf("badger: get: %w", err)
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("badger: get: %w", err)
	}
	return val, nil
}

// Set stores e under key, encoded with c (see backends.EncodeEntry),
// replacing any entry there. When e.Expires is set, Badger itself drops the
// entry once it has passed, so expired entries do not accumulate: reads
// stop seeing it, and compaction reclaims its space. When Set returns nil the
// entry survives a killed process; with WithSyncWrites it also survives
// power loss.
func (s *Store) Set(ctx context.Context, key keyer.Key, e backends.Entry, c backends.Codec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := entryKey(key)
	if err != nil {
		return fmt.Errorf("badger: set: %w", err)
	}
	val, err := backends.EncodeEntry(e, c)
	if err != nil {
		return fmt.Errorf("badger: set %v: %w", key, err)
	}
	w := newWrite(k, val, expiresAt(e.Expires))
	err = s.commit(w)
	w.release()
	return err
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

// Delete removes the entry stored under key, if any.
func (s *Store) Delete(ctx context.Context, key keyer.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := entryKey(key)
	if err != nil {
		return fmt.Errorf("badger: delete: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.errClosed("delete")
	}
	if err := s.db.Update(func(txn *badgerdb.Txn) error { return txn.Delete(k) }); err != nil {
		return fmt.Errorf("badger: delete %v: %w", key, err)
	}
	return nil
}

// PurgeExecution removes every Workflow entry of execution executionID and
// returns how many it removed; Global entries and other executions' entries
// are untouched. It walks the execution's key prefix (keys only, no values)
// and deletes in batches, so writers are never blocked (Badger's DropPrefix
// would stop all writes while it runs). If ctx ends midway, it returns the
// count removed so far and ctx's error.
func (s *Store) PurgeExecution(ctx context.Context, executionID string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, s.errClosed("purge execution")
	}
	prefix := executionPrefix(executionID)
	wb := s.db.NewWriteBatch()
	n, stopped, err := s.deletePrefix(ctx, wb, prefix)
	if err != nil {
		wb.Cancel()
		return 0, fmt.Errorf("badger: purge execution %q: %w", executionID, err)
	}
	// Also when ctx ended midway: the deletes queued so far are made, so
	// the count returned is true.
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("badger: purge execution %q: %w", executionID, err)
	}
	return n, stopped
}

// deletePrefix queues the deletion of every key with prefix in wb. It
// returns early with ctx's error in stopped when ctx ends.
func (s *Store) deletePrefix(ctx context.Context, wb *badgerdb.WriteBatch, prefix []byte) (n int, stopped, err error) {
	txn := s.db.NewTransaction(false)
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

// runGC runs value-log GC every interval until Close.
func (s *Store) runGC(interval time.Duration) {
	defer s.gcDone.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopGC:
			return
		case <-t.C:
			s.gcOnce()
		}
	}
}

// gcOnce rewrites value-log files until Badger finds none worth rewriting.
func (s *Store) gcOnce() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	for {
		select {
		case <-s.stopGC:
			return
		default:
		}
		err := s.db.RunValueLogGC(gcDiscardRatio)
		if err == nil {
			continue // a file was rewritten; there may be more
		}
		if !errors.Is(err, badgerdb.ErrNoRewrite) && !errors.Is(err, badgerdb.ErrRejected) && s.logger != nil {
			s.logger.Warn("docket: badger value-log GC failed", "dir", s.dir, "err", err)
		}
		return
	}
}
