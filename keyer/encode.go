package keyer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
// What a pointer points to, the elements of a slice (other than a byte
// slice) and the entries of a map form a body; a body, and each map entry,
// longer than inlineMax bytes is replaced by its SHA-256 digest (flag 2
// instead of 1). The digest is a function of the value alone, so sharing
// does not change the key, and it is what keeps keying linear: a map's
// entries are sorted as digests, not as copies of their subtrees, and a
// pointer, slice or map met again in the same input contributes the digest
// remembered from its first visit instead of being walked again.
//
// A walk builds no paths: an error collects the path parts of the frames it
// unwinds through. Below cycleDepth the fast walk tracks no values; a cycle
// it finds deeper is walked again in slow mode, which tracks every value on
// the path and so reports the cycle where it first closes.

// cycleDepth is how many nested pointers, slices and maps a walk follows
// before it starts tracking the values on its path, so ordinary inputs
// never pay for cycle detection.
const cycleDepth = 32

// inlineMax is the longest body or map entry written inline; a longer one
// is written as its digest. 32 bytes: a digest never makes an encoding
// longer by more than its flag.
const inlineMax = 32

// pureWork bounds the bytes the allocation-free walk (encodePure) handles;
// past it, the input is walked again by encodeFull, which remembers shared
// values instead of walking them again.
const pureWork = 8 << 10

// MaxDepth is the deepest nesting a key may have: pointers, slices, maps
// and interfaces nested more than MaxDepth deep are an *UnkeyableError,
// never a stack overflow. An interface holding a pointer, slice or map
// counts once with it, so any value encoding/json decodes (at most 10,000
// deep) can be keyed.
const MaxDepth = 10_000

// MaxSize is the most canonical encoding an input may need, in bytes: past
// it keying stops with an *UnkeyableError. A pointer, slice or map met twice
// in one input counts once; a string, byte slice or value in an interface
// counts at each occurrence.
const MaxSize = 16 << 20

// errCycle is what the fast walk returns for a cyclic value; the slow walk
// turns it into an *UnkeyableError with a path.
var errCycle = errors.New("keyer: cyclic value")

type visit struct {
	t   reflect.Type
	ptr uintptr
	n   int
}

// encState is the walk's state; it lives on the caller's stack and its maps
// are made only for deep values, shared values or in slow mode.
type encState struct {
	depth int
	slow  bool
	// root is set while the input itself, a pointer, slice or map, has not
	// been entered: nothing else can reach it (a cycle is an error), so its
	// digest is not remembered.
	root bool
	// work counts the bytes hashed into digests, for MaxSize.
	work    int
	visited map[visit]struct{}
	memo    map[visit]Sum
}

// enter records a pointer, slice or map on the walk's path (past
// cycleDepth, or always in slow mode); it reports false when the same one
// is already on it. The same address, type and length on one path is the
// same value, so walking on would never end.
func (st *encState) enter(k visit) bool {
	st.depth++
	if st.depth <= cycleDepth && !st.slow {
		return true
	}
	if st.visited == nil {
		st.visited = map[visit]struct{}{}
	}
	if _, ok := st.visited[k]; ok {
		return false
	}
	st.visited[k] = struct{}{}
	return true
}

func (st *encState) leave(k visit) {
	st.depth--
	if st.visited != nil {
		delete(st.visited, k)
	}
}

// walkError is an *UnkeyableError on its way up the walk: each frame it
// passes adds its part of the path (in reverse), so paths cost nothing until
// an error needs one.
type walkError struct {
	ue    UnkeyableError
	parts []string // innermost first
}

func (e *walkError) Error() string { return e.ue.Error() }

func newWalkError(t reflect.Type, reason string, err error) *walkError {
	return &walkError{ue: UnkeyableError{Type: t, Reason: reason, Err: err}}
}

// at adds a path part to err, if it is a walkError.
func at(err error, part string) error {
	if we, ok := err.(*walkError); ok {
		we.parts = append(we.parts, part)
	}
	return err
}

func atIndex(err error, i int) error {
	if _, ok := err.(*walkError); ok {
		return at(err, "["+strconv.Itoa(i)+"]")
	}
	return err
}

// maxPathParts is how many parts a reported path keeps; a deeper one keeps
// its first and last halves.
const maxPathParts = 200

