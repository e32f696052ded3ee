package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// ByteStore is the seam a durable store implements: it keeps opaque byte
// records under byte keys, with the record's metadata as fields. Turn one
// into a [Store] with [NewByteTier], which owns everything else: key
// encoding, the entry format and its checksum, the codec, expiry on read,
// Entry.Tier, the sentinel errors, group commit of concurrent Sets, and
// keeping calls away from a closed store.
//
// Duties of an implementation:
//
//   - Keys are compared as bytes. Keys and values may hold any byte; a store
//     that needs text encodes them itself (and decodes them back exactly).
//   - Get returns a copy of the value stored under key, which the caller may
//     keep and modify, or an error wrapping [ErrNotFound] when there is none.
//     It may return a record whose Meta.Expires has passed: the tier checks
//     expiry on every read. Any other error is a fault, reported as is.
//   - Put stores every record of batch, each replacing whatever is stored
//     under its key; of two records with one key, the later wins. When it
//     returns nil, every record is as durable as the store promises (a
//     killed process loses none of them). It should write the batch in one
//     transaction: the tier batches concurrent Sets into one Put so that
//     they share a commit. When it returns an error, any of the records may
//     or may not be stored; the tier then puts each record alone, so that a
//     record that cannot be stored (too large, say) fails alone. Put must
//     not modify the records' bytes; it may keep them. ctx carries the
//     values of one of the Sets in the batch and is never cancelled: a
//     store that waits on a server bounds the wait itself.
//   - Records expire: a record whose Meta.Expires has passed must not
//     stay stored indefinitely. A store with native TTL hands Meta.Expires
//     to it (rounded up, never down: an entry may be dropped late, never
//     early); a store with columns deletes expired rows in the background.
//   - Delete removes the record under key; a missing key is not an error.
//   - DeleteExecution removes every record whose Meta.Scope is
//     scope.Workflow and whose Meta.Execution is executionID, and no other,
//     and returns how many it removed. Exactly those records' keys start
//     with prefix, for stores that scan by key. If ctx ends midway, it
//     returns the number removed so far with ctx's error: the count must be
//     true.
//   - Methods are safe for concurrent use. The tier never calls a method
//     after [ByteTier.Close] has begun, nor while Close runs; if the store
//     implements io.Closer, Close calls its Close once, after every call in
//     progress has returned.
//   - A store that several processes share must keep each Put's records
//     whole (no reader sees half a value).
//
// Methods other than Put receive the caller's ctx and should return
// ctx.Err() promptly when it ends.
type ByteStore interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, batch []Record) error
	Delete(ctx context.Context, key []byte) error
	DeleteExecution(ctx context.Context, executionID string, prefix []byte) (int, error)
}

// Record is one entry a [ByteTier] hands its [ByteStore] to store.
type Record struct {
	// Key is the entry's key, in the form [EntryKey] gives.
	Key []byte
	// Value is the entry in the stored format ([EncodeEntry]), which
	// repeats the metadata under a checksum: it alone is read back.
	Value []byte
	// Meta describes the entry, so that a store can index it or expire it.
	Meta Meta
}

// Meta is what a store may know about an entry besides its bytes. Every
// field is also inside the stored value; a store keeps the fields it can
// use (as columns to query, a TTL) and may drop the rest.
type Meta struct {
	// Step is the step name (keyer.Key.Step); it may be empty for keys not
	// made by the middleware.
	Step string
	// Scope is the key's scope.
	Scope scope.Scope
	// Execution is, for a Workflow entry, the execution it belongs to
	// (DeleteExecution removes it with that execution); for a Global entry,
	// the execution that produced it, if known (provenance only).
	Execution string
	// Version is the step's code version (Entry.Version), often empty.
	Version string
	// Created is when the result was produced; zero when unknown.
	Created time.Time
	// Expires is when the entry stops being served; zero means never.
	Expires time.Time
	// Codec is the ID of the codec that encoded the value (Codec.ID).
	Codec uint8
	// Origin identifies the run that produced the result (Entry.Origin);
	// package tracing makes it a 16-byte trace ID and an 8-byte span ID.
	Origin []byte
}

