package backends

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// ErrUnsupported is returned (wrapped) by the optional operations of a
// store that does not have them: the bulk operations of one that cannot
// list or select its entries, RetainExecution of one that cannot change
// its entries' expiry. It is also errors.ErrUnsupported, which is how
// package scope, which imports no store, recognises it.
var ErrUnsupported error = unsupportedError{}

type unsupportedError struct{}

func (unsupportedError) Error() string        { return "backends: not supported by this store" }
func (unsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }

// Filter selects entries for the bulk operations: an entry matches when it
// matches every field that is set. The zero Filter matches every entry.
type Filter struct {
	// Step, when not empty, matches entries of that step name.
	Step string
	// Version, when not empty, matches entries of that step version.
	// HasVersion with an empty Version matches the entries of unversioned
	// steps (the empty version is a version of its own).
	Version    string
	HasVersion bool
	// Scope, when valid, matches entries of that scope.
	Scope scope.Scope
	// Execution, when not empty, matches the Workflow entries of that
	// execution.
	Execution string
	// Expired matches only entries whose TTL has passed (and that the store
	// has not removed yet).
	Expired bool
	// Now is the time Expired is judged at; the zero Now means the current
	// time. Tools set it to judge expiry by the clock they show ages with.
	Now time.Time
}

// Matches reports whether f matches the entry i describes (its Key.Scope,
// Key.Execution, Key.Step, Version and Expires).
func (f Filter) Matches(i Info) bool {
	switch {
	case f.Step != "" && i.Key.Step != f.Step:
		return false
	case f.ByVersion() && i.Version != f.Version:
		return false
	case f.Scope.Valid() && i.Key.Scope != f.Scope:
		return false
	case f.Execution != "" && (i.Key.Scope != scope.Workflow || i.Key.Execution != f.Execution):
		return false
	case f.Expired && (i.Expires.IsZero() || i.Expires.After(f.now())):
		return false
	}
	return true
}

// ByVersion reports whether f selects entries by version: Version is set,
// or HasVersion is.
func (f Filter) ByVersion() bool { return f.HasVersion || f.Version != "" }

// now is the time f judges expiry at.
func (f Filter) now() time.Time {
	if f.Now.IsZero() {
		return time.Now()
	}
	return f.Now
}

// Info describes one stored entry without its value.
type Info struct {
	Key       keyer.Key // Key.Step is the entry's step name where the store records it
	Version   string
	Created   time.Time
	Expires   time.Time // zero: never
	Execution string    // the producing execution (Workflow: the key's)
	Origin    []byte
	Codec     uint8 // 0 for tiers that keep decoded values
	Size      int   // bytes stored; 0 for tiers that keep decoded values
	Tier      string
}

// Lister is implemented by stores that can list their entries: List calls
// fn with every entry f matches, in no particular order, until fn returns
// an error, which List then returns. Entries written during a List may or
// may not be seen.
type Lister interface {
	List(ctx context.Context, f Filter, fn func(Info) error) error
}

// Selector is implemented by stores that can remove the entries a Filter
// matches. DeleteMatching returns how many it removed.
type Selector interface {
	DeleteMatching(ctx context.Context, f Filter) (int, error)
}

// DeleteMatching removes from s every entry f matches, in every tier of a
// Tiered store (back first), and returns how many distinct entries it
// removed: for a Tiered store the larger of the two tiers' counts, as for
// PurgeExecution. A store, or tier, that is not a Selector makes it return
// an error wrapping ErrUnsupported.
func DeleteMatching(ctx context.Context, s Store, f Filter) (int, error) {
	if t, ok := s.(*TieredStore); ok && t.front != nil {
		bn, berr := DeleteMatching(ctx, t.back, f)
		fn, ferr := DeleteMatching(ctx, t.front, f)
		return max(bn, fn), t.join(berr, ferr)
	}
	sel, ok := s.(Selector)
	if !ok {
		return 0, fmt.Errorf("%s: delete matching: %w", s.Name(), ErrUnsupported)
	}
	return sel.DeleteMatching(ctx, f)
}
