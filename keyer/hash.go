package keyer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"reflect"
	"sync"
)

// keyFormat versions the key derivation; changing the encoding changes it,
// so old stored entries are never misread as new ones.
const keyFormat = "docket.key.v2"

// stackBuf is the size of the encoding buffer kept on the stack; with the
// 32-byte prefix, inputs of up to 23 encoded bytes hash in one SHA-256 block.
const stackBuf = 192

// prefix returns the digest of everything about a call but its input value:
// format, scope, step name, version and the input type's fingerprint. It is
// computed once per step, so a call hashes 32 bytes plus its input.
func prefix(step StepInfo, ti *typeInfo) [32]byte {
	var arr [128]byte
	b := appendString(arr[:0], keyFormat)
	b = appendString(b, step.Scope.String())
	b = appendString(b, step.Name)
	b = appendString(b, step.Version)
	b = append(b, ti.fp[:]...)
	return sha256.Sum256(b)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Check reports whether values of type t can be keyed at all: it returns an
// *UnkeyableError (matching ErrUnkeyable) when t holds a func, chan or unsafe
// pointer outside any interface. Values of a type that passes may still fail
// at run time (an interface holding a func, a cyclic value).
func Check(t reflect.Type) error {
	if t == nil {
		return nil
	}
	if ti := infoFor(t); ti.err != nil {
		return ti.err
	}
	return nil
}

// For computes sums for inputs of type T for one step. Make one per step
// with NewFor; it is safe for concurrent use.
//
// For every T, Sum(&in) equals Hash(step, in) (with in passed as any), so
// Default gives the same keys: for an interface type T that is the sum of
// the dynamic type and value in holds.
type For[T any] struct {
	step  StepInfo
	ti    *typeInfo
	pre   [32]byte
	iface bool
	// dynPre caches, for an interface T, the prefix of each dynamic type
	// seen (*typeInfo -> [32]byte), so a call hashes its input once and not
	// the step prefix as well.
	dynPre sync.Map
}

// NewFor compiles the key plan for T. It fails with an *UnkeyableError when
// T can never be keyed.
func NewFor[T any](step StepInfo) (*For[T], error) {
	t := reflect.TypeFor[T]()
	ti := infoFor(t)
	if ti.err != nil {
		return nil, ti.err
	}
	return &For[T]{step: step, ti: ti, pre: prefix(step, ti), iface: t.Kind() == reflect.Interface}, nil
}

// Sum returns the digest of *in for the step; in must not be nil. It
// allocates nothing for inputs of pure types (no maps, interfaces or types
// that define their own key) whose encoding fits in 160 bytes and that nest
// at most 32 pointers and slices deep; other inputs cost a copy and the
// allocations of the reflect walk.
func (f *For[T]) Sum(in *T) (Sum, error) {
	if f.iface {
		return hashValue(any(*in), f.dynPrefix)
	}
	var arr [stackBuf]byte
	buf := append(arr[:0], f.pre[:]...)
	var err error
	if f.ti.pure {
		var work int
		buf, err = encodePure(buf, reflect.ValueOf(in).Elem(), f.ti, 0, &work)
	}
	if !f.ti.pure || err != nil {
		// Not pure, or too deep or large for encodePure (maybe cyclic
		// or shared).
		if buf, err = f.full(buf[:len(f.pre)], *in); err != nil {
			return Sum{}, err
		}
	}
	return sha256.Sum256(buf), nil
}

// full takes a copy of the input: encodeFull calls Interface and interface
// methods, which may keep what they are given, so handing it a copy keeps
// the caller's value on its stack.
func (f *For[T]) full(buf []byte, in T) ([]byte, error) {
	return encodeTop(buf, reflect.ValueOf(&in).Elem(), f.ti)
}

// Key returns the key of a call with input in, in ctx: Sum plus the scope's
// rules (see Make).
func (f *For[T]) Key(ctx context.Context, in *T) (Key, error) {
	s, err := f.Sum(in)
	if err != nil {
		return Key{}, err
	}
	return Make(ctx, f.step, s)
}

// Hash returns the digest of v (of any keyable type) for step. Custom
// Keyers use it to build their digest from whatever identifies a call, such
// as a struct of a tenant ID and the input.
func Hash(step StepInfo, v any) (Sum, error) {
	return hashValue(v, func(ti *typeInfo) [32]byte { return prefix(step, ti) })
}

func (f *For[T]) dynPrefix(ti *typeInfo) [32]byte {
	if p, ok := f.dynPre.Load(ti); ok {
		return p.([32]byte)
	}
	p := prefix(f.step, ti)
	f.dynPre.Store(ti, p)
	return p
}

// hashValue is Hash with the step prefix of v's type given by pre.
func hashValue(v any, pre func(*typeInfo) [32]byte) (Sum, error) {
	var ti *typeInfo
	if v == nil {
		ti = infoFor(reflect.TypeFor[any]())
	} else {
		ti = infoFor(reflect.TypeOf(v))
	}
	if ti.err != nil {
		return Sum{}, ti.err
	}
	p := pre(ti)
	var arr [stackBuf]byte
	buf := append(arr[:0], p[:]...)
	if v == nil {
		buf = append(buf, 0)
	} else {
		var err error
		if buf, err = encodeTop(buf, reflect.ValueOf(v), ti); err != nil {
			return Sum{}, err
		}
	}
	return sha256.Sum256(buf), nil
}

// AppendCanonical appends the canonical encoding of v, the bytes that are
// hashed into keys (without the type fingerprint). It is exposed for tests
// and tools that compare encodings.
func AppendCanonical(dst []byte, v any) ([]byte, error) {
	if v == nil {
		return append(dst, 0), nil
	}
	ti := infoFor(reflect.TypeOf(v))
	if ti.err != nil {
		return dst, ti.err
	}
	return encodeTop(dst, reflect.ValueOf(v), ti)
}

// Default is the built-in key strategy as a Keyer (Global: step + version +
// input; Workflow: execution ID as well, over the canonical encoding of the
// input). It gives the same keys as the middleware's own typed path (For),
// which is what a step uses without WithKeyer; custom Keyers can wrap it.
var Default Keyer = Func(func(ctx context.Context, step StepInfo, in any) (Key, error) {
	s, err := Hash(step, in)
	if err != nil {
		return Key{}, err
	}
	return Make(ctx, step, s)
})
