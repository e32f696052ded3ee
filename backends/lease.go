package backends

import (
	"context"
	"errors"

	"github.com/docket-go/docket/keyer"
)

// ErrLeaseLost means a lease ended before its holder committed: it expired
// (the holder paused or lost its connection past the lease's TTL) or another
// process took it over. The holder's result was not stored.
var ErrLeaseLost = errors.New("backends: lease lost")

// Coordinator is implemented by a store that several processes share (such
// as backends/redis). It lets one process at a time run a key's step and
// records one completed run per key: the stored result is the truth, the
// lease only gives liveness. When a persisted step's store, or the back tier
// of a Tiered store, is a Coordinator, the middleware calls Acquire and
// Lease.Commit inside its flight in place of Get and Set on that tier, so one
// process sends one Acquire per key however many goroutines call it.
type Coordinator interface {
	Store
	// Acquire returns the key's stored entry with a nil Lease (a hit), or a
	// Lease that gives the caller the right to run the step. While another
	// process holds the lease, Acquire waits until that process's result is
	// stored (a hit) or its lease expires with no result (then Acquire takes
	// the lease over, with a greater token). It returns ctx.Err() if ctx
	// ends first. A stored entry that cannot be read is an error wrapping
	// ErrCorrupt, like Get's; the caller then runs the step and overwrites it
	// only if it can take the lease, so Acquire with a corrupt entry takes
	// the lease as if there were none and returns it with that error.
	Acquire(ctx context.Context, key keyer.Key, c Codec) (Entry, Lease, error)
}

// Lease is one process's right to run one key's step. Its methods are safe
// for concurrent use. The holder renews it in the background until Commit
// or Release, so the caller must end every Lease it gets with exactly one
// of them, whatever the step did (a panic included); a Lease never ended
// is renewed for as long as the process lives, and the key is stuck.
type Lease interface {
	// Token is the lease's fencing token: greater than the token of every
	// earlier lease of the same key. A step can hand it to external systems
	// that refuse writes with a token lower than one they have seen.
	Token() uint64
	// Lost is closed when the lease could not be renewed or was taken over;
	// the middleware then cancels the step's context. It is never closed
	// once Commit or Release has been called.
	Lost() <-chan struct{}
	// Commit stores e if this lease is still the key's current one and no
	// result is stored, and releases the lease. It returns the entry that is
	// stored when it returns: e, or the result another run committed first
	// (a late writer is refused and handed the winner's result, so every
	// caller in every process gets the same value). When the lease was lost
	// and no result is stored, Commit stores nothing and returns an error
	// wrapping ErrLeaseLost. Any other error (the shared store could not be
	// reached) leaves it unknown whether e was stored; the lease then ends
	// by expiring. Commit or Release ends the lease; either may be called
	// once, and a second call returns an error.
	Commit(ctx context.Context, e Entry, c Codec) (Entry, error)
	// Release gives the lease up without a result (the step failed), so
	// that a waiting process can take it over at once.
	Release(ctx context.Context) error
}

// Encoder is implemented by stores that say whether they keep results as
// encoded bytes. A store that does not implement it is taken to encode (it
// is handed a Codec), so that Wrap checks that the codec carries the step's
// result type exactly; a front tier that keeps decoded values, like
// backends/memory, reports false and accepts every result type.
type Encoder interface {
	EncodesValues() bool
}

// EncodesValues reports whether s keeps results as encoded bytes, in any of
// its tiers: see Encoder.
func EncodesValues(s Store) bool {
	if e, ok := s.(Encoder); ok {
		return e.EncodesValues()
	}
	return true
}
