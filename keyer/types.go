package keyer

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// ErrUnkeyable is the sentinel of every UnkeyableError; compare with errors.Is.
var ErrUnkeyable = errors.New("keyer: unkeyable input")

// UnkeyableError reports an input that cannot be turned into a key: a func,
// chan or unsafe pointer anywhere in it, a cyclic value, or a value that
// defines its own identity but cannot be reached (an unexported field).
type UnkeyableError struct {
	// Path is where the value sits, rooted at the input's type name: found
	// from the type, "Query.Callback" or "Query.Items[].F"; found in a
	// value, with indexes and the dynamic types of interfaces,
	// "Query.Items[3].F", "Holder.V.(func())" or "Node.Next.Next" (where a
	// cycle closes). Map keys and values are "[key]" and "[]".
	Path string
	// Type is the type that cannot be keyed.
	Type reflect.Type
	// Reason says why, when it is not the type's kind.
	Reason string
	// Err is the error of a Keyable, BinaryMarshaler or proto message that
	// failed to give its bytes, if any.
	Err error
}

func (e *UnkeyableError) Error() string {
	what := "value"
	if e.Path != "" {
		what = "field " + e.Path
	}
	msg := fmt.Sprintf("keyer: cannot key %s of type %s", what, typeString(e.Type))
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes every UnkeyableError match ErrUnkeyable.
func (e *UnkeyableError) Is(target error) bool { return target == ErrUnkeyable }

// Unwrap returns the marshalling error, if any.
func (e *UnkeyableError) Unwrap() error { return e.Err }

func typeString(t reflect.Type) string {
	if t == nil {
		return "<nil>"
	}
	return t.String()
}

// Keyable is implemented by types that define their own identity: AppendKey
// appends bytes that are equal for equal values and differ for different
// ones. The keyer uses them instead of walking the value's fields. It must be
// deterministic across processes.
type Keyable interface {
	AppendKey(dst []byte) []byte
}

var (
	keyableType   = reflect.TypeFor[Keyable]()
	binMarshType  = reflect.TypeFor[encoding.BinaryMarshaler]()
	protoMsgType  = reflect.TypeFor[proto.Message]()
	timeType      = reflect.TypeFor[time.Time]()
	locationType  = reflect.TypeFor[time.Location]()
	canonicalNaN  = uint64(0x7ff8000000000000)
	canonicalNaN2 = uint32(0x7fc00000)
)

type special uint8

const (
	specialNone special = iota
	specialKeyable
	specialProto
	specialTime
	specialBinary
	specialLocation
)

// specialOf says whether values of t are keyed by their own identity rather
// than by walking their fields. Interface types never are: an interface
// value is keyed by its dynamic type and value, so that two message types
// with the same wire bytes (say wrapperspb.StringValue and BytesValue) never
// share a key.
func specialOf(t reflect.Type) special {
	if t.Kind() == reflect.Pointer && specialDirect(t.Elem()) != specialNone {
		// *time.Time and the like: nil flag plus the value's own key, so a
		// pointer never changes how the value is keyed.
		return specialNone
	}
	return specialDirect(t)
}

func specialDirect(t reflect.Type) special {
	switch {
	case t.Kind() == reflect.Interface:
		return specialNone
	case t == timeType:
		return specialTime
	case t == locationType:
		return specialLocation
	case t.Implements(keyableType) && !promoted(t, "AppendKey"):
		return specialKeyable
	case t.Implements(protoMsgType) && !promoted(t, "ProtoReflect"):
		return specialProto
	case t.Implements(binMarshType) && !promoted(t, "MarshalBinary"):
		return specialBinary
	}
	return specialNone
}

// promoted reports whether a struct (or pointer to struct) t may have method
// name from an embedded field. Such a method describes only the embedded
// field — a struct embedding time.Time has time's MarshalBinary — so using
// it would silently drop the struct's other fields. reflect cannot tell a
// promoted method from one declared on t itself, so either way t is walked
// field by field: that keys by more than a custom method might, never less.
func promoted(t reflect.Type, name string) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.Anonymous {
			continue
		}
		if _, ok := f.Type.MethodByName(name); ok {
			return true
		}
		if k := f.Type.Kind(); k != reflect.Interface && k != reflect.Pointer {
			if _, ok := reflect.PointerTo(f.Type).MethodByName(name); ok {
				return true
			}
		}
	}
	return false
}