// EntryKey appends the key a [ByteTier] stores k under: keyer's binary form
// (keyer.Key.AppendBinary). Every Workflow key of one execution starts with
// [ExecutionPrefix] of it, and no other key does.
func EntryKey(dst []byte, k keyer.Key) ([]byte, error) { return k.AppendBinary(dst) }

// ExecutionPrefix appends the prefix of the keys of every Workflow entry of
// execution id.
func ExecutionPrefix(dst []byte, id string) []byte { return keyer.AppendExecutionPrefix(dst, id) }

var (
	_ Store   = (*ByteTier)(nil)
	_ Encoder = (*ByteTier)(nil)
)

// ByteTier is a [Store] on a [ByteStore]: a durable tier that keeps encoded
// entries. Make one with [NewByteTier]. Its methods are safe for concurrent
// use.
//
// Get returns the entry's value decoded with the given codec and Tier set to
// the tier's name; an entry past its Expires is ErrExpired (and
// ErrNotFound) and is never decoded; an entry that cannot be read back
// (damaged, of an unknown format version, written by another codec,
// undecodable) is ErrCorrupt, which the middleware overwrites. Set encodes
// with the codec ([EncodeEntry]) and commits Sets that arrive while another
// commit is in progress together, in one Put (group commit). Errors are
// prefixed with the tier's name. After Close, on a zero ByteTier, and on
// one [UnmadeTier] returns, every method returns an error wrapping
// [ErrClosed].
type ByteTier struct {
	name  string
	store ByteStore
	// unmade, set only by UnmadeTier, is the error of every method of a
	// tier on no store.
	unmade error

	// mu keeps calls away from a closed store: every call to store holds it
	// for reading, and Close takes it for writing before it closes store.
	mu     sync.RWMutex
	closed bool

	commits committer

	closeOnce sync.Once
	closeErr  error
}

// NewByteTier returns a Store on s whose Name, and whose entries' Tier, is
// name. It panics if s is nil or name is empty.
func NewByteTier(name string, s ByteStore) *ByteTier {
	if s == nil || name == "" {
		panic("backends: NewByteTier needs a name and a ByteStore")
	}
	return &ByteTier{name: name, store: s}
}

// UnmadeTier returns a ByteTier on no store, named name, whose every method
// (Close included) returns err, which should wrap [ErrClosed] and say how a
// store is made. It is what the zero value of a store that wraps a
// ByteTier delegates to: such a store has no tier until its constructor
// makes one, so it keeps one UnmadeTier in a package variable, and its
// methods delegate to it instead of each checking for a missing tier.
//
//	var unopened = backends.UnmadeTier("badger", errNotOpened)
//
//	func (s *Store) t() *backends.ByteTier {
//		if s == nil || s.tier == nil {
//			return unopened
//		}
//		return s.tier
//	}
//
// It panics if err is nil or name is empty.
func UnmadeTier(name string, err error) *ByteTier {
	if err == nil || name == "" {
		panic("backends: UnmadeTier needs a name and an error")
	}
	return &ByteTier{name: name, unmade: err}
}

// Name returns the tier's name.
func (t *ByteTier) Name() string { return t.name }

// EncodesValues returns true: a byte tier carries only what its codec
// encodes exactly.
func (t *ByteTier) EncodesValues() bool { return true }

// ByteStore returns the store under the tier, for tools and for the
// conformance suite, which plants damaged entries through it.
func (t *ByteTier) ByteStore() ByteStore { return t.store }

// Close waits for calls in progress, makes every later call fail with
// ErrClosed, and closes the ByteStore if it implements io.Closer. Close is
// idempotent: later calls return nil.
func (t *ByteTier) Close() error {
	if t.store == nil {
		return t.enter("close") // the zero or unmade ByteTier's error
	}
	first := false
	t.closeOnce.Do(func() {
		first = true
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		if c, ok := t.store.(io.Closer); ok {
			if err := c.Close(); err != nil {
				t.closeErr = fmt.Errorf("%s: close: %w", t.name, err)
			}
		}
	})
	if !first {
		return nil
	}
	return t.closeErr
}

