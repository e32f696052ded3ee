package codec

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"

	"github.com/docket-go/docket/backends"
)

// Codec turns values into bytes and back. One Codec serves every result
// type; Bind ties it to one type for the middleware and the stores.
//
// Implementations must be safe for concurrent use. Marshal must not keep v,
// and Unmarshal must not keep data after it returns: a byte tier may hand it a
// sub-slice of a buffer it reuses. Unmarshal decodes into v, a non-nil
// pointer, and must return an error, never panic, on bytes Marshal did not
// produce.
type Codec interface {
	// ID names the encoding in the header of every stored entry, so that
	// bytes written with one codec are never decoded with another. It is
	// part of the stored format: see the package documentation for the IDs
	// that are taken. A user-defined codec picks an ID from MinUserID up.
	ID() uint8
	// Name names the codec in errors and logs ("json", "msgpack", ...).
	Name() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// The IDs of the built-in codecs. They are stored in every entry, so they
// are never renumbered or reused. 0 is invalid; 5 to 127 are reserved for
// codecs Docket may add.
const (
	IDJSON    uint8 = 1
	IDGob     uint8 = 2
	IDMsgpack uint8 = 3
	IDProto   uint8 = 4

	// MinUserID is the lowest ID a user-defined codec may have; Bind panics
	// on a codec that is not one of this package's and has a lower ID.
	MinUserID uint8 = 128
)

// The built-in codecs.
var (
	// JSON is encoding/json. Numbers decoded into an interface (a result of
	// type any, or a map[string]any inside one) become float64.
	JSON Codec = jsonCodec{}
	// Gob is encoding/gob with a fresh Encoder per value, so every encoded
	// value carries the descriptions of its types. A nil pointer cannot be
	// encoded, and empty slices and maps come back nil.
	Gob Codec = gobCodec{}
	// Msgpack is MessagePack (github.com/vmihailenco/msgpack/v5) with struct
	// fields stored by name. It is the Default.
	Msgpack Codec = msgpackCodec{}
	// Proto is protobuf: Marshal takes a proto.Message and encodes it
	// deterministically; Unmarshal takes a non-nil proto.Message to fill.
	Proto Codec = protoCodec{}
)

// Default returns the codec the middleware uses unless told otherwise:
// Msgpack, chosen by the measurements in the package documentation.
func Default() Codec { return Msgpack }

type jsonCodec struct{}

func (jsonCodec) ID() uint8                          { return IDJSON }
func (jsonCodec) Name() string                       { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type gobCodec struct{}

func (gobCodec) ID() uint8    { return IDGob }
func (gobCodec) Name() string { return "gob" }

// Marshal uses a fresh Encoder: a stored value is read back on its own,
// possibly by another process, so it cannot lean on type descriptions sent
// with an earlier value.
func (gobCodec) Marshal(v any) ([]byte, error) {
	// Encode panics on a nil pointer rather than return an error.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, fmt.Errorf("gob: cannot encode nil pointer of type %T", v)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal checks the framing first: the decoder allocates each message's
// declared length before reading it, so five bytes declaring 10 MiB would
// make it allocate 10 MiB.
func (gobCodec) Unmarshal(data []byte, v any) error {
	if err := checkGob(data); err != nil {
		return err
	}
	// A bytes.Reader is an io.ByteReader, so the Decoder reads exactly one
	// value and what is left over can be seen.
	r := bytes.NewReader(data)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return errTrailing(r.Len())
	}
	return nil
}

type msgpackCodec struct{}

func (msgpackCodec) ID() uint8    { return IDMsgpack }
func (msgpackCodec) Name() string { return "msgpack" }

// structTag is the tag msgpack falls back to when a field has no msgpack tag:
// results are often API types that carry json tags, and a field kept out of
// JSON with `json:"-"` (a secret, a cache) should not land on disk either.
const structTag = "json"

func (msgpackCodec) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	enc.Reset(&buf)
	enc.SetCustomStructTag(structTag)
	err := enc.Encode(v)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal does not call msgpack.Unmarshal: that turns on
// UsePreallocateValues, which starts a goroutine per decoded map type that
// never ends and keeps 256 values of the type allocated. It also ignores
// bytes after the value; here they are an error. checkMsgpack runs first, so
// that no declared length can make the decoder allocate more than the data
// could hold.
func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkMsgpack(data); err != nil {
		return err
	}
	r := bytes.NewReader(data)
	dec := msgpack.GetDecoder()
	// A bytes.Reader is an io.ByteScanner, so the Decoder does not buffer
	// ahead and what is left over can be seen.
	dec.Reset(r)
	dec.SetCustomStructTag(structTag)
	err := dec.Decode(v)
	msgpack.PutDecoder(dec)
	if err != nil {
		return err
	}
	if r.Len() != 0 {
		return errTrailing(r.Len())
	}
	return nil
}

type protoCodec struct{}

func (protoCodec) ID() uint8    { return IDProto }
func (protoCodec) Name() string { return "proto" }

var deterministic = proto.MarshalOptions{Deterministic: true}

func (protoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", v)
	}
	return deterministic.Marshal(m)
}

