package backends

import (
	"context"
	"errors"
	"time"

	"github.com/docket-go/docket/keyer"
)

// Sentinel errors of stores; compare with errors.Is.
var (
	// ErrNotFound means the store has no live entry for the key. A Get of an
	// expired entry returns an error that is both ErrNotFound and ErrExpired.
	ErrNotFound = errors.New("backends: entry not found")
	// ErrExpired means the entry's TTL has passed; it is also ErrNotFound.
	ErrExpired = expiredError{}
	// ErrCorrupt means a stored entry could not be read back (truncated,
	// unknown format, undecodable). The middleware treats it as a miss and
	// overwrites the entry.
	ErrCorrupt = errors.New("backends: corrupt entry")
	// ErrClosed is returned by every operation on a closed store.
	ErrClosed = errors.New("backends: store closed")
)

type expiredError struct{}

func (expiredError) Error() string        { return "backends: entry expired" }
func (expiredError) Is(target error) bool { return target == ErrNotFound }

// Entry is one stored result.
type Entry struct {
	// Value is the step's decoded result. Front tiers keep it as is, so every
	// hit returns the same value: results are shared and must be treated as
	// immutable.
	Value any
	// Created is when the result was produced.
	Created time.Time
	// Expires is when the entry stops being served; the zero time means never.
	Expires time.Time
	// Execution is the ID of the execution that produced the result, if any
	// (provenance; also set for Global entries).
	Execution string
	// Origin identifies the run that produced the result, in a form chosen
	// by the middleware's observer (tracing stores the trace and span IDs),
	// so that a later hit can point at it. Nil when nobody records it.
	// Like Value, front tiers share it between callers: never modify it.
	Origin []byte
	// Version is the code version of the step that produced the result
	// (middleware.WithVersion), kept for provenance and for stores that
	// make it queryable; the key already covers it. Empty when unversioned.
	Version string
	// Step is the name of the step that produced the result (the key's
	// Step), so that tools can list entries by step: a Set with an empty
	// Step records key.Step in its place.
	Step string
	// Tier is set by Get to the name of the tier that answered.
	Tier string
	// Failure, when not nil, makes the entry a stored failure of the step
	// (middleware.WithErrorCaching) instead of a result; Value is then nil
	// and is not encoded.
	Failure *Failure
}

// Failure is a step's error as an entry stores it.
type Failure struct {
	// Code is what the step's error classifier named the error
	// ("not_found", "invalid"); Message is the error's text.
	Code, Message string
	// Err is the original error. Tiers that keep decoded values keep it,
	// so that callers can match it with errors.Is; byte tiers store Code
	// and Message only, and read Err back as nil.
	Err error
}

// Codec turns one step's results into bytes and back. Byte tiers use it to
// encode on Set and decode on Get; front tiers, which keep decoded values,
// ignore it. The middleware passes a codec bound to the step's result type.
type Codec interface {
	// ID names the encoding in each stored entry's header, so that bytes
	// written with one codec are never decoded with another.
	ID() uint8
	Encode(v any) ([]byte, error)
	Decode(data []byte) (any, error)
}

// Store keeps entries by key. A durable store is best built as a
// [ByteStore] turned into a Store by [NewByteTier], which does everything
// below but keep bytes; backends/storetest checks every duty.
//
// Duties of an implementation:
//
//   - Comparable: a Store is used as a map key (scope.Purger), so its
//     dynamic type must be comparable; make it a pointer.
//   - Safe for concurrent use, and race-free under the race detector.
//   - Get returns the entry stored under key, with Tier set to the name of
//     the tier that answered, or an error wrapping ErrNotFound when there is
//     none. An entry past its Expires is never returned: Get reports it as
//     ErrNotFound (ErrExpired, which is also ErrNotFound, when the store
//     still held it). An entry that cannot be read
//     back (damaged, another format version, another codec, undecodable) is
//     an error wrapping ErrCorrupt, and not ErrNotFound; the middleware then
//     runs the step and overwrites it. Any other error is a store fault,
//     which the middleware by default treats as a miss.
//   - Set stores e under key, replacing any entry there, and keeps
//     Created, Expires, Execution, Origin, Version and Step as given (an
//     empty Step as key.Step). A byte tier
//     encodes Value with c and must give back exactly what c decodes; a
//     front tier keeps Value as is (shared by every caller) and ignores c.
//     Empty values and values of many MiB are stored like any other.
//   - Expired entries do not accumulate: a store removes them (native TTL,
//     a sweep), not only hides them.
//   - Delete removes the entry under key; a missing key is not an error.
//   - PurgeExecution removes every Workflow entry of one execution (keys
//     with Scope scope.Workflow and that Execution) and nothing else, Global
//     entries included, and returns how many it removed. If ctx ends midway,
//     it returns the count removed so far and ctx's error.
//   - A key that is not valid (keyer.ErrInvalidKey) is an error, never a
//     panic. A cancelled ctx gives ctx.Err() without touching the store.
//   - A store with a Close method returns an error wrapping ErrClosed from
//     every method after Close (and on its zero value), and never reaches
//     a closed database.
//   - Name names the tier for reports ("memory", "badger", ...).
//   - Optionally, scope.Retainer: RetainExecution moves the expiry of the
//     Workflow entries PurgeExecution would remove to until, leaving an
//     entry's own where it is earlier, and touches nothing else; the
//     entries are served until then and are expired entries afterwards.
//     A [ByteTier] has it when its ByteStore is a [ByteRetainer].
//
// A front tier that keeps decoded values implements [Encoder] and reports
// false, so that Wrap accepts result types no codec carries.
type Store interface {
	Get(ctx context.Context, key keyer.Key, c Codec) (Entry, error)
	Set(ctx context.Context, key keyer.Key, e Entry, c Codec) error
	Delete(ctx context.Context, key keyer.Key) error
	PurgeExecution(ctx context.Context, executionID string) (int, error)
	Name() string
}

// Layered is implemented by stores made of tiers, such as the one Tiered
// returns. The middleware looks in Front before it joins an in-flight call,
// and in the whole store only inside the flight, so that concurrent misses
// read the back tier once.
type Layered interface {
	Store
	Front() Store
}
