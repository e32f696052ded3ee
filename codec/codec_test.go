package codec

import (
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/docket-go/docket/backends"
)

// byteCodecs are the codecs for Go values (Proto takes only messages).
var byteCodecs = []Codec{JSON, Gob, Msgpack}

// roundTrip sends v through c bound to T, as a byte tier does.
func roundTrip[T any](c Codec, v T) (T, error) {
	var zero T
	b := Bind[T](c)
	data, err := b.Encode(v)
	if err != nil {
		return zero, err
	}
	got, err := b.Decode(data)
	if err != nil {
		return zero, err
	}
	if got == nil && reflect.TypeFor[T]().Kind() == reflect.Interface {
		return zero, nil // a nil interface result
	}
	out, ok := got.(T)
	if !ok {
		return zero, fmt.Errorf("Decode returned %T, want %v", got, reflect.TypeFor[T]())
	}
	return out, nil
}

// TestBindRoundTrip: what a step returns is what a back-tier hit returns, for
// the shapes results usually have.
func TestBindRoundTrip(t *testing.T) {
	type ptrs struct {
		Next *smallResult
		Nil  *smallResult
		N    *int
	}
	seven := 7
	cases := []struct {
		name  string
		check func(c Codec) error
	}{
		{"struct", func(c Codec) error {
			return same(c, newSmall(), smallResult.utc)
		}},
		{"large struct", func(c Codec) error {
			return same(c, newLarge(), largeResult.utc)
		}},
		{"pointer to struct", func(c Codec) error {
			s := newSmall()
			got, err := roundTrip(c, &s)
			if err != nil {
				return err
			}
			if got == nil || got == &s || !reflect.DeepEqual(got.utc(), s) {
				return fmt.Errorf("got %+v, want a new %+v", got, s)
			}
			return nil
		}},
		{"struct of pointers", func(c Codec) error {
			s := newSmall()
			got, err := roundTrip(c, ptrs{Next: &s, N: &seven})
			if err != nil {
				return err
			}
			if got.Next == nil || !reflect.DeepEqual(got.Next.utc(), s) || got.Nil != nil || got.N == nil || *got.N != 7 {
				return fmt.Errorf("got %+v", got)
			}
			return nil
		}},
		{"slice of structs", func(c Codec) error {
			in := []smallResult{newSmall(), {ID: "2", Created: newSmall().Created}}
			got, err := roundTrip(c, in)
			if err != nil {
				return err
			}
			if len(got) != 2 || !reflect.DeepEqual(got[0].utc(), in[0]) || !reflect.DeepEqual(got[1].utc(), in[1]) {
				return fmt.Errorf("got %+v, want %+v", got, in)
			}
			return nil
		}},
		{"slice of strings", func(c Codec) error {
			return same(c, []string{"a", "", "ç"}, nil)
		}},
		{"map", func(c Codec) error {
			return same(c, map[string]int{"a": 1, "b": -2, "c": 1 << 40}, nil)
		}},
		{"map of int keys", func(c Codec) error {
			return same(c, map[int]string{1: "one", -2: "minus two"}, nil)
		}},
		{"bytes", func(c Codec) error {
			return same(c, []byte{0, 1, 2, 0xff}, nil)
		}},
		{"string", func(c Codec) error { return same(c, "hello, 世界", nil) }},
		{"int", func(c Codec) error { return same(c, -1<<62, nil) }},
		{"time", func(c Codec) error {
			in := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("", 3600))
			got, err := roundTrip(c, in)
			if err != nil {
				return err
			}
			if !got.Equal(in) {
				return fmt.Errorf("got %v, want the instant %v", got, in)
			}
			return nil
		}},
		{"time with monotonic reading", func(c Codec) error {
			in := time.Now()
			got, err := roundTrip(c, in)
			if err != nil {
				return err
			}
			if !got.Equal(in) {
				return fmt.Errorf("got %v, want the instant %v", got, in)
			}
			return nil
		}},
	}
	for _, c := range byteCodecs {
		for _, tc := range cases {
			t.Run(c.Name()+"/"+tc.name, func(t *testing.T) {
				if err := tc.check(c); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// same checks that v survives a round trip through c, comparing norm(v) when
// norm is set.
func same[T any](c Codec, v T, norm func(T) T) error {
	got, err := roundTrip(c, v)
	if err != nil {
		return err
	}
	want := v
	if norm != nil {
		got, want = norm(got), norm(v)
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("got %+v, want %+v", got, want)
	}
	return nil
}

// TestBindNilPointer: a step may return a nil pointer. JSON and Msgpack give
// it back as nil; Gob cannot encode it, which the middleware reports as a
// failed write (the result is still returned to the callers).
func TestBindNilPointer(t *testing.T) {
	for _, c := range byteCodecs {
		t.Run(c.Name(), func(t *testing.T) {
			got, err := roundTrip[*smallResult](c, nil)
			if c == Gob {
				if err == nil || !strings.Contains(err.Error(), "nil pointer") {
					t.Fatalf("Gob: got %v, %v; want an encode error", got, err)
				}
				return
			}
			if err != nil || got != nil {
				t.Fatalf("got %+v, %v; want nil, nil", got, err)
			}
		})
	}
}

// TestEncodeUnencodable: a result the codec cannot encode is an error from
// Encode (the middleware reports a failed write), never a panic.
func TestEncodeUnencodable(t *testing.T) {
	type withFunc struct {
		F func()
		C chan int
	}
	for _, c := range byteCodecs {
		t.Run(c.Name(), func(t *testing.T) {
			_, err := Bind[withFunc](c).Encode(withFunc{F: func() {}, C: make(chan int)})
			if err == nil || !strings.HasPrefix(err.Error(), "codec "+c.Name()+": encode codec.withFunc: ") {
				t.Fatalf("got %v, want an encode error", err)
			}
			if errors.Is(err, backends.ErrCorrupt) {
				t.Fatalf("an encode error is not ErrCorrupt: %v", err)
			}
		})
	}
}

// TestBindAny: a result of type any comes back in the codec's generic form.
func TestBindAny(t *testing.T) {
	in := map[string]any{"name": "x", "list": []any{"a", true}}
	for _, c := range []Codec{JSON, Msgpack} {
		t.Run(c.Name(), func(t *testing.T) {
			got, err := roundTrip[any](c, in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("got %#v, want %#v", got, in)
			}
			if got, err := roundTrip[any](c, nil); got != nil || err != nil {
				t.Fatalf("nil: got %#v, %v", got, err)
			}
		})
	}
}

// gobbed is registered with gob, as an interface-typed result needs.
type gobbed struct{ N int }

func init() { gob.Register(gobbed{}) }

// TestBindInterfaceGob: Gob keeps the concrete type of an interface result.
func TestBindInterfaceGob(t *testing.T) {
	for _, in := range []any{5, "s", gobbed{N: 3}} {
		got, err := roundTrip[any](Gob, in)
		if err != nil || got != in {
			t.Errorf("got %#v, %v; want %#v", got, err, in)
		}
	}
	if _, err := roundTrip[any](Gob, smallResult{}); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("unregistered type: got %v, want an encode error", err)
	}
}

// TestBindProto: protobuf messages are encoded with protobuf, whatever codec
// the step was given.
func TestBindProto(t *testing.T) {
	for _, c := range []Codec{nil, JSON, Gob, Msgpack, Proto} {
		name := "nil"
		if c != nil {
			name = c.Name()
		}
		t.Run(name, func(t *testing.T) {
			b := Bind[*wrapperspb.StringValue](c)
			if b.ID() != IDProto {
				t.Fatalf("ID %d, want IDProto", b.ID())
			}
			in := wrapperspb.String("hello")
			got, err := roundTrip(c, in)
			if err != nil {
				t.Fatal(err)
			}
			if got == in || !proto.Equal(got, in) {
				t.Fatalf("got %v, want a copy of %v", got, in)
			}
		})
	}
	t.Run("timestamp", func(t *testing.T) {
		in := timestamppb.New(time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC))
		got, err := roundTrip(nil, in)
		if err != nil || !proto.Equal(got, in) {
			t.Fatalf("got %v, %v; want %v", got, err, in)
		}
	})
	t.Run("nil message reads back empty", func(t *testing.T) {
		got, err := roundTrip[*wrapperspb.StringValue](nil, nil)
		if err != nil || got == nil || got.GetValue() != "" {
			t.Fatalf("got %v, %v; want an empty message", got, err)
		}
	})
	t.Run("message held by value", func(t *testing.T) {
		// Through reflect: a message value may not be copied in source.
		b := Bind[wrapperspb.StringValue](JSON)
		if b.ID() != IDProto {
			t.Fatalf("ID %d, want IDProto", b.ID())
		}
		v := reflect.New(reflect.TypeFor[wrapperspb.StringValue]()).Elem()
		v.FieldByName("Value").SetString("by value")
		data, err := b.Encode(v.Interface())
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		rv := reflect.ValueOf(got)
		if rv.Type() != v.Type() || rv.FieldByName("Value").String() != "by value" {
			t.Fatalf("got %T %v", got, got)
		}
	})
	t.Run("not a message", func(t *testing.T) {
		if _, err := Bind[*wrapperspb.StringValue](nil).Encode("text"); err == nil {
			t.Fatal("Encode of a string as a message: no error")
		}
		if _, err := Proto.Marshal(newSmall()); err == nil {
			t.Fatal("Proto.Marshal of a struct: no error")
		}
	})
}

// TestDecodeCorrupt: bytes the codec did not write for this type are an
// error that wraps backends.ErrCorrupt, never a panic.
func TestDecodeCorrupt(t *testing.T) {
	for _, c := range byteCodecs {
		b := Bind[smallResult](c)
		good, err := b.Encode(newSmall())
		if err != nil {
			t.Fatal(err)
		}
		other, err := c.Marshal("a string, not a struct")
		if err != nil {
			t.Fatal(err)
		}
		cases := map[string][]byte{
			"empty":         {},
			"garbage":       []byte("\xc1\x00\xff garbage"),
			"truncated":     good[:len(good)-3],
			"trailing byte": append(append([]byte{}, good...), 0),
			"other type":    other,
		}
		for name, data := range cases {
			t.Run(c.Name()+"/"+name, func(t *testing.T) {
				v, err := b.Decode(data)
				if !errors.Is(err, backends.ErrCorrupt) {
					t.Fatalf("Decode(%q) = %v, %v; want ErrCorrupt", data, v, err)
				}
				if !strings.HasPrefix(err.Error(), "codec "+c.Name()+": decode codec.smallResult: ") {
					t.Errorf("message %q", err)
				}
			})
		}
	}
	t.Run("proto", func(t *testing.T) {
		_, err := Bind[*wrapperspb.StringValue](nil).Decode([]byte{0xff, 0xff})
		if !errors.Is(err, backends.ErrCorrupt) {
			t.Fatalf("got %v, want ErrCorrupt", err)
		}
	})
}

// panicky's decoder panics, as a buggy user-defined UnmarshalJSON might.
type panicky struct{}

func (*panicky) UnmarshalJSON([]byte) error { panic("boom") }

func TestDecodePanicIsCorrupt(t *testing.T) {
	_, err := Bind[panicky](JSON).Decode([]byte(`{}`))
	if !errors.Is(err, backends.ErrCorrupt) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v, want ErrCorrupt naming the panic", err)
	}
}

// TestIDs: the IDs are part of the stored format.
func TestIDs(t *testing.T) {
	want := map[Codec]uint8{JSON: 1, Gob: 2, Msgpack: 3, Proto: 4}
	ids, names := map[uint8]string{}, map[string]bool{}
	for c, id := range want {
		if c.ID() != id {
			t.Errorf("%s: ID %d, want %d (IDs are stored: never renumber)", c.Name(), c.ID(), id)
		}
		if c.ID() == 0 || c.ID() >= MinUserID {
			t.Errorf("%s: ID %d outside 1..%d", c.Name(), c.ID(), MinUserID-1)
		}
		if prev, ok := ids[c.ID()]; ok {
			t.Errorf("%s and %s share ID %d", prev, c.Name(), c.ID())
		}
		ids[c.ID()] = c.Name()
		if names[c.Name()] {
			t.Errorf("two codecs named %q", c.Name())
		}
		names[c.Name()] = true
	}
	if got := Bind[smallResult](nil).ID(); got != Default().ID() {
		t.Errorf("Bind(nil) has ID %d, want Default's %d", got, Default().ID())
	}
	for _, c := range byteCodecs {
		if got := Bind[smallResult](c).ID(); got != c.ID() {
			t.Errorf("Bind(%s) has ID %d, want %d", c.Name(), got, c.ID())
		}
	}
}

// userCodec is a user-defined codec with a chosen ID.
type userCodec struct {
	Codec
	id uint8
}

func (u userCodec) ID() uint8 { return u.id }

func TestBindChecksUserIDs(t *testing.T) {
	for _, tc := range []struct {
		id     uint8
		panics bool
	}{{0, true}, {1, true}, {5, true}, {127, true}, {128, false}, {255, false}} {
		t.Run(fmt.Sprint(tc.id), func(t *testing.T) {
			defer func() {
				r := recover()
				if (r != nil) != tc.panics {
					t.Fatalf("ID %d: recovered %v, want panic %v", tc.id, r, tc.panics)
				}
			}()
			b := Bind[smallResult](userCodec{JSON, tc.id})
			if b.ID() != tc.id {
				t.Errorf("ID %d, want %d", b.ID(), tc.id)
			}
		})
	}
}

func TestBindProtoToNonMessagePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "not a protobuf message") {
			t.Fatalf("recovered %v, want a panic", r)
		}
	}()
	Bind[smallResult](Proto)
}

// TestBindConcurrent: one bound codec serves every call of a step (run with
// -race).
func TestBindConcurrent(t *testing.T) {
	for _, c := range byteCodecs {
		b := Bind[*largeResult](c)
		in := newLarge()
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Go(func() {
				for i := 0; i < 20; i++ {
					data, err := b.Encode(&in)
					if err != nil {
						t.Error(err)
						return
					}
					v, err := b.Decode(data)
					if err != nil {
						t.Error(err)
						return
					}
					if got := v.(*largeResult); got.ID != in.ID || len(got.Items) != len(in.Items) {
						t.Errorf("%s: got %+v", c.Name(), got)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}