func (protoCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("cannot unmarshal into %T: not a proto.Message", v)
	}
	return proto.Unmarshal(data, m)
}

// checkGob checks that data is a sequence of gob messages whose declared
// lengths each fit in what is left, so that no message makes the decoder
// allocate more than len(data).
func checkGob(data []byte) error {
	for len(data) > 0 {
		n, w := uint64(data[0]), 1
		if n >= 0x80 {
			// A negated byte count, then that many big-endian bytes.
			w = 1 + int(-int8(data[0]))
			if w < 2 || w > 9 || w > len(data) {
				return errGobFraming
			}
			n = 0
			for _, b := range data[1:w] {
				n = n<<8 | uint64(b)
			}
		}
		if n == 0 || n > uint64(len(data)-w) {
			return errGobFraming
		}
		data = data[w+int(n):]
	}
	return nil
}

var errGobFraming = errors.New("gob: a message declares more bytes than the data holds")

func errTrailing(n int) error {
	return fmt.Errorf("%d bytes after the value", n)
}

// Bind returns c bound to the result type T, as the middleware and the byte
// tiers use it: Encode marshals a T, Decode unmarshals one and returns it as
// a T in an interface. A nil c means Default().
//
// A protobuf message is always encoded with Proto, whatever c is: when T or
// *T implements proto.Message, the returned codec is Proto's (its ID is
// IDProto). T must then be a generated message type, not an interface; a nil
// message reads back as an empty one.
//
// Otherwise Decode unmarshals into a new T with c's own rules: a nil pointer
// or slice stays nil where c records nil (JSON and Msgpack do; Gob cannot
// encode a nil pointer at all), and a pointer result gets a new pointee. An
// interface T whose concrete types are registered with [Register] is stored
// as the concrete type's name and c's encoding of the value, and decoded
// into that type. Any other interface T is encoded and decoded as itself:
// JSON and Msgpack give back their generic forms (maps, slices, numbers);
// Gob gives back the concrete type, if it was registered with gob.Register.
// [CheckRoundTrip] refuses such a T.
//
// Every Decode error, and a panic in c.Unmarshal (for example in a
// user-defined UnmarshalJSON), is returned as an error that wraps
// backends.ErrCorrupt, so that the entry counts as a miss and is overwritten.
//
// Bind panics, like regexp.MustCompile, when c can never work: Proto for a T
// that is not a message, or a codec that is not one of this package's with
// an ID below MinUserID (0 is invalid; 1 to 127 belong to Docket). It does its reflection once, so call
// it once per step; the result is safe for concurrent use.
func Bind[T any](c Codec) backends.Codec {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Interface {
		if t.Implements(protoMessage) {
			return protoBinding[T]{elem: t.Elem(), ptr: true}
		}
		if reflect.PointerTo(t).Implements(protoMessage) {
			return protoBinding[T]{elem: t}
		}
	}
	if c == nil {
		c = Default()
	}
	if err := checkID(c); err != nil {
		panic(err)
	}
	if t.Kind() == reflect.Interface && registered(t) != nil {
		return unionBinding[T]{c: c, typ: t}
	}
	if _, ok := c.(protoCodec); ok {
		panic(fmt.Sprintf("codec proto bound to %v, which is not a protobuf message", t))
	}
	return binding[T]{c: c, typ: t}
}

