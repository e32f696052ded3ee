package codec

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Result types of the checks below; their names appear in the paths.
type (
	Token struct{ token string }
	// Tagged keeps its secret out of JSON, and so out of Msgpack.
	Tagged struct {
		Name   string
		Secret string `json:"-"`
	}
	// Kept is tagged for JSON but named for Msgpack, which stores it.
	Kept struct {
		Secret string `json:"-" msgpack:"secret"`
	}
	Holder   struct{ V any }
	Outer    struct{ Inner []map[string]*Token }
	Embedded struct {
		base
		N int
	}
	Recursive struct {
		Next *Recursive
		N    int
	}
	WithFunc struct{ F func() }
	Complex  struct{ C complex128 }
	Marker   struct {
		_ [0]func()
		N int
	}
	// Sealed keeps its state unexported but encodes itself for every
	// codec here.
	Sealed struct{ v int }
)

func (s Sealed) MarshalBinary() ([]byte, error) { return []byte{byte(s.v)}, nil }
func (s *Sealed) UnmarshalBinary(b []byte) error {
	if len(b) != 1 {
		return errors.New("bad")
	}
	s.v = int(b[0])
	return nil
}
func (s Sealed) MarshalJSON() ([]byte, error) { return []byte{'0' + byte(s.v)}, nil }
func (s *Sealed) UnmarshalJSON(b []byte) error {
	s.v = int(b[0] - '0')
	return nil
}

// Shape is an interface result type with registered concrete types.
type Shape interface{ Area() float64 }

type Circle struct{ R float64 }

func (c Circle) Area() float64 { return 3 * c.R * c.R }

type Square struct{ S float64 }

func (s *Square) Area() float64 {
	if s == nil {
		return 0
	}
	return s.S * s.S
}

// Unregistered is an interface nobody registers types for.
type Unregistered interface{ M() }

func init() { Register[Shape](Circle{}, &Square{}) }

var _ = Token{token: ""}

func TestCheckRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want map[string]string // by codec name: "" accepted, else the path and reason start
	}{
		{"plain", reflect.TypeFor[smallResult](), all("")},
		{"large", reflect.TypeFor[largeResult](), all("")},
		{"unexported", reflect.TypeFor[Token](), all("Token.token: unexported fields are not stored")},
		{"json:\"-\"", reflect.TypeFor[Tagged](), map[string]string{
			"json": "Tagged.Secret: the field is tagged `json:\"-\"`", "msgpack": "Tagged.Secret: the field is tagged `json:\"-\"`", "gob": "",
		}},
		{"msgpack tag wins", reflect.TypeFor[Kept](), map[string]string{
			"json": "Kept.Secret: the field is tagged `json:\"-\"`", "msgpack": "", "gob": "",
		}},
		{"interface field", reflect.TypeFor[Holder](), all("Holder.V: an interface field")},
		{"deep", reflect.TypeFor[*Outer](), all("Outer.Inner[][].token: unexported")},
		{"embedded unexported struct", reflect.TypeFor[Embedded](), map[string]string{
			"json": "", "msgpack": "", "gob": "Embedded.base: unexported",
		}},
		{"recursive", reflect.TypeFor[Recursive](), all("")},
		{"func", reflect.TypeFor[WithFunc](), all("WithFunc.F: a func cannot be encoded")},
		{"complex", reflect.TypeFor[Complex](), map[string]string{"json": "Complex.C: a complex number", "msgpack": "", "gob": ""}},
		{"zero-size unexported", reflect.TypeFor[Marker](), all("")},
		{"own encoding", reflect.TypeFor[Sealed](), all("")},
		{"time", reflect.TypeFor[time.Time](), all("")},
		{"registered interface", reflect.TypeFor[Shape](), all("")},
		{"unregistered interface", reflect.TypeFor[Unregistered](), all("Unregistered: an interface result needs its concrete types registered")},
		{"any", reflect.TypeFor[any](), all("interface {}: an interface result needs")},
		{"map of any", reflect.TypeFor[map[string]any](), all("map[string]interface {}[]: an interface field")},
		{"proto", reflect.TypeFor[*wrapperspb.StringValue](), all("")},
	}
	for _, tt := range tests {
		for _, c := range []Codec{JSON, Gob, Msgpack} {
			t.Run(tt.name+"/"+c.Name(), func(t *testing.T) {
				err := CheckRoundTrip(c, tt.typ)
				want := tt.want[c.Name()]
				if want == "" {
					if err != nil {
						t.Fatalf("CheckRoundTrip(%v) = %v, want nil", tt.typ, err)
					}
					return
				}
				var le *LossError
				if !errors.Is(err, ErrLossy) || !errors.As(err, &le) || le.Type != tt.typ {
					t.Fatalf("CheckRoundTrip(%v) = %v, want a *LossError", tt.typ, err)
				}
				if got := le.Path + ": " + le.Reason; !strings.HasPrefix(got, want) {
					t.Errorf("CheckRoundTrip(%v):\n got  %s\n want %s...", tt.typ, got, want)
				}
				if !strings.HasPrefix(err.Error(), "codec "+c.Name()+": result type "+tt.typ.String()+" does not round-trip: "+want) {
					t.Errorf("message %q", err)
				}
			})
		}
	}
	// A codec from outside this package knows its own rules.
	if err := CheckRoundTrip(userCodec{JSON, 201}, reflect.TypeFor[Token]()); err != nil {
		t.Errorf("user codec: %v", err)
	}
}

