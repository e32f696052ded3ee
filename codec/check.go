package codec

import (
	"encoding"
	"encoding/gob"
	"encoding/json"
	"errors"
	"reflect"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrLossy is the sentinel of every *LossError; compare with errors.Is.
var ErrLossy = errors.New("codec: result type does not round-trip")

// LossError reports a result type whose values a codec would not carry
// through a byte tier unchanged, and where in the type it loses them.
type LossError struct {
	// Codec is the codec's name.
	Codec string
	// Type is the result type checked.
	Type reflect.Type
	// Path is where the loss is, rooted at the type's name: "Token.secret",
	// "Order.Lines[].Meta", "Shape" (the type itself).
	Path string
	// Reason says what is lost and how to keep it.
	Reason string
}

func (e *LossError) Error() string {
	return "codec " + e.Codec + ": result type " + e.Type.String() + " does not round-trip: " + e.Path + ": " + e.Reason
}

// Is makes every LossError match ErrLossy.
func (e *LossError) Is(target error) bool { return target == ErrLossy }

// CheckRoundTrip reports whether every value of type t comes back from c
// exactly as it went in: it returns a *LossError naming the type and field
// path of the first part that c would drop or change, and nil otherwise.
// The middleware calls it when a step with a byte tier is wrapped.
//
// A value is lost in an unexported field, in a field the codec skips (for
// JSON and Msgpack, one tagged `json:"-"` or `msgpack:"-"`), in an interface
// (the codec decodes it into its generic maps and numbers, or loses a typed
// nil), and in a func, chan or unsafe pointer. A top-level interface type
// round-trips when its concrete types are registered with [Register]. A type
// that defines its own encoding for c is trusted, and not looked into: for
// Msgpack, msgpack.CustomEncoder, msgpack.Marshaler, encoding.BinaryMarshaler
// or encoding.TextMarshaler (each with its decoding half); for JSON,
// json.Marshaler or encoding.TextMarshaler; for Gob, gob.GobEncoder or
// encoding.BinaryMarshaler. So is a protobuf message result, which Bind
// always encodes with Proto, and any type with a codec not from this package,
// which knows its own rules.
//
// What the package documentation lists as kept in another form (a time's
// zone, nil versus empty slices with Gob) is not a loss here: such values
// compare equal by their documented rules.
func CheckRoundTrip(c Codec, t reflect.Type) error {
	if t == nil {
		return nil
	}
	if c == nil {
		c = Default()
	}
	if t.Kind() != reflect.Interface && (t.Implements(protoMessage) || reflect.PointerTo(t).Implements(protoMessage)) {
		return nil
	}
	var rules codecRules
	switch c.(type) {
	case msgpackCodec:
		rules = msgpackRules
	case jsonCodec:
		rules = jsonRules
	case gobCodec:
		rules = gobRules
	default:
		return nil
	}
	ch := checker{c: c, rules: rules, root: t, seen: map[reflect.Type]bool{}}
	if t.Kind() == reflect.Interface {
		u := registered(t)
		if u == nil {
			return ch.fail(rootName(t), "an interface result needs its concrete types registered with codec.Register["+t.String()+"](...)")
		}
		for _, ct := range u.types {
			if err := ch.walk(ct, rootName(t)+".("+ct.String()+")"); err != nil {
				return err
			}
		}
		return nil
	}
	return ch.walk(t, rootName(t))
}

func rootName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// codecRules is what one codec honours.
type codecRules struct {
	// own lists the pairs of interfaces with which a type encodes itself.
	own [][2]reflect.Type
	// tags are the struct tags whose "-" skips a field, in order of
	// precedence (the first one present decides).
	tags []string
	// embedUnexported: the exported fields of an embedded unexported struct
	// are kept.
	embedUnexported bool
	// complex: complex numbers can be encoded.
	complex bool
	hint    string
}

var (
	binaryPair = [2]reflect.Type{reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.BinaryUnmarshaler]()}
	textPair   = [2]reflect.Type{reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()}

	msgpackRules = codecRules{
		own: [][2]reflect.Type{
			{reflect.TypeFor[msgpack.CustomEncoder](), reflect.TypeFor[msgpack.CustomDecoder]()},
			{reflect.TypeFor[msgpack.Marshaler](), reflect.TypeFor[msgpack.Unmarshaler]()},
			binaryPair, textPair,
		},
		tags:            []string{"msgpack", structTag},
		embedUnexported: true,
		complex:         true,
		hint:            "msgpack.CustomEncoder and CustomDecoder, or encoding.BinaryMarshaler and BinaryUnmarshaler",
	}
	jsonRules = codecRules{
		own: [][2]reflect.Type{
			{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[json.Unmarshaler]()},
			textPair,
		},
		tags:            []string{"json"},
		embedUnexported: true,
		hint:            "json.Marshaler and Unmarshaler, or encoding.TextMarshaler and TextUnmarshaler",
	}
	gobRules = codecRules{
		own: [][2]reflect.Type{
			{reflect.TypeFor[gob.GobEncoder](), reflect.TypeFor[gob.GobDecoder]()},
			binaryPair,
		},
		complex: true,
		hint:    "gob.GobEncoder and GobDecoder, or encoding.BinaryMarshaler and BinaryUnmarshaler",
	}
)