var protoMessage = reflect.TypeFor[proto.Message]()

func checkID(c Codec) error {
	switch c.(type) {
	case jsonCodec, gobCodec, msgpackCodec, protoCodec:
		return nil
	}
	switch id := c.ID(); {
	case id == 0:
		return fmt.Errorf("codec %q (%T) has ID 0, which is invalid; pick an ID from %d up", c.Name(), c, MinUserID)
	case id < MinUserID:
		return fmt.Errorf("codec %q (%T) has ID %d, which is reserved for Docket's codecs; pick an ID from %d up", c.Name(), c, id, MinUserID)
	}
	return nil
}

// binding is a Codec bound to T.
type binding[T any] struct {
	c   Codec
	typ reflect.Type
}

func (b binding[T]) ID() uint8    { return b.c.ID() }
func (b binding[T]) Name() string { return b.c.Name() }

func (b binding[T]) Encode(v any) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("codec %s: encode %T: panic: %v", b.c.Name(), v, r)
		}
	}()
	if b.typ.Kind() == reflect.Interface {
		// Marshal a *T, as Decode unmarshals into one: Gob then writes the
		// value as an interface, with its concrete type's registered name.
		// JSON and Msgpack write the same bytes either way.
		t, _ := v.(T)
		data, err = b.c.Marshal(&t)
	} else {
		data, err = b.c.Marshal(v)
	}
	if err != nil {
		return nil, fmt.Errorf("codec %s: encode %T: %w", b.c.Name(), v, err)
	}
	return data, nil
}

func (b binding[T]) Decode(data []byte) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, &decodeError{b.c.Name(), b.typ, fmt.Errorf("panic: %v", r)}
		}
	}()
	// Decoding into a *T rather than into a new pointee lets the codec keep
	// a nil pointer result nil.
	var t T
	if err := b.c.Unmarshal(data, &t); err != nil {
		return nil, &decodeError{b.c.Name(), b.typ, err}
	}
	return t, nil
}

// protoBinding is Proto bound to a generated message type: T is *elem when
// ptr is set, else elem itself (whose pointer is the message).
type protoBinding[T any] struct {
	elem reflect.Type
	ptr  bool
}

func (protoBinding[T]) ID() uint8    { return IDProto }
func (protoBinding[T]) Name() string { return "proto" }

func (b protoBinding[T]) Encode(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok && v != nil && reflect.TypeOf(v) == b.elem {
		// A message held by value: marshal a copy through its pointer.
		p := reflect.New(b.elem)
		p.Elem().Set(reflect.ValueOf(v))
		m, ok = p.Interface().(proto.Message)
	}
	if !ok {
		return nil, fmt.Errorf("codec proto: encode %T: not a %v", v, reflect.TypeFor[T]())
	}
	data, err := deterministic.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("codec proto: encode %T: %w", v, err)
	}
	return data, nil
}

func (b protoBinding[T]) Decode(data []byte) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, &decodeError{"proto", reflect.TypeFor[T](), fmt.Errorf("panic: %v", r)}
		}
	}()
	p := reflect.New(b.elem)
	if err := proto.Unmarshal(data, p.Interface().(proto.Message)); err != nil {
		return nil, &decodeError{"proto", reflect.TypeFor[T](), err}
	}
	if b.ptr {
		return p.Interface(), nil
	}
	return p.Elem().Interface(), nil
}

// decodeError is both backends.ErrCorrupt and the codec's own error, without
// repeating ErrCorrupt's text: the entry decoder already says "corrupt".
type decodeError struct {
	codec string
	typ   reflect.Type
	err   error
}

func (e *decodeError) Error() string {
	return "codec " + e.codec + ": decode " + e.typ.String() + ": " + e.err.Error()
}

func (e *decodeError) Unwrap() []error { return []error{backends.ErrCorrupt, e.err} }
