package keyer

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/docket-go/docket/scope"
)

// Sum is the SHA-256 digest that identifies a call: it covers the scope, step
// name, step version, the input's type fingerprint and its canonical encoding.
type Sum [32]byte

// Key identifies one stored result. Two calls share a result exactly when
// their keys are equal (==). Key is comparable and cheap to copy; stores use
// it, or its binary form, as their map or database key.
type Key struct {
	// Scope is the scope the key was made for.
	Scope scope.Scope
	// Execution is the execution ID for Workflow keys and empty for Global
	// ones. It is kept outside Sum so that a store can find and remove all
	// entries of one execution.
	Execution string
	// Step is the step name, kept for display (String); Sum covers it.
	Step string
	// Sum is the digest of everything else that identifies the call.
	Sum Sum
}

// String returns a readable, unique form of the key, such as
// "workflow/exec_12345/fetch_user/a1b2c3…" (full hex digest). It is stable
// across processes, so it serves as an idempotency key for external systems.
func (k Key) String() string {
	b := make([]byte, 0, 16+len(k.Execution)+len(k.Step)+2*len(k.Sum))
	b = append(b, k.Scope.String()...)
	b = append(b, '/')
	if k.Scope == scope.Workflow {
		b = append(b, k.Execution...)
		b = append(b, '/')
	}
	b = append(b, k.Step...)
	b = append(b, '/')
	b = hex.AppendEncode(b, k.Sum[:])
	return string(b)
}

// AppendBinary appends the key's binary form, for byte-keyed stores: one tag
// byte, then for Workflow keys the length-delimited execution ID, then Sum.
// Every Workflow key of one execution starts with
// AppendExecutionPrefix(nil, id), and no other key does.
func (k Key) AppendBinary(dst []byte) ([]byte, error) {
	switch k.Scope {
	case scope.Global:
		dst = append(dst, 'g')
	case scope.Workflow:
		dst = AppendExecutionPrefix(dst, k.Execution)
	default:
		return dst, fmt.Errorf("%w: invalid scope %d", ErrInvalidKey, k.Scope)
	}
	return append(dst, k.Sum[:]...), nil
}

// AppendExecutionPrefix appends the prefix that every binary Workflow key of
// the execution starts with.
func AppendExecutionPrefix(dst []byte, executionID string) []byte {
	dst = append(dst, 'w')
	dst = binary.AppendUvarint(dst, uint64(len(executionID)))
	return append(dst, executionID...)
}

// ParseBinary parses the binary form made by AppendBinary, and nothing else:
// for every b it accepts, AppendBinary of the result gives b again. The Step
// field of the result is empty: the binary form does not carry it.
func ParseBinary(b []byte) (Key, error) {
	if len(b) == 0 {
		return Key{}, fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	var k Key
	rest := b[1:]
	switch b[0] {
	case 'g':
		k.Scope = scope.Global
	case 'w':
		k.Scope = scope.Workflow
		n, w := binary.Uvarint(rest)
		// The length must be in its shortest form, as AppendBinary writes
		// it: one key has one binary form, which byte-keyed stores rely on
		// when they look up or scan by prefix.
		var tmp [binary.MaxVarintLen64]byte
		if w <= 0 || binary.PutUvarint(tmp[:], n) != w || uint64(len(rest)-w) < n {
			return Key{}, fmt.Errorf("%w: bad execution length", ErrInvalidKey)
		}
		k.Execution = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	default:
		return Key{}, fmt.Errorf("%w: unknown tag %q", ErrInvalidKey, b[0])
	}
	if len(rest) != len(k.Sum) {
		return Key{}, fmt.Errorf("%w: digest is %d bytes", ErrInvalidKey, len(rest))
	}
	copy(k.Sum[:], rest)
	return k, nil
}

// StepInfo describes the step a key is made for.
type StepInfo struct {
	// Name is the step name given to Wrap or Persist.
	Name string
	// Version is the step's code version (middleware.WithVersion); changing
	// it gives every input a new key.
	Version string
	// Scope is the step's persistence scope.
	Scope scope.Scope
}

// Keyer is a key strategy. The middleware calls it once per call, before
// anything else; an error fails the call and the step does not run.
//
// A Keyer must be deterministic: the key fully describes the result, so it
// must not depend on the current time or on anything but ctx and in. Use
// [Make] to turn a digest into a Key that honours the scope.
//
// The digest (Key.Sum) must cover the step: its name, version and scope.
// Stores find an entry by its scope, execution ID and Sum alone and ignore
// Key.Step, so a Keyer whose digest leaves the step out makes two steps with
// equal inputs share one entry, and one gets the other's result. [Hash]
// covers it: build the digest with Hash(step, ...), as [Default] does.
type Keyer interface {
	Key(ctx context.Context, step StepInfo, in any) (Key, error)
}

// Func adapts a function to the Keyer interface.
type Func func(ctx context.Context, step StepInfo, in any) (Key, error)

// Key calls f.
func (f Func) Key(ctx context.Context, step StepInfo, in any) (Key, error) { return f(ctx, step, in) }

// Make returns the key of a call of step in ctx with the given digest: for
// Workflow scope it adds the execution ID from ctx and fails with an error
// wrapping scope.ErrNoExecution when there is none.
func Make(ctx context.Context, step StepInfo, sum Sum) (Key, error) {
	k := Key{Scope: step.Scope, Step: step.Name, Sum: sum}
	switch step.Scope {
	case scope.Global:
	case scope.Workflow:
		id, ok := scope.ExecutionID(ctx)
		if !ok {
			return Key{}, fmt.Errorf("step %q: %w", step.Name, scope.ErrNoExecution)
		}
		k.Execution = id
	default:
		return Key{}, fmt.Errorf("%w: step %q has invalid scope %d", ErrInvalidKey, step.Name, step.Scope)
	}
	return k, nil
}