type checker struct {
	c     Codec
	rules codecRules
	root  reflect.Type
	seen  map[reflect.Type]bool
}

func (ch *checker) fail(path, reason string) error {
	return &LossError{Codec: ch.c.Name(), Type: ch.root, Path: path, Reason: reason}
}

// encodesItself reports whether t (or *t, which the decoder fills) has one
// of the codec's own encoding pairs.
func (ch *checker) encodesItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	for _, p := range ch.rules.own {
		if (t.Implements(p[0]) || pt.Implements(p[0])) && pt.Implements(p[1]) {
			return true
		}
	}
	return false
}

func (ch *checker) walk(t reflect.Type, path string) error {
	if ch.seen[t] {
		return nil
	}
	ch.seen[t] = true
	if t.Kind() != reflect.Interface && ch.encodesItself(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return ch.fail(path, "a "+t.Kind().String()+" cannot be encoded")
	case reflect.Complex64, reflect.Complex128:
		if !ch.rules.complex {
			return ch.fail(path, "a complex number cannot be encoded")
		}
	case reflect.Interface:
		return ch.fail(path, "an interface field comes back in the codec's generic form (maps, float64 or sized numbers) or as nil, not as the value stored; use a concrete type")
	case reflect.Pointer:
		return ch.walk(t.Elem(), path)
	case reflect.Slice, reflect.Array:
		return ch.walk(t.Elem(), path+"[]")
	case reflect.Map:
		if err := ch.walk(t.Key(), path+"[key]"); err != nil {
			return err
		}
		return ch.walk(t.Elem(), path+"[]")
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			fpath := path + "." + f.Name
			if f.Anonymous && !f.IsExported() && ch.rules.embedUnexported && f.Type.Kind() == reflect.Struct {
				// Its exported fields are promoted and kept.
				if err := ch.walk(f.Type, fpath); err != nil {
					return err
				}
				continue
			}
			if !f.IsExported() {
				if f.Type.Size() == 0 {
					continue // holds nothing, as struct{ _ [0]func() }
				}
				return ch.fail(fpath, "unexported fields are not stored; export it, or give "+t.String()+" its own encoding ("+ch.rules.hint+")")
			}
			if tag, ok := ch.skipTag(f); ok {
				return ch.fail(fpath, "the field is tagged `"+tag+":\"-\"`, so it is not stored and comes back zero")
			}
			if err := ch.walk(f.Type, fpath); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipTag reports the tag that makes the codec skip f, if any.
func (ch *checker) skipTag(f reflect.StructField) (string, bool) {
	for _, name := range ch.rules.tags {
		v, ok := f.Tag.Lookup(name)
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(v, ",")
		return name, n == "-" && !strings.Contains(v, ",")
	}
	return "", false
}
