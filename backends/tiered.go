package backends

import (
	"context"
	"errors"
	"fmt"

	"github.com/docket-go/docket/keyer"
)

var _ Layered = (*TieredStore)(nil)

// TieredStore puts a fast front tier before a durable back tier. Make one
// with [Tiered]. It is safe for concurrent use if both tiers are.
//
// Every entry written through a TieredStore goes to both tiers; the back is
// the source of truth, the front a cache of it that may have evicted or
// expired what the back still holds.
//
// A zero TieredStore holds no tiers: its methods return an error wrapping
// ErrClosed that says to use Tiered.
type TieredStore struct {
	front, back Store
	name        string
}

// Tiered returns a store that reads front first and back on a front miss,
// and writes both. It panics if front or back is nil.
func Tiered(front, back Store) *TieredStore {
	if front == nil || back == nil {
		panic("backends: Tiered needs a front and a back store, got nil")
	}
	return &TieredStore{front: front, back: back, name: front.Name() + "+" + back.Name()}
}

// Name returns the tiers' names joined by "+", such as "memory+badger".
func (t *TieredStore) Name() string { return t.name }

// Front returns the front tier.
func (t *TieredStore) Front() Store { return t.front }

// Back returns the back tier.
func (t *TieredStore) Back() Store { return t.back }

// EncodesValues reports whether either tier keeps encoded bytes.
func (t *TieredStore) EncodesValues() bool {
	if t.front == nil {
		return true
	}
	return EncodesValues(t.front) || EncodesValues(t.back)
}

// Get returns the front tier's entry if it has one. Otherwise, whether the
// front missed or failed, it asks the back tier; a back hit is copied into
// the front (promoted) and returned with Tier set to the back's name. A
// failed promotion does not fail the Get: the entry is still good, only the
// next Get will reach the back again.
//
// When the back has no usable entry, Get returns the back's error (not
// found, expired, corrupt or a fault), so that the caller sees, for
// instance, a corrupt durable entry and overwrites it. A front fault is not
// reported: the back answered in its place.
func (t *TieredStore) Get(ctx context.Context, key keyer.Key, c Codec) (Entry, error) {
	if t.front == nil {
		return Entry{}, errZeroTiered("get")
	}
	if e, err := t.front.Get(ctx, key, c); err == nil {
		return e, nil
	}
	e, err := t.back.Get(ctx, key, c)
	if err != nil {
		return Entry{}, err
	}
	_ = t.front.Set(ctx, key, e, c)
	e.Tier = t.back.Name()
	return e, nil
}

// Set writes the back tier, then the front. The front is written even if the
// back failed, so that this process still serves the result; the back's
// error (and the front's, if any) is returned, wrapped with the tier's name.
//
// The back goes first so that a result is durable before other callers in
// this process can find it in the front (publish after commit).
func (t *TieredStore) Set(ctx context.Context, key keyer.Key, e Entry, c Codec) error {
	if t.front == nil {
		return errZeroTiered("set")
	}
	berr := t.back.Set(ctx, key, e, c)
	ferr := t.front.Set(ctx, key, e, c)
	return t.join(berr, ferr)
}

// Delete removes key from both tiers, the back first, which narrows (but
// does not close) the window in which a concurrent Get that read the back
// just before promotes the entry into the front again. Delete a key, or end
// an execution, when no call of it is in progress.
func (t *TieredStore) Delete(ctx context.Context, key keyer.Key) error {
	if t.front == nil {
		return errZeroTiered("delete")
	}
	berr := t.back.Delete(ctx, key)
	ferr := t.front.Delete(ctx, key)
	return t.join(berr, ferr)
}

// PurgeExecution removes the execution's entries from both tiers, the back
// first (see Delete). An entry usually sits in both tiers, so the two counts
// are not added: the result is the larger of them, which is the number of
// distinct entries whenever the front holds a subset of the back.
func (t *TieredStore) PurgeExecution(ctx context.Context, executionID string) (int, error) {
	if t.front == nil {
		return 0, errZeroTiered("purge execution")
	}
	bn, berr := t.back.PurgeExecution(ctx, executionID)
	fn, ferr := t.front.PurgeExecution(ctx, executionID)
	return max(bn, fn), t.join(berr, ferr)
}

// join names each tier's error, so a caller can tell which tier failed, and
// keeps them comparable with errors.Is.
func (t *TieredStore) join(backErr, frontErr error) error {
	if backErr != nil {
		backErr = fmt.Errorf("%s: %w", t.back.Name(), backErr)
	}
	if frontErr != nil {
		frontErr = fmt.Errorf("%s: %w", t.front.Name(), frontErr)
	}
	switch {
	case frontErr == nil:
		return backErr
	case backErr == nil:
		return frontErr
	default:
		return errors.Join(backErr, frontErr)
	}
}

// errZeroTiered is the error of every method of a zero TieredStore.
func errZeroTiered(op string) error {
	return fmt.Errorf("backends: %s on a TieredStore not made with backends.Tiered: %w", op, ErrClosed)
}