// TestCheckMatchesRoundTrip: what the check accepts does come back equal,
// and what it refuses does not — so the check is about real losses.
func TestCheckMatchesRoundTrip(t *testing.T) {
	for _, c := range []Codec{JSON, Msgpack} {
		probe(t, c, true, Sealed{v: 7})
		probe(t, c, false, Token{token: "t"})
		probe(t, c, false, Tagged{Name: "n", Secret: "s"})
		probe(t, c, false, Holder{V: Circle{R: 1}})
		probe[Shape](t, c, true, Circle{R: 2})
		probe[Shape](t, c, true, &Square{S: 3})
		probe[Shape](t, c, true, (*Square)(nil))
		probe[Shape](t, c, true, nil)
	}
	probe(t, Msgpack, true, Kept{Secret: "s"})
	probe(t, JSON, false, Kept{Secret: "s"})
}

func probe[T any](t *testing.T, c Codec, accepted bool, v T) {
	t.Helper()
	if err := CheckRoundTrip(c, reflect.TypeFor[T]()); (err == nil) != accepted {
		t.Fatalf("%s: CheckRoundTrip(%T) = %v, want accepted %v", c.Name(), v, err, accepted)
	}
	got, err := roundTrip(c, v)
	if err != nil {
		t.Fatalf("%s: round trip of %#v: %v", c.Name(), v, err)
	}
	if equal := reflect.DeepEqual(got, v); equal != accepted {
		t.Errorf("%s: %#v came back as %#v (equal %v), but the check says accepted %v", c.Name(), v, got, equal, accepted)
	}
}

// TestRegisterTypedNil: a typed nil in a registered interface keeps its type.
func TestRegisterTypedNil(t *testing.T) {
	for _, c := range []Codec{JSON, Msgpack} {
		got, err := roundTrip[Shape](c, (*Square)(nil))
		if err != nil {
			t.Fatal(err)
		}
		if sq, ok := got.(*Square); !ok || sq != nil {
			t.Errorf("%s: (*Square)(nil) came back as %#v", c.Name(), got)
		}
	}
	b := Bind[Shape](Msgpack)
	if _, err := b.Encode(otherShape{}); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("encode of an unregistered concrete type: %v", err)
	}
	data, _ := b.Encode(Circle{R: 1})
	for _, bad := range [][]byte{nil, {0xff}, {5, 'a'}, append([]byte{3, 'a', 'b', 'c'}, data[1:]...), {0, 0}} {
		if _, err := b.Decode(bad); !isCorrupt(err) {
			t.Errorf("Decode(%x) = %v, want a corrupt error", bad, err)
		}
	}
	for _, bad := range []func(){
		func() { Register[Circle]() },
		func() { Register[Shape](nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic")
				}
			}()
			bad()
		}()
	}
	Register[Shape](Circle{}) // again: nothing changes
	if err := CheckRoundTrip(Msgpack, reflect.TypeFor[Shape]()); err != nil {
		t.Error(err)
	}
}

func isCorrupt(err error) bool { return errors.Is(err, backends.ErrCorrupt) }

type otherShape struct{}

func (otherShape) Area() float64 { return 0 }

// TestGobAllocationBound: a corrupt payload declaring a large message makes
// Gob allocate no more than the payload could hold.
func TestGobAllocationBound(t *testing.T) {
	payload := []byte{0xfd, 0xa0, 0x00, 0x00, 0x00} // a 10 MiB message, 1 byte of it
	b := Bind[smallResult](Gob)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := b.Decode(payload)
	runtime.ReadMemStats(&after)
	if !isCorrupt(err) {
		t.Fatalf("Decode = %v, want a corrupt error", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("decoding 5 bytes allocated %d bytes", n)
	}
}
