package backends

import (
	"context"
	"errors"
	"fmt"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// ByteScanner is the optional extension of a [ByteStore] that gives its
// [ByteTier] the bulk operations ([Lister], [Selector]). The tier does the
// filtering a store cannot do itself, from the entries' headers; a store
// narrows the scan natively where it can (an index, a key prefix, columns).
//
// Duties of an implementation:
//
//   - Scan calls fn with the records of the store, in no particular order,
//     until fn returns an error, which Scan then returns. It must include
//     every record f matches and may include others: the tier checks f
//     again. Records written during a Scan may or may not be seen. The
//     slices of a ScanRecord are valid only until fn returns.
//   - A ScanRecord carries either the stored entry (Value) or, for a store
//     that keeps every field of Meta in columns, Meta with HasMeta set and
//     Size; then Value may be nil and the tier does not read it.
//   - DeleteWhere removes the records that match accepts, among those Scan
//     would give for f, and returns how many it removed. A store that
//     filters natively on every field f sets may delete without calling
//     match. The count must be true: if ctx ends midway, it returns the
//     number removed so far with ctx's error.
//   - fn and match may be called from the goroutine that called Scan or
//     DeleteWhere only, one record at a time; neither calls back into the
//     store.
type ByteScanner interface {
	Scan(ctx context.Context, f Filter, fn func(ScanRecord) error) error
	DeleteWhere(ctx context.Context, f Filter, match func(ScanRecord) bool) (int, error)
}

// ScanRecord is one record a [ByteScanner] found.
type ScanRecord struct {
	// Key is the record's key, in the form [EntryKey] gives.
	Key []byte
	// Value is the stored entry; nil when HasMeta is set and the store did
	// not read it.
	Value []byte
	// Meta holds the record's fields when HasMeta is set.
	Meta    Meta
	HasMeta bool
	// Size is the stored entry's length in bytes when HasMeta is set.
	Size int
}

var (
	_ Lister   = (*ByteTier)(nil)
	_ Selector = (*ByteTier)(nil)
)

// scanner returns the tier's ByteScanner, or an error wrapping
// ErrUnsupported.
func (t *ByteTier) scanner(op string) (ByteScanner, error) {
	bs, ok := t.store.(ByteScanner)
	if !ok {
		return nil, fmt.Errorf("%s: %s: %w", t.name, op, ErrUnsupported)
	}
	return bs, nil
}

// List calls fn with an Info of every entry f matches; see [Lister]. The
// Info's Tier is the tier's name and Size the stored entry's length.
// Entries that cannot be read back (damaged, another format version) are
// left out: a Get reports them as ErrCorrupt and the middleware overwrites
// them.
func (t *ByteTier) List(ctx context.Context, f Filter, fn func(Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.enter("list"); err != nil {
		return err
	}
	defer t.leave()
	bs, err := t.scanner("list")
	if err != nil {
		return err
	}
	f.Now = f.now() // one clock reading for the whole scan
	var fnErr error
	err = bs.Scan(ctx, f, func(r ScanRecord) error {
		i, ok := t.info(r)
		if !ok || !f.Matches(i) {
			return nil
		}
		if err := fn(i); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if err != nil && (err == fnErr || errors.Is(err, ctx.Err())) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: list: %w", t.name, err)
	}
	return nil
}

// DeleteMatching removes every entry f matches and returns how many it
// removed; see [Selector]. Entries that cannot be read back are kept
// unless f is the zero Filter (every entry) or selects only by execution,
// which their keys tell. If ctx ends midway, it returns the count removed
// so far and ctx's error.
func (t *ByteTier) DeleteMatching(ctx context.Context, f Filter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := t.enter("delete matching"); err != nil {
		return 0, err
	}
	defer t.leave()
	bs, err := t.scanner("delete matching")
	if err != nil {
		return 0, err
	}
	f.Now = f.now()
	byKey := f.Step == "" && !f.ByVersion() && !f.Expired
	n, err := bs.DeleteWhere(ctx, f, func(r ScanRecord) bool {
		i, ok := t.info(r)
		if !ok {
			if !byKey {
				return false
			}
			k, err := keyer.ParseBinary(r.Key)
			if err != nil {
				return false
			}
			i = Info{Key: k}
		}
		return f.Matches(i)
	})
	if err != nil && !errors.Is(err, ctx.Err()) {
		return n, fmt.Errorf("%s: delete matching: %w", t.name, err)
	}
	return n, err
}

// Inspect returns what is stored under key without decoding its value:
// the entry's Info and the codec's encoding of the value (Info.Codec names
// the codec). Unlike Get it also returns an expired entry the store still
// holds. It is for tools that show entries whose result type they do not
// know.
func (t *ByteTier) Inspect(ctx context.Context, key keyer.Key) (Info, []byte, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, nil, err
	}
	k, err := EntryKey(make([]byte, 0, keyLen(key)), key)
	if err != nil {
		return Info{}, nil, fmt.Errorf("%s: inspect: %w", t.name, err)
	}
	if err := t.enter("inspect"); err != nil {
		return Info{}, nil, err
	}
	val, err := t.store.Get(ctx, k)
	t.leave()
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Info{}, nil, ErrNotFound
		}
		return Info{}, nil, fmt.Errorf("%s: inspect %v: %w", t.name, key, err)
	}
	h, err := decodeHeader(val)
	if err != nil {
		return Info{}, nil, fmt.Errorf("%s: inspect %v: %w", t.name, key, err)
	}
	i := headerInfo(key, h, len(val))
	i.Tier = t.name
	if i.Key.Step == "" {
		i.Key.Step = key.Step
	}
	if key.Scope == scope.Workflow {
		i.Execution = key.Execution
	}
	return i, h.payload, nil
}

// info describes the record r; ok is false when r cannot be read back.
func (t *ByteTier) info(r ScanRecord) (Info, bool) {
	k, err := keyer.ParseBinary(r.Key)
	if err != nil {
		return Info{}, false
	}
	var i Info
	if r.HasMeta {
		m := r.Meta
		k.Step = m.Step
		i = Info{
			Key:       k,
			Version:   m.Version,
			Created:   m.Created,
			Expires:   m.Expires,
			Execution: m.Execution,
			Origin:    m.Origin,
			Codec:     m.Codec,
			Size:      r.Size,
		}
	} else {
		h, err := decodeHeader(r.Value)
		if err != nil {
			return Info{}, false
		}
		i = headerInfo(k, h, len(r.Value))
		if len(h.origin) > 0 {
			// A copy: r.Value is valid only during the scan's callback.
			i.Origin = append([]byte(nil), h.origin...)
		}
	}
	if k.Scope == scope.Workflow {
		i.Execution = k.Execution
	}
	i.Tier = t.name
	return i, true
}

// headerInfo is the Info of an entry under k with header h and size n;
// its Origin aliases the entry's bytes.
func headerInfo(k keyer.Key, h entryHeader, n int) Info {
	k.Step = string(h.step)
	i := Info{
		Key:       k,
		Version:   string(h.version),
		Created:   fromUnixNanos(h.created),
		Expires:   fromUnixNanos(h.expires),
		Execution: string(h.execution),
		Codec:     h.codec,
		Size:      n,
	}
	if len(h.origin) > 0 {
		i.Origin = h.origin
	}
	return i
}