// typeInfo is the compiled plan for encoding one type. It is built once per
// type and never changes, so it is shared without locks.
type typeInfo struct {
	t       reflect.Type
	kind    reflect.Kind
	special special
	elem    *typeInfo // pointer, slice, array (nil when of length 0), map value
	key     *typeInfo // map key
	fields  []fieldInfo
	// pure types are encoded without ever calling Value.Interface, which keeps
	// the caller's value on its stack (see For.Sum).
	pure bool
	// bytes marks []byte-like slices and arrays, encoded in one append.
	bytes bool
	// fp identifies the type's name and shape: it is hashed into every key,
	// and into the encoding of interface values. Only set on the root plan
	// that infoFor returns.
	fp [16]byte
	// err is set when the type can never be keyed.
	err *UnkeyableError
}

type fieldInfo struct {
	name  string
	index int
	info  *typeInfo
}

var typeCache sync.Map // reflect.Type -> *typeInfo

// infoFor returns the compiled plan for t, building it once.
func infoFor(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	b := builder{seen: map[buildKey]*typeInfo{}}
	ti := b.build(t, rootName(t), false)
	b.finish()
	ti.fp = fingerprint(t)
	actual, _ := typeCache.LoadOrStore(t, ti)
	return actual.(*typeInfo)
}

func rootName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		t = t.Elem()
	}
	return t.Name()
}

// buildKey tells apart a type reached through exported fields only from the
// same type reached through an unexported one, where its own key methods
// cannot be called: struct{ A, b time.Time } is unkeyable whatever the order
// of its fields.
type buildKey struct {
	t          reflect.Type
	unexported bool
}

type builder struct {
	seen map[buildKey]*typeInfo
	all  []*typeInfo
}

// join appends a field name (or any path part) to a path.
func join(path, part string) string {
	switch {
	case part == "":
		return path
	case path == "":
		return part
	}
	return path + "." + part
}

// reasonUnexported explains why a value that defines its own key cannot be
// keyed in an unexported field: reflect cannot call its methods there, and
// walking its fields instead would key it by its representation (a
// time.Time's location and monotonic reading).
const reasonUnexported = "it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field"

// build compiles t. path names where t sits, for errors; unexported says
// whether t was reached through an unexported field, where methods cannot be
// called.
func (b *builder) build(t reflect.Type, path string, unexported bool) *typeInfo {
	bk := buildKey{t, unexported}
	if ti, ok := b.seen[bk]; ok {
		return ti
	}
	ti := &typeInfo{t: t, kind: t.Kind()}
	b.seen[bk] = ti
	b.all = append(b.all, ti)
	fail := func(reason string) *typeInfo {
		ti.err = &UnkeyableError{Path: path, Type: t, Reason: reason}
		return ti
	}
	ti.special = specialOf(t)
	if ti.special != specialNone {
		if unexported {
			return fail(reasonUnexported)
		}
		return ti
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		reflect.PointerTo(t).Implements(protoMsgType) && !promoted(t, "ProtoReflect") {
		return fail("protobuf messages must be passed by pointer")
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return fail("")
	case reflect.Pointer:
		ti.elem = b.build(t.Elem(), path, unexported)
	case reflect.Array:
		// A zero-length array holds no value, so its element type cannot
		// make it unkeyable: struct{ _ [0]func() } (the "not comparable"
		// marker) is fine.
		if t.Len() == 0 {
			return ti
		}
		ti.elem = b.build(t.Elem(), path+"[]", unexported)
		ti.bytes = t.Elem().Kind() == reflect.Uint8 && ti.elem.special == specialNone
	case reflect.Slice:
		ti.elem = b.build(t.Elem(), path+"[]", unexported)
		ti.bytes = t.Elem().Kind() == reflect.Uint8 && ti.elem.special == specialNone
	case reflect.Map:
		ti.key = b.build(t.Key(), path+"[key]", unexported)
		ti.elem = b.build(t.Elem(), path+"[]", unexported)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			ti.fields = append(ti.fields, fieldInfo{
				name:  f.Name,
				index: i,
				info:  b.build(f.Type, join(path, f.Name), unexported || !f.IsExported()),
			})
		}
	case reflect.Interface:
		// The dynamic type is looked at on each call.
	default:
		return fail("unsupported kind " + t.Kind().String())
	}
	return ti
}