// finish turns a walkError into the *UnkeyableError it reports, with its
// path rooted at root.
func (e *walkError) finish(root string) *UnkeyableError {
	parts := e.parts
	slices.Reverse(parts)
	var b strings.Builder
	b.WriteString(root)
	write := func(ps []string) {
		for _, p := range ps {
			if b.Len() == 0 && strings.HasPrefix(p, ".") && !strings.HasPrefix(p, ".(") {
				p = p[1:]
			}
			b.WriteString(p)
		}
	}
	if len(parts) > maxPathParts {
		write(parts[:maxPathParts/2])
		b.WriteString("…(" + strconv.Itoa(len(parts)-maxPathParts) + " more)…")
		write(parts[len(parts)-maxPathParts/2:])
	} else {
		write(parts)
	}
	ue := e.ue
	ue.Path = b.String()
	return &ue
}

func (st *encState) cycle(t reflect.Type) error {
	if !st.slow {
		return errCycle
	}
	return newWalkError(t, "cyclic value", nil)
}

func tooDeep(t reflect.Type) error {
	return newWalkError(t, "nested more than "+strconv.Itoa(MaxDepth)+" deep (keyer.MaxDepth)", nil)
}

func tooLarge(t reflect.Type) error {
	return newWalkError(t, "its encoding exceeds "+strconv.Itoa(MaxSize>>20)+" MiB (keyer.MaxSize)", nil)
}

func (st *encState) over(buf []byte) bool { return st.work+len(buf) > MaxSize }

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

// digestBody replaces the body that starts at buf[o] (after its flag at
// buf[o-1]) with its digest when it is longer than inlineMax; it returns the
// buffer, the digest and whether it made one.
func digestBody(buf []byte, o int) ([]byte, Sum, bool) {
	if len(buf)-o <= inlineMax {
		return buf, Sum{}, false
	}
	d := sha256.Sum256(buf[o:])
	buf[o-1] = 2
	return append(buf[:o], d[:]...), d, true
}

// errDeep is what encodePure returns for a value it leaves to encodeFull:
// nested deeper than cycleDepth (maybe cyclic), or more than pureWork bytes.
var errDeep = errors.New("keyer: deep value")

// encodePure encodes values of pure types exactly as encodeFull does. It
// never calls Value.Interface, an interface method or Value.Pointer (which
// forces an escape) with a value it walks, so escape analysis lets the
// caller keep the input (and buf) on its stack: a key costs no allocation.
// Since it cannot track pointers, it gives up with errDeep past cycleDepth
// nested pointers and slices, or past pureWork bytes (a value shared many
// times). It must not call encodeFull.
func encodePure(buf []byte, v reflect.Value, ti *typeInfo, depth int, work *int) ([]byte, error) {
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
			if buf, err = encodePure(buf, fv, f.info, depth, work); err != nil {
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
			if buf, err = encodePure(buf, v.Index(i), ti.elem, depth, work); err != nil {
				return buf, err
			}
			if *work+len(buf) > pureWork {
				return buf, errDeep
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		if depth++; depth > cycleDepth {
			return buf, errDeep
		}
		o := len(buf) + 1
		if buf, err = encodePure(append(buf, 1), v.Elem(), ti.elem, depth, work); err != nil {
			return buf, err
		}
		return pureDigest(buf, o, work)
	case reflect.Slice:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		buf = append(buf, 1)
		o := len(buf)
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
			if buf, err = encodePure(buf, v.Index(i), ti.elem, depth, work); err != nil {
				return buf, err
			}
			if *work+len(buf) > pureWork {
				return buf, errDeep
			}
		}
		return pureDigest(buf, o, work)
	default:
		buf, _ = encodeScalar(buf, v, ti.kind)
	}
	return buf, nil
}

func pureDigest(buf []byte, o int, work *int) ([]byte, error) {
	n := len(buf) - o
	buf, _, ok := digestBody(buf, o)
	if ok {
		if *work += n; *work+len(buf) > pureWork {
			return buf, errDeep
		}
	}
	return buf, nil
}

// encodeTop encodes v, of the type ti was compiled for, and turns an error
// into an *UnkeyableError with a path. A cycle found by the fast walk is
// walked again in slow mode, to report it where it first closes.
func encodeTop(buf []byte, v reflect.Value, ti *typeInfo) ([]byte, error) {
	if ti.err != nil {
		return buf, ti.err
	}
	st := encState{root: isRef(ti.kind)}
	out, err := encodeFull(buf, v, ti, &st)
	if err == nil {
		return out, nil
	}
	if err == errCycle {
		st = encState{slow: true, root: isRef(ti.kind)}
		if _, err = encodeFull(nil, v, ti, &st); err == nil {
			// The value changed meanwhile.
			return buf, &UnkeyableError{Path: rootName(ti.t), Type: ti.t, Reason: "cyclic value"}
		}
	}
	if we, ok := err.(*walkError); ok {
		return buf, we.finish(rootName(ti.t))
	}
	return buf, err
}