// enter holds off Close for one call; leave ends it.
func (t *ByteTier) enter(op string) error {
	if t.store == nil {
		if t.unmade != nil {
			return t.unmade
		}
		return fmt.Errorf("backends: %s on a ByteTier not made with NewByteTier: %w", op, ErrClosed)
	}
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return fmt.Errorf("%s: %s: %w", t.name, op, ErrClosed)
	}
	return nil
}

func (t *ByteTier) leave() { t.mu.RUnlock() }

// Get returns the entry stored under key; see [ByteTier].
func (t *ByteTier) Get(ctx context.Context, key keyer.Key, c Codec) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	k, err := EntryKey(make([]byte, 0, keyLen(key)), key)
	if err != nil {
		return Entry{}, fmt.Errorf("%s: get: %w", t.name, err)
	}
	if err := t.enter("get"); err != nil {
		return Entry{}, err
	}
	val, err := t.store.Get(ctx, k)
	t.leave()
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Entry{}, ErrNotFound
		}
		return Entry{}, fmt.Errorf("%s: get %v: %w", t.name, key, err)
	}
	// val is a copy owned here, so the codec may keep slices of it.
	e, err := DecodeEntry(val, c)
	if err != nil {
		if errors.Is(err, ErrExpired) {
			return Entry{}, err
		}
		return Entry{}, fmt.Errorf("%s: get %v: %w", t.name, key, err)
	}
	e.Tier = t.name
	return e, nil
}

// Set stores e under key, encoded with c; see [ByteTier]. When it returns
// nil, the entry is as durable as the ByteStore promises.
func (t *ByteTier) Set(ctx context.Context, key keyer.Key, e Entry, c Codec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.store == nil {
		return t.enter("set") // the zero or unmade ByteTier's error
	}
	k, err := EntryKey(make([]byte, 0, keyLen(key)), key)
	if err != nil {
		return fmt.Errorf("%s: set: %w", t.name, err)
	}
	if e.Step == "" {
		e.Step = key.Step
	}
	val, err := EncodeEntry(e, c)
	if err != nil {
		return fmt.Errorf("%s: set %v: %w", t.name, key, err)
	}
	m := Meta{
		Step:      key.Step,
		Scope:     key.Scope,
		Execution: e.Execution,
		Version:   e.Version,
		Created:   e.Created,
		Expires:   e.Expires,
		Codec:     c.ID(),
		Origin:    e.Origin,
	}
	if key.Scope == scope.Workflow {
		m.Execution = key.Execution
	}
	w := newWrite(ctx, Record{Key: k, Value: val, Meta: m})
	err = t.commit(w)
	w.release()
	if err != nil {
		return fmt.Errorf("%s: set %v: %w", t.name, key, err)
	}
	return nil
}

// Delete removes the entry stored under key, if any.
func (t *ByteTier) Delete(ctx context.Context, key keyer.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := EntryKey(make([]byte, 0, keyLen(key)), key)
	if err != nil {
		return fmt.Errorf("%s: delete: %w", t.name, err)
	}
	if err := t.enter("delete"); err != nil {
		return err
	}
	defer t.leave()
	if err := t.store.Delete(ctx, k); err != nil {
		return fmt.Errorf("%s: delete %v: %w", t.name, key, err)
	}
	return nil
}

// PurgeExecution removes every Workflow entry of execution executionID and
// returns how many it removed; Global entries and other executions' entries
// are untouched. If ctx ends midway, it returns the count removed so far
// and ctx's error.
func (t *ByteTier) PurgeExecution(ctx context.Context, executionID string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := t.enter("purge execution"); err != nil {
		return 0, err
	}
	defer t.leave()
	n, err := t.store.DeleteExecution(ctx, executionID, ExecutionPrefix(nil, executionID))
	if err != nil && !errors.Is(err, ctx.Err()) {
		return n, fmt.Errorf("%s: purge execution %q: %w", t.name, executionID, err)
	}
	return n, err
}

// keyLen is the length of k's binary form, so that it is built in one
// allocation.
func keyLen(k keyer.Key) int { return 1 + 10 + len(k.Execution) + len(k.Sum) }
