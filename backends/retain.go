package backends

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/docket-go/docket/scope"
)

// Retention: End(nil) of an execution begun with scope.WithRetention keeps
// its Workflow entries for a while instead of removing them, so that a
// re-run with the same ID replays them. A store does it by moving each
// entry's expiry forward to the retention's end, never past the entry's
// own: once the retention has passed the entries are expired, and go the
// way every expired entry goes (native TTL, a sweep, DeleteMatching with
// Filter.Expired).

var (
	_ scope.Retainer = (*ByteTier)(nil)
	_ scope.Retainer = (*TieredStore)(nil)
)

// ByteRetainer is the optional extension of a [ByteStore] that gives its
// [ByteTier] RetainExecution (scope.Retainer). The tier rewrites the
// entries; the store reads and writes them back atomically.
//
// Duties of an implementation:
//
//   - RetainExecution calls rewrite with the stored value of every record
//     DeleteExecution would remove (exactly those records' keys start
//     with prefix), one at a time. When rewrite returns ok, it replaces the
//     record's value with the bytes rewrite returned and its expiry (native
//     TTL, a column) with the time it returned, which is not after until;
//     when rewrite returns false (the value cannot be read back, or has
//     expired), it removes the record. It returns how many records it
//     replaced.
//   - Each replacement or removal is conditional: it happens only if the
//     record still holds the value rewrite was given, so that a concurrent
//     Set or Delete is never undone (a Delete of a call that finished as
//     its execution ended must not be resurrected). A record changed
//     meanwhile is left as it is and not counted.
//   - until is the latest expiry rewrite returns, for stores that keep
//     per-execution records (an index) that must live as long as the
//     entries and no longer.
//   - If ctx ends midway, it returns the number replaced so far with ctx's
//     error: the count must be true.
//   - rewrite does not keep its argument and does not call into the
//     store; the store may keep the slice it returns.
type ByteRetainer interface {
	RetainExecution(ctx context.Context, executionID string, prefix []byte, until time.Time,
		rewrite func(value []byte) (newValue []byte, expires time.Time, ok bool)) (int, error)
}

// RetainExecution sets the expiry of every Workflow entry of execution
// executionID to until, or keeps its own if that is earlier, and returns
// how many entries it kept; see scope.Retainer. Entries that cannot be read
// back, or have expired, are removed instead. Global entries and other
// executions' entries are untouched. A ByteStore that is not a
// [ByteRetainer] makes it return an error wrapping [ErrUnsupported]
// without touching an entry. If ctx ends midway, it returns the count kept
// so far and ctx's error.
func (t *ByteTier) RetainExecution(ctx context.Context, executionID string, until time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := t.enter("retain execution"); err != nil {
		return 0, err
	}
	defer t.leave()
	br, ok := t.store.(ByteRetainer)
	if !ok {
		return 0, fmt.Errorf("%s: retain execution: %w", t.name, ErrUnsupported)
	}
	now, end := time.Now().UnixNano(), unixNanos(until)
	n, err := br.RetainExecution(ctx, executionID, ExecutionPrefix(nil, executionID), until,
		func(v []byte) ([]byte, time.Time, bool) { return retainEntry(v, end, now) })
	if err != nil && !errors.Is(err, ctx.Err()) {
		return n, fmt.Errorf("%s: retain execution %q: %w", t.name, executionID, err)
	}
	return n, err
}

// retainEntry returns a copy of the stored entry b whose expiry is until,
// or its own if that is earlier, with the checksum made anew, and that
// expiry. ok is false when b cannot be read back or expired before now.
func retainEntry(b []byte, until, now int64) (_ []byte, expires time.Time, ok bool) {
	h, err := decodeHeader(b)
	if err != nil || (h.expires != 0 && h.expires <= now) {
		return nil, time.Time{}, false
	}
	exp := h.expires
	if exp == 0 || exp > until {
		exp = until
	}
	nb := bytes.Clone(b)
	binary.LittleEndian.PutUint64(nb[11:], uint64(exp))
	body := nb[:len(nb)-entryCRCLen]
	binary.LittleEndian.PutUint32(nb[len(body):], crc32.Checksum(body, crc32c))
	return nb, fromUnixNanos(exp), true
}

// RetainExecution keeps the execution's entries in both tiers until until
// (see scope.Retainer), the back first, as PurgeExecution removes them, and
// returns the larger of the two tiers' counts. A tier that cannot retain
// (an error wrapping [ErrUnsupported]) makes the joined error wrap
// ErrUnsupported too, so that the execution's End purges the whole store
// rather than keep the entries in one tier only.
func (t *TieredStore) RetainExecution(ctx context.Context, executionID string, until time.Time) (int, error) {
	if t.front == nil {
		return 0, errZeroTiered("retain execution")
	}
	bn, berr := RetainExecution(ctx, t.back, executionID, until)
	fn, ferr := RetainExecution(ctx, t.front, executionID, until)
	return max(bn, fn), t.join(berr, ferr)
}

// RetainExecution keeps the Workflow entries of execution executionID in s
// until until, or their own expiry if that is earlier (scope.Retainer). A
// store that is not a scope.Retainer makes it return an error wrapping
// [ErrUnsupported].
func RetainExecution(ctx context.Context, s Store, executionID string, until time.Time) (int, error) {
	r, ok := s.(scope.Retainer)
	if !ok {
		return 0, fmt.Errorf("%s: retain execution: %w", s.Name(), ErrUnsupported)
	}
	return r.RetainExecution(ctx, executionID, until)
}