func isRef(k reflect.Kind) bool {
	return k == reflect.Pointer || k == reflect.Slice || k == reflect.Map
}

// encodeFull encodes any keyable value: it also handles maps, interfaces and
// the types that define their own key, remembers the digests of shared
// values and tracks the pointers, slices and maps on its path to find
// cycles. Values it is given may escape.
func encodeFull(buf []byte, v reflect.Value, ti *typeInfo, st *encState) ([]byte, error) {
	if st.over(buf) {
		return buf, tooLarge(ti.t)
	}
	if ti.special != specialNone {
		return encodeSpecial(buf, v, ti)
	}
	if b, ok := encodeScalar(buf, v, ti.kind); ok {
		return b, nil
	}
	var err error
	switch ti.kind {
	case reflect.Struct:
		for _, f := range ti.fields {
			if buf, err = encodeFull(buf, v.Field(f.index), f.info, st); err != nil {
				return buf, at(err, "."+f.name)
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
			if buf, err = encodeFull(buf, v.Index(i), ti.elem, st); err != nil {
				return buf, atIndex(err, i)
			}
		}
	case reflect.Pointer, reflect.Slice:
		// A nil flag, then the body (the pointee, or the length and
		// elements) inline or as a digest.
		if v.IsNil() {
			return append(buf, 0), nil
		}
		n := 0
		if ti.kind == reflect.Slice {
			n = v.Len()
			if ti.bytes {
				buf = binary.AppendUvarint(append(buf, 1), uint64(n))
				return append(buf, v.Bytes()...), nil
			}
			if n == 0 {
				return append(buf, 1, 0), nil
			}
		}
		r, d, seen, err := st.enterRef(v, ti, n)
		if err != nil {
			return buf, err
		}
		if seen {
			return append(append(buf, 2), d[:]...), nil
		}
		buf = append(buf, 1)
		o := len(buf)
		if ti.kind == reflect.Pointer {
			buf, err = encodeFull(buf, v.Elem(), ti.elem, st)
		} else {
			buf = binary.AppendUvarint(buf, uint64(n))
			for i := 0; i < n && err == nil; i++ {
				if buf, err = encodeFull(buf, v.Index(i), ti.elem, st); err != nil {
					err = atIndex(err, i)
				}
			}
		}
		if err != nil {
			st.leave(r.k)
			return buf, err
		}
		return st.leaveRef(r, buf, o, ti.t)
	case reflect.Map:
		return encodeMap(buf, v, ti, st)
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
		part := func() string { return ".(" + e.Type().String() + ")" }
		if dti.err != nil {
			// Report the path in this input, not the one the type was
			// compiled under.
			we := &walkError{ue: *dti.err}
			if p := trimRoot(dti.err.Path, dti.t); p != "" {
				if p[0] != '[' {
					p = "." + p
				}
				we.parts = append(we.parts, p)
			}
			return buf, at(we, part())
		}
		// A pointer, slice or map counts its own depth, and what cannot
		// hold another interface cannot nest.
		counted := dti.special == specialNone && (dti.kind == reflect.Struct || dti.kind == reflect.Array)
		if counted {
			if st.depth++; st.depth > MaxDepth {
				return buf, at(tooDeep(dti.t), part())
			}
		}
		buf, err = encodeFull(buf, e, dti, st)
		if counted {
			st.depth--
		}
		if err != nil {
			return buf, at(err, part())
		}
	}
	return buf, nil
}

// ref is the start of a pointer, slice or map in a walk.
type ref struct {
	k        visit
	remember bool
}

// enterRef begins a non-nil pointer, slice or map: it reports a digest
// remembered from an earlier visit, or enters it on the path.
func (st *encState) enterRef(v reflect.Value, ti *typeInfo, n int) (ref, Sum, bool, error) {
	r := ref{k: visit{ti.t, v.Pointer(), n}, remember: !st.root}
	st.root = false
	if st.memo != nil {
		if d, ok := st.memo[r.k]; ok {
			return r, d, true, nil
		}
	}
	if !st.enter(r.k) {
		st.depth--
		return r, Sum{}, false, st.cycle(ti.t)
	}
	if st.depth > MaxDepth {
		st.leave(r.k)
		return r, Sum{}, false, tooDeep(ti.t)
	}
	return r, Sum{}, false, nil
}

// leaveRef ends the body that starts at buf[o]: it leaves the path, and
// replaces a long body by its digest, which it remembers.
func (st *encState) leaveRef(r ref, buf []byte, o int, t reflect.Type) ([]byte, error) {
	st.leave(r.k)
	n := len(buf) - o
	buf, d, ok := digestBody(buf, o)
	if !ok {
		return buf, nil
	}
	if st.work += n; st.over(buf) {
		return buf, tooLarge(t)
	}
	if r.remember {
		if st.memo == nil {
			st.memo = map[visit]Sum{}
		}
		st.memo[r.k] = d
	}
	return buf, nil
}

// encodeSpecial encodes a value by the identity it defines: the instant of
// a time.Time, the name of a time.Location, or a nil flag and the
// length-prefixed bytes of its Keyable, proto or BinaryMarshaler method.
func encodeSpecial(buf []byte, v reflect.Value, ti *typeInfo) ([]byte, error) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return append(buf, 0), nil
	}
	if !v.CanInterface() {
		// Reached through an unexported field by way of an interface;
		// a static path is rejected by build already.
		return buf, newWalkError(ti.t, reasonUnexported, nil)
	}
	switch ti.special {
	case specialTime:
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
	case specialLocation:
		// The name: time.Local loads its rules lazily, so its fields differ
		// before and after. time.Local is "Local" whatever TZ names, as a
		// program that passes it means the zone of whatever process runs.
		var name string
		if v.CanAddr() {
			if l := v.Addr().Interface().(*time.Location); l == time.Local {
				name = "Local"
			} else {
				name = l.String()
			}
		} else {
			l := v.Interface().(time.Location)
			name = l.String()
		}
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		return append(buf, name...), nil
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
		return buf, newWalkError(ti.t, "its marshalling failed", err)
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

// encodeMap writes a nil flag and a body of the entry count and the entries
// sorted by their encoding. Each entry is a flag and its key and value, or
// their digest when longer than inlineMax, so sorting never copies a
// subtree and map iteration order never reaches the key.
func encodeMap(buf []byte, v reflect.Value, ti *typeInfo, st *encState) ([]byte, error) {
	if v.IsNil() {
		return append(buf, 0), nil
	}
	n := v.Len()
	if n == 0 {
		return append(buf, 1, 0), nil
	}
	r, d, seen, err := st.enterRef(v, ti, 0)
	if err != nil {
		return buf, err
	}
	if seen {
		return append(append(buf, 2), d[:]...), nil
	}
	buf = append(buf, 1)
	o := len(buf)
	buf = binary.AppendUvarint(buf, uint64(n))
	entries := make([]entry, 0, n)
	scratch := make([]byte, 0, 8*n)
	// The entries get their own state, copied back after: passed through
	// encodeEntry, it leaks, and st (on the caller's stack) must not.
	sub := *st
	iter := v.MapRange()
	// Set{Key,Value} reuse one Value for every entry where Key and Value
	// would allocate each; they refuse a map from an unexported field.
	reuse := v.CanInterface()
	var key, val reflect.Value
	if reuse {
		key, val = reflect.New(ti.key.t).Elem(), reflect.New(ti.elem.t).Elem()
	}
	for err == nil && iter.Next() {
		if reuse {
			key.SetIterKey(iter)
			val.SetIterValue(iter)
		} else {
			key, val = iter.Key(), iter.Value()
		}
		e := entry{start: len(scratch)}
		scratch = append(scratch, 1)
		if scratch, err = encodeEntry(scratch, key, ti.key, &sub); err != nil {
			err = at(err, "[key]")
			break
		}
		if scratch, err = encodeEntry(scratch, val, ti.elem, &sub); err != nil {
			err = at(err, "[]")
			break
		}
		m := len(scratch) - e.start - 1
		var ok bool
		if scratch, _, ok = digestBody(scratch, e.start+1); ok {
			if sub.work += m; sub.over(scratch) {
				err = tooLarge(ti.t)
			}
		}
		e.end = len(scratch)
		entries = append(entries, e)
	}
	*st = sub
	if err != nil {
		st.leave(r.k)
		return buf, err
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return bytes.Compare(scratch[a.start:a.end], scratch[b.start:b.end])
	})
	for _, e := range entries {
		buf = append(buf, scratch[e.start:e.end]...)
	}
	return st.leaveRef(r, buf, o, ti.t)
}

// encodeEntry is encodeFull, called through a variable. Escape analysis
// takes encodeFull called from encodeMap, inside the loop over entries, as
// leaking its buf to the heap, and through the recursion every caller's buf
// with it (For.Sum's stack buffer included); calling through a variable
// breaks that cycle and costs only the map's own scratch buffer.
var encodeEntry func(buf []byte, v reflect.Value, ti *typeInfo, st *encState) ([]byte, error)

func init() { encodeEntry = encodeFull }

// entry is a map entry encoded in a scratch buffer, at scratch[start:end].
type entry struct{ start, end int }
