package keyer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
)

// Encoding. Every type is encoded so that, given the type, the bytes are
// self-delimiting: strings and byte slices are length-prefixed, slices carry
// a nil flag and a length, pointers a nil flag, maps their sorted entries,
// interfaces the fingerprint of the dynamic type. Integers are varints and
// floats their IEEE bits (with -0 as +0 and one NaN), so equal inputs give
// equal bytes whatever the process, platform or Go version.
//
// A value is walked twice only when it fails: the fast walk builds no paths
// and, below cycleDepth, tracks no values; on any error the value is walked
// again in slow mode, which names the field path and finds a cycle where it
// first closes.

// cycleDepth is how many nested pointers, slices and maps a walk follows
// before it starts tracking the values on its path, so ordinary inputs
// never pay for cycle detection.
const cycleDepth = 32

// errCycle is what the fast walk returns for a cyclic value; the slow walk
// turns it into an *UnkeyableError with a path.
var errCycle = errors.New("keyer: cyclic value")

type visit struct {
	t   reflect.Type
	ptr uintptr
	n   int
}

// encState is the walk's state; it lives on the caller's stack and its map
// is made only for deep values (or in slow mode).
type encState struct {
	depth   int
	slow    bool
	visited map[visit]struct{}
}

// enter records a pointer, slice or map on the walk's path (past
// cycleDepth, or always in slow mode); it reports false when the same one
// is already on it. The same address, type and length on one path is the
// same value, so walking on would never end.
func (st *encState) enter(t reflect.Type, ptr uintptr, n int) bool {
	st.depth++
	if st.depth <= cycleDepth && !st.slow {
		return true
	}
	if st.visited == nil {
		st.visited = map[visit]struct{}{}
	}
	k := visit{t, ptr, n}
	if _, ok := st.visited[k]; ok {
		return false
	}
	st.visited[k] = struct{}{}
	return true
}

func (st *encState) leave(t reflect.Type, ptr uintptr, n int) {
	st.depth--
	if st.visited != nil {
		delete(st.visited, visit{t, ptr, n})
	}
}

// cycle is the error for a value met again on its own path.
func (st *encState) cycle(path string, t reflect.Type) error {
	if !st.slow {
		return errCycle
	}
	return &UnkeyableError{Path: path, Type: t, Reason: "cyclic value"}
}

// join and index extend a path in slow mode; the fast walk builds none.
func (st *encState) join(path, part string) string {
	if !st.slow {
		return ""
	}
	return join(path, part)
}

func (st *encState) index(path string, i int) string {
	if !st.slow {
		return ""
	}
	return path + "[" + strconv.Itoa(i) + "]"
}

func appendFloat64(buf []byte, f float64) []byte {
	switch {
	case f == 0:
		f = 0 // -0 == +0
	case f != f:
		return binary.LittleEndian.AppendUint64(buf, canonicalNaN)
	}
	return binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
}