// finish propagates errors and impurity through the (possibly cyclic) type
// graph until nothing changes.
func (b *builder) finish() {
	for _, ti := range b.all {
		ti.pure = ti.err == nil && ti.special == specialNone &&
			ti.kind != reflect.Map && ti.kind != reflect.Interface
	}
	for changed := true; changed; {
		changed = false
		for _, ti := range b.all {
			for _, c := range ti.children() {
				if ti.err == nil && c.err != nil {
					ti.err = c.err
					changed = true
				}
				if ti.pure && !c.pure {
					ti.pure = false
					changed = true
				}
			}
		}
	}
}

func (ti *typeInfo) children() []*typeInfo {
	if ti.special != specialNone {
		return nil
	}
	var out []*typeInfo
	if ti.elem != nil {
		out = append(out, ti.elem)
	}
	if ti.key != nil {
		out = append(out, ti.key)
	}
	for _, f := range ti.fields {
		out = append(out, f.info)
	}
	return out
}

// fingerprint hashes the type's full name and shape: kind names, package
// paths, type names, array lengths; field names, their package paths
// (unexported names of two packages differ), tags and whether they are
// embedded; interface method names, package paths and signatures; element
// types, with back references for recursive types. It uses names, never
// reflect.Kind numbers, so it is the same in every Go version. Two types
// with one name in one package path (types local to two functions) share a
// fingerprint.
func fingerprint(t reflect.Type) [16]byte {
	var d []byte
	ids := map[reflect.Type]int{}
	str := func(s string) {
		d = binary.AppendUvarint(d, uint64(len(s)))
		d = append(d, s...)
	}
	num := func(n int) { d = binary.AppendUvarint(d, uint64(n)) }
	header := func(t reflect.Type) {
		str(t.Kind().String())
		str(t.PkgPath())
		str(t.Name())
	}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		if id, ok := ids[t]; ok {
			str("ref")
			num(id)
			return
		}
		ids[t] = len(ids)
		header(t)
		sp := specialOf(t)
		d = append(d, byte(sp))
		if sp != specialNone {
			// Its fields are not walked, but its name is part of it: an
			// unnamed *pb.Msg is named by its element type.
			if t.Kind() == reflect.Pointer {
				header(t.Elem())
			}
			return
		}
		switch t.Kind() {
		case reflect.Array:
			num(t.Len())
			walk(t.Elem())
		case reflect.Pointer, reflect.Slice:
			walk(t.Elem())
		case reflect.Chan:
			str(t.ChanDir().String())
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			num(t.NumField())
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				str(f.Name)
				str(f.PkgPath)
				str(string(f.Tag))
				if f.Anonymous {
					d = append(d, 1)
				} else {
					d = append(d, 0)
				}
				walk(f.Type)
			}
		case reflect.Interface:
			num(t.NumMethod())
			for i := 0; i < t.NumMethod(); i++ {
				m := t.Method(i)
				str(m.Name)
				str(m.PkgPath)
				walk(m.Type)
			}
		case reflect.Func:
			num(t.NumIn())
			for i := 0; i < t.NumIn(); i++ {
				walk(t.In(i))
			}
			num(t.NumOut())
			for i := 0; i < t.NumOut(); i++ {
				walk(t.Out(i))
			}
			if t.IsVariadic() {
				d = append(d, 1)
			} else {
				d = append(d, 0)
			}
		}
	}
	walk(t)
	s := sha256.Sum256(d)
	var fp [16]byte
	copy(fp[:], s[:])
	return fp
}