func appendFloat32(buf []byte, f float64) []byte {
	switch {
	case f == 0:
		f = 0
	case f != f:
		return binary.LittleEndian.AppendUint32(buf, canonicalNaN2)
	}
	return binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(f)))
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// encodeScalar handles the kinds that need no recursion; ok is false for the
// others.
func encodeScalar(buf []byte, v reflect.Value, kind reflect.Kind) ([]byte, bool) {
	switch kind {
	case reflect.Bool:
		if v.Bool() {
			return append(buf, 1), true
		}
		return append(buf, 0), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(buf, v.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(buf, v.Uint()), true
	case reflect.Float32:
		return appendFloat32(buf, v.Float()), true
	case reflect.Float64:
		return appendFloat64(buf, v.Float()), true
	case reflect.Complex64:
		c := v.Complex()
		return appendFloat32(appendFloat32(buf, real(c)), imag(c)), true
	case reflect.Complex128:
		c := v.Complex()
		return appendFloat64(appendFloat64(buf, real(c)), imag(c)), true
	case reflect.String:
		s := v.String()
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		return append(buf, s...), true
	}
	return buf, false
}

// appendByteArray appends a [N]byte-like array (its length is in the type).
func appendByteArray(buf []byte, v reflect.Value) []byte {
	if v.CanAddr() {
		return append(buf, v.Bytes()...)
	}
	for i := 0; i < v.Len(); i++ {
		buf = append(buf, byte(v.Index(i).Uint()))
	}
	return buf
}

// errDeep is what encodePure returns for a value nested deeper than
// cycleDepth: the caller walks it again with encodeFull, which tracks the
// values on its path.
var errDeep = errors.New("keyer: deep value")

// encodePure encodes values of pure types exactly as encodeFull does. It
// never calls Value.Interface, an interface method or Value.Pointer (which
// forces an escape) with a value it walks, so escape analysis lets the
// caller keep the input (and buf) on its stack: a key costs no allocation.
// Since it cannot track pointers, it gives up with errDeep past cycleDepth
// nested pointers and slices. It must not call encodeFull.
func encodePure(buf []byte, v reflect.Value, ti *typeInfo, depth int) ([]byte, error) {
	var err error
	switch ti.kind {
	case reflect.Struct:
		for i := range ti.fields {
			f := &ti.fields[i]
			fv := v.Field(f.index)
			// Scalar fields, the most common, without a call.
			var ok bool
			if buf, ok = encodeScalar(buf, fv, f.info.kind); ok {
				continue
			}
			if buf, err = encodePure(buf, fv, f.info, depth); err != nil {
				return buf, err
			}
		}
	case reflect.Array:
		if ti.elem == nil {
			return buf, nil
		}
		if ti.bytes {
			return appendByteArray(buf, v), nil
		}
		for i := 0; i < v.Len(); i++ {
			if buf, err = encodePure(buf, v.Index(i), ti.elem, depth); err != nil {
				return buf, err
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		if depth++; depth > cycleDepth {
			return buf, errDeep
		}
		return encodePure(append(buf, 1), v.Elem(), ti.elem, depth)
	case reflect.Slice:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		buf = append(buf, 1)
		n := v.Len()
		buf = binary.AppendUvarint(buf, uint64(n))
		if ti.bytes {
			return append(buf, v.Bytes()...), nil
		}
		if n == 0 {
			return buf, nil
		}
		if depth++; depth > cycleDepth {
			return buf, errDeep
		}
		for i := 0; i < n; i++ {
			if buf, err = encodePure(buf, v.Index(i), ti.elem, depth); err != nil {
				return buf, err
			}
		}
	default:
		buf, _ = encodeScalar(buf, v, ti.kind)
	}
	return buf, nil
}

// encodeTop encodes v, of the type ti was compiled for, with the fast walk
// and, if that fails, walks again to report where.
func encodeTop(buf []byte, v reflect.Value, ti *typeInfo) ([]byte, error) {
	var st encState
	out, err := encodeFull(buf, v, ti, &st, "")
	if err == nil {
		return out, nil
	}
	return buf, slowError(v, ti, err)
}

// slowError walks v again in slow mode for the error to report; fastErr is
// kept if the second walk unexpectedly succeeds (a value changed meanwhile
// or a marshaller that fails only sometimes).
func slowError(v reflect.Value, ti *typeInfo, fastErr error) error {
	st := encState{slow: true}
	if _, err := encodeFull(nil, v, ti, &st, rootName(ti.t)); err != nil {
		return err
	}
	if fastErr == errCycle {
		return &UnkeyableError{Path: rootName(ti.t), Type: ti.t, Reason: "cyclic value"}
	}
	return fastErr
}

// encodeFull encodes any keyable value: it also handles maps, interfaces and
// the types that define their own key, and tracks the pointers, slices and
// maps on its path to find cycles. Values it is given may escape. path is
// only built in slow mode.
func encodeFull(buf []byte, v reflect.Value, ti *typeInfo, st *encState, path string) ([]byte, error) {
	if ti.err != nil {
		return buf, ti.err
	}
	if ti.special != specialNone {
		return encodeSpecial(buf, v, ti, path)
	}
	if b, ok := encodeScalar(buf, v, ti.kind); ok {
		return b, nil
	}
	var err error
	switch ti.kind {
	case reflect.Struct:
		for _, f := range ti.fields {
			if buf, err = encodeFull(buf, v.Field(f.index), f.info, st, st.join(path, f.name)); err != nil {
				return buf, err
			}
		}
	case reflect.Array:
		if ti.elem == nil {
			return buf, nil
		}
		if ti.bytes {
			return appendByteArray(buf, v), nil
		}
		for i := 0; i < v.Len(); i++ {
			if buf, err = encodeFull(buf, v.Index(i), ti.elem, st, st.index(path, i)); err != nil {
				return buf, err
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		buf = append(buf, 1)
		p := v.Pointer()
		if !st.enter(ti.t, p, 0) {
			return buf, st.cycle(path, ti.t)
		}
		buf, err = encodeFull(buf, v.Elem(), ti.elem, st, path)
		st.leave(ti.t, p, 0)
	case reflect.Slice:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		buf = append(buf, 1)
		n := v.Len()
		buf = binary.AppendUvarint(buf, uint64(n))
		if ti.bytes {
			return append(buf, v.Bytes()...), nil
		}
		if n == 0 {
			return buf, nil
		}
		p := v.Pointer()
		if !st.enter(ti.t, p, n) {
			return buf, st.cycle(path, ti.t)
		}
		for i := 0; i < n && err == nil; i++ {
			buf, err = encodeFull(buf, v.Index(i), ti.elem, st, st.index(path, i))
		}
		st.leave(ti.t, p, n)
	case reflect.Map:
		return encodeMap(buf, v, ti, st, path)
	case reflect.Interface:
		// No cycle tracking here: an interface holds a copy, so a cycle
		// must pass through a pointer, slice or map, which are tracked.
		if v.IsNil() {
			return append(buf, 0), nil
		}
		buf = append(buf, 1)
		e := v.Elem()
		dti := infoFor(e.Type())
		buf = append(buf, dti.fp[:]...)
		dpath := ""
		if st.slow {
			dpath = path + ".(" + e.Type().String() + ")"
		}
		if dti.err != nil {
			if !st.slow {
				return buf, dti.err
			}
			// Report the path in this input, not the one the type was
			// compiled under.
			ue := *dti.err
			ue.Path = join(dpath, trimRoot(dti.err.Path, dti.t))
			return buf, &ue
		}
		return encodeFull(buf, e, dti, st, dpath)
	}
	return buf, err
}

// encodeSpecial encodes a value by the identity it defines: the instant of
// a time.Time, or a nil flag and the length-prefixed bytes of its Keyable,
// proto or BinaryMarshaler method.
func encodeSpecial(buf []byte, v reflect.Value, ti *typeInfo, path string) ([]byte, error) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return append(buf, 0), nil
	}
	if !v.CanInterface() {
		// Reached through an unexported field by way of an interface;
		// a static path is rejected by build already.
		return buf, &UnkeyableError{Path: path, Type: ti.t, Reason: reasonUnexported}
	}
	if ti.special == specialTime {
		// The instant, not the location or monotonic reading: equal instants
		// (Time.Equal) give equal keys. Seconds and nanoseconds separately
		// so that years outside UnixNano's range still differ.
		var t time.Time
		if v.CanAddr() {
			t = *v.Addr().Interface().(*time.Time)
		} else {
			t = v.Interface().(time.Time)
		}
		buf = binary.AppendVarint(buf, t.Unix())
		return binary.AppendUvarint(buf, uint64(t.Nanosecond())), nil
	}
	buf = append(buf, 1)
	var b []byte
	var err error
	switch x := v.Interface(); ti.special {
	case specialKeyable:
		b = x.(Keyable).AppendKey(nil)
	case specialProto:
		b, err = proto.MarshalOptions{Deterministic: true}.Marshal(x.(proto.Message))
	default:
		b, err = x.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	}
	if err != nil {
		return buf, &UnkeyableError{Path: path, Type: ti.t, Reason: "its marshalling failed", Err: err}
	}
	return appendBytes(buf, b), nil
}

// trimRoot strips the type-name root from a compiled path.
func trimRoot(p string, t reflect.Type) string {
	r := rootName(t)
	if r == "" || len(p) < len(r) || p[:len(r)] != r {
		return p
	}
	p = p[len(r):]
	if len(p) > 0 && p[0] == '.' {
		p = p[1:]
	}
	return p
}

// encodeMap writes the entries sorted by their encoded key (then value, for
// the NaN keys a map can hold more than once), so map iteration order never
// reaches the key. Entries are encoded into one scratch buffer and referred
// to by offsets.
func encodeMap(buf []byte, v reflect.Value, ti *typeInfo, st *encState, path string) ([]byte, error) {
	if v.IsNil() {
		return append(buf, 0), nil
	}
	buf = append(buf, 1)
	n := v.Len()
	buf = binary.AppendUvarint(buf, uint64(n))
	if n == 0 {
		return buf, nil
	}
	p := v.Pointer()
	if !st.enter(ti.t, p, 0) {
		return buf, st.cycle(path, ti.t)
	}
	defer st.leave(ti.t, p, 0)
	entries := make([]entry, 0, n)
	var scratch []byte
	var kpath, vpath string
	if st.slow {
		kpath, vpath = path+"[key]", path+"[]"
	}
	// The entries get their own state, shared with st's cycle tracking:
	// passed through encodeEntry, it leaks, and st (on the caller's stack)
	// must not.
	sub := *st
	defer func() { st.visited = sub.visited }()
	iter := v.MapRange()
	// Set{Key,Value} reuse one Value for every entry where Key and Value
	// would allocate each; they refuse a map from an unexported field.
	reuse := v.CanInterface()
	var key, val reflect.Value
	if reuse {
		key, val = reflect.New(ti.key.t).Elem(), reflect.New(ti.elem.t).Elem()
	}
	var err error
	for iter.Next() {
		if reuse {
			key.SetIterKey(iter)
			val.SetIterValue(iter)
		} else {
			key, val = iter.Key(), iter.Value()
		}
		e := entry{k: len(scratch)}
		if scratch, err = encodeEntry(scratch, key, ti.key, &sub, kpath); err != nil {
			return buf, err
		}
		e.kv = len(scratch)
		if scratch, err = encodeEntry(scratch, val, ti.elem, &sub, vpath); err != nil {
			return buf, err
		}
		e.end = len(scratch)
		entries = append(entries, e)
	}
	enc := sortEntries(entries, scratch)
	for _, e := range entries {
		buf = append(buf, enc[e.k:e.end]...)
	}
	return buf, nil
}

// encodeEntry is encodeFull, called through a variable. Escape analysis
// takes encodeFull called from encodeMap, inside the loop over entries, as
// leaking its buf to the heap, and through the recursion every caller's buf
// with it (For.Sum's stack buffer included); calling through a variable
// breaks that cycle and costs only the map's own scratch buffer.
var encodeEntry func(buf []byte, v reflect.Value, ti *typeInfo, st *encState, path string) ([]byte, error)

func init() { encodeEntry = encodeFull }

// entry is a map entry encoded in a scratch buffer: its key is
// scratch[k:kv], its value scratch[kv:end].
type entry struct{ k, kv, end int }

// sortEntries sorts entries by key, then value, and returns the buffer they
// refer to.
func sortEntries(entries []entry, scratch []byte) []byte {
	slices.SortFunc(entries, func(a, b entry) int {
		if c := bytes.Compare(scratch[a.k:a.kv], scratch[b.k:b.kv]); c != 0 {
			return c
		}
		return bytes.Compare(scratch[a.kv:a.end], scratch[b.kv:b.end])
	})
	return scratch
}
