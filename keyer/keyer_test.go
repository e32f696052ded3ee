package keyer_test

import (
	"bytes"
	"context"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// The types below are inputs of the tests; their names appear in the error
// messages the tests expect.

type Req struct {
	User  string
	Limit int
}

type Query struct {
	Name     string
	Callback func()
}

type Pipe struct{ C chan int }

type Raw struct{ P unsafe.Pointer }

type Item struct{ F func(int) error }

type Batch struct{ Items []Item }

type Handlers struct{ M map[string]func() }

type ChanKeys struct{ M map[chan int]bool }

type Stamp struct {
	Name string
	at   time.Time
}

type StampFirst struct {
	at time.Time
	At time.Time
}

type StampLast struct {
	At time.Time
	at time.Time
}

// The unexported fields above are what the tests are about; they are
// never read directly.
var _ = []any{Stamp{at: inst}, StampFirst{at: inst}, StampLast{at: inst}, HiddenKey{k: tenantID{}}}

type ByValue struct{ M wrapperspb.StringValue }

type Holder struct{ V any }

type Box struct{ v any }

type Private struct{ m map[string]any }

type Node struct {
	V    int
	Next *Node
}

type Link struct {
	V    int
	Next any
}

type Secret struct {
	Name   string
	secret int
}

type UserID string
type OrderID string

type A int
type B int

type Pair struct{ A, B string }

type Event struct {
	time.Time
	Name string
}

type MsgField struct{ M proto.Message }

// Types whose key method is promoted from an embedded field: it would ignore
// Name, so they are walked field by field.
type (
	WithEmbeddedPtr struct {
		*Ver
		Name string
	}
	WithVal struct {
		Ver
		Name string
	}
	WithIface struct {
		encoding.BinaryMarshaler
		Name string
	}
	WrappedMsg struct {
		*wrapperspb.StringValue
		Name string
	}
	WrappedKeyable struct {
		Tenant
		Name string
	}
	// An embedded field of an unexported type is an unexported field.
	HiddenEmbedded struct {
		*ptrVersion
		Name string
	}
)

type Ver struct{ N int }

func (v *Ver) MarshalBinary() ([]byte, error) { return []byte{byte(v.N)}, nil }

type Tenant struct{ ID string }

func (t Tenant) AppendKey(dst []byte) []byte { return append(dst, t.ID...) }

type HiddenKey struct{ k tenantID }

type NotComparable struct {
	_ [0]func()
	N int
}

// tenantID defines its own identity: cache is not part of it.
type tenantID struct {
	id    string
	cache *int
}

func (t tenantID) AppendKey(dst []byte) []byte { return append(dst, t.id...) }

// version is keyed by MarshalBinary: label is not part of it.
type version struct {
	major, minor int
	label        string
}

func (v version) MarshalBinary() ([]byte, error) {
	return fmt.Appendf(nil, "%d.%d", v.major, v.minor), nil
}

// ptrVersion marshals on a pointer receiver.
type ptrVersion struct{ n int }

func (v *ptrVersion) MarshalBinary() ([]byte, error) { return []byte{byte(v.n)}, nil }

var errBoom = errors.New("boom")

type badMarshaler struct{}

func (badMarshaler) MarshalBinary() ([]byte, error) { return nil, errBoom }

type WithBad struct{ M badMarshaler }

// Pure is a struct of pure types only (no maps, interfaces or types with
// their own key): For.Sum keys it without allocating.
type Pure struct {
	ID    uint64
	P     *int
	Tags  []string
	Hash  [4]byte
	Pairs [2]Req
	Inner struct {
		F float64
		B []byte
	}
}

var (
	global   = keyer.StepInfo{Name: "step", Version: "v1", Scope: scope.Global}
	workflow = keyer.StepInfo{Name: "step", Version: "v1", Scope: scope.Workflow}
)

func hash(t *testing.T, v any) keyer.Sum {
	t.Helper()
	s, err := keyer.Hash(global, v)
	if err != nil {
		t.Fatalf("Hash(%#v): %v", v, err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

var (
	ny   = time.FixedZone("New York", -5*3600)
	inst = time.Date(2024, 3, 1, 12, 30, 0, 500, time.UTC)
)

func TestEqualInputsEqualSums(t *testing.T) {
	nan2 := math.Float64frombits(0x7ff8000000000001)
	now := time.Now() // carries a monotonic reading
	tests := []struct {
		name string
		a, b any
	}{
		{"int", 42, 42},
		{"string", "alice", strings.Clone("alice")},
		{"NaN", math.NaN(), nan2},
		{"NaN float32", float32(math.NaN()), math.Float32frombits(0x7fc00001)},
		{"-0 +0", math.Copysign(0, -1), 0.0},
		{"-0 +0 float32", float32(math.Copysign(0, -1)), float32(0)},
		{"complex -0 NaN", complex(math.Copysign(0, -1), math.NaN()), complex(0, nan2)},
		{"complex64 -0", complex64(complex(math.Copysign(0, -1), 0)), complex64(0)},
		{"slice capacity", make([]int, 2, 10), []int{0, 0}},
		{"bytes capacity", make([]byte, 2, 10), []byte{0, 0}},
		{"pointers to equal values", ptr(7), ptr(7)},
		{"shared vs separate pointers", struct{ X, Y *int }{ptr(1), ptr(1)}, func() any { p := ptr(1); return struct{ X, Y *int }{p, p} }()},
		{"time in two locations", inst, inst.In(ny)},
		{"time with and without monotonic", now, now.Round(0)},
		{"time in local and UTC", now, now.UTC()},
		{"*time.Time same instant", ptr(inst), ptr(inst.In(ny))},
		{"struct with *time.Time", struct{ T *time.Time }{ptr(inst)}, struct{ T *time.Time }{ptr(inst.In(ny))}},
		{"embedded time, same instant", Event{inst, "x"}, Event{inst.In(ny), "x"}},
		{"interface with equal values", Holder{A(1)}, Holder{A(1)}},
		{"interface with NaN", Holder{math.NaN()}, Holder{nan2}},
		{"Keyable ignores what AppendKey ignores", tenantID{"acme", nil}, tenantID{"acme", ptr(3)}},
		{"BinaryMarshaler", version{1, 2, "a"}, version{1, 2, "b"}},
		{"BinaryMarshaler pointer receiver", &ptrVersion{3}, &ptrVersion{3}},
		{"proto", wrapperspb.String("x"), wrapperspb.String("x")},
		{"proto timestamp", timestamppb.New(inst), timestamppb.New(inst.In(ny))},
		{"zero-length array of func", NotComparable{N: 1}, NotComparable{N: 1}},
		{"map", map[string]int{"a": 1, "b": 2}, map[string]int{"b": 2, "a": 1}},
		{"map with NaN keys", map[float64]int{math.NaN(): 1, nan2: 2}, map[float64]int{nan2: 2, math.NaN(): 1}},
		{"map with pointer keys", map[*int]string{ptr(1): "a", ptr(1): "b"}, map[*int]string{ptr(1): "b", ptr(1): "a"}},
		{"unexported map", Private{map[string]any{"a": 1, "b": []int{2}}}, Private{map[string]any{"b": []int{2}, "a": 1}}},
		{"unexported interface", Box{Req{"a", 1}}, Box{Req{"a", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, b := hash(t, tt.a), hash(t, tt.b); a != b {
				t.Errorf("sums differ:\n%#v: %x\n%#v: %x", tt.a, a, tt.b, b)
			}
		})
	}
}

func TestDifferentInputsDifferentSums(t *testing.T) {
	type Node1 struct {
		V    int
		Next *Node1
	}
	tests := []struct {
		name string
		a, b any
	}{
		{"bool", true, false},
		{"int", 1, 2},
		{"int sign", -1, 1},
		{"int8", int8(-128), int8(127)},
		{"int16", int16(1), int16(2)},
		{"int32", int32(1), int32(2)},
		{"int64 extremes", int64(math.MinInt64), int64(math.MaxInt64)},
		{"uint", uint(0), uint(1)},
		{"uint8", uint8(0), uint8(255)},
		{"uint16", uint16(1), uint16(2)},
		{"uint32", uint32(1), uint32(2)},
		{"uint64", uint64(math.MaxUint64), uint64(math.MaxUint64 - 1)},
		{"uintptr", uintptr(1), uintptr(2)},
		{"float64 last bit", 1.0, math.Nextafter(1, 2)},
		{"float64 NaN vs Inf", math.NaN(), math.Inf(1)},
		{"float32", float32(1.5), float32(2.5)},
		{"complex64", complex64(complex(1, 2)), complex64(complex(2, 1))},
		{"complex128", complex(1, 2), complex(2, 1)},
		{"string", "a", "b"},
		{"string empty vs NUL", "", "\x00"},
		{"[]byte nil vs empty", []byte(nil), []byte{}},
		{"[]byte empty vs zero", []byte{}, []byte{0}},
		{"[]byte", []byte("ab"), []byte("ac")},
		{"[]byte high bytes", []byte{0x80}, []byte{0x81}},
		{"array", [2]int{1, 2}, [2]int{2, 1}},
		{"byte array", [3]byte{1, 2, 3}, [3]byte{1, 2, 4}},
		{"slice nil vs empty", []int(nil), []int{}},
		{"slice", []int{1, 2}, []int{1, 2, 3}},
		{"slice of strings split", []string{"ab", ""}, []string{"a", "b"}},
		{"nested slices", [][]int{{1}, {2}}, [][]int{{1, 2}}},
		{"nested slices empty", [][]int{{}, {1}}, [][]int{{1}, {}}},
		{"map nil vs empty", map[string]int(nil), map[string]int{}},
		{"map value", map[string]int{"a": 1}, map[string]int{"a": 2}},
		{"map key", map[string]int{"a": 1}, map[string]int{"b": 1}},
		{"map key/value split", map[string]string{"a": "bc"}, map[string]string{"ab": "c"}},
		{"struct field", Req{"alice", 10}, Req{"alice", 11}},
		{"struct strings split", Pair{"ab", ""}, Pair{"a", "b"}},
		{"unexported field", Secret{"x", 1}, Secret{"x", 2}},
		{"pointer nil vs zero", (*int)(nil), new(int)},
		{"pointer value", ptr(1), ptr(2)},
		{"X vs *X", inst, &inst},
		{"*time.Time nil vs zero", struct{ T *time.Time }{}, struct{ T *time.Time }{&time.Time{}}},
		{"interface nil vs zero", Holder{nil}, Holder{0}},
		{"interface dynamic type", Holder{A(1)}, Holder{B(1)}},
		{"interface int vs int64", Holder{1}, Holder{int64(1)}},
		{"unexported interface", Box{1}, Box{2}},
		{"unexported map", Private{map[string]any{"a": 1}}, Private{map[string]any{"a": 2}}},
		{"interface proto types with equal wire bytes", MsgField{wrapperspb.String("abc")}, MsgField{wrapperspb.Bytes([]byte("abc"))}},
		{"interface nil proto vs nil interface", MsgField{(*wrapperspb.StringValue)(nil)}, MsgField{nil}},
		{"time 1ns", inst, inst.Add(1)},
		{"time beyond UnixNano", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 1, time.UTC)},
		{"embedded time, other fields", Event{inst, "a"}, Event{inst, "b"}},
		{"embedded *BinaryMarshaler", WithEmbeddedPtr{&Ver{1}, "a"}, WithEmbeddedPtr{&Ver{1}, "b"}},
		{"embedded BinaryMarshaler, pointer receiver", &WithVal{Ver{1}, "a"}, &WithVal{Ver{1}, "b"}},
		{"embedded BinaryMarshaler interface", WithIface{version{1, 2, ""}, "a"}, WithIface{version{1, 2, ""}, "b"}},
		{"embedded proto message", WrappedMsg{wrapperspb.String("x"), "a"}, WrappedMsg{wrapperspb.String("x"), "b"}},
		{"embedded Keyable", WrappedKeyable{Tenant{"acme"}, "a"}, WrappedKeyable{Tenant{"acme"}, "b"}},
		{"Keyable", tenantID{"acme", nil}, tenantID{"globex", nil}},
		{"BinaryMarshaler", version{1, 2, ""}, version{1, 3, ""}},
		{"BinaryMarshaler pointer nil", (*ptrVersion)(nil), &ptrVersion{0}},
		{"proto", wrapperspb.String("a"), wrapperspb.String("b")},
		{"proto nil vs empty", (*wrapperspb.StringValue)(nil), &wrapperspb.StringValue{}},
		{"proto timestamp", timestamppb.New(inst), timestamppb.New(inst.Add(1))},
		{"list", &Node1{1, &Node1{2, nil}}, &Node1{1, &Node1{3, nil}}},
		{"list length", &Node1{1, &Node1{2, nil}}, &Node1{1, nil}},
		{"same bytes, other type", int64(1), uint64(2)},
		{"named types of one shape", UserID("alice"), OrderID("alice")},
		{"named vs unnamed", UserID("alice"), "alice"},
		{"anonymous structs of other field names", struct{ X int }{1}, struct{ Y int }{1}},
		{"array lengths", [1]int{0}, [2]int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, b := hash(t, tt.a), hash(t, tt.b); a == b {
				t.Errorf("sums equal: %#v and %#v: %x", tt.a, tt.b, a)
			}
		})
	}
}

// TestMapOrderIndependence builds maps with many keys in different insertion
// orders, so that their iteration orders differ, and repeats.
func TestMapOrderIndependence(t *testing.T) {
	const n = 200
	build := func(order []int) map[string]any {
		m := make(map[string]any)
		for _, i := range order {
			m[fmt.Sprint("k", i)] = map[int][]string{i: {fmt.Sprint(i)}, -i: nil}
		}
		return m
	}
	up, down := make([]int, n), make([]int, n)
	for i := range n {
		up[i], down[i] = i, n-1-i
	}
	want := hash(t, Holder{build(up)})
	for range 50 {
		if got := hash(t, Holder{build(down)}); got != want {
			t.Fatal("map insertion order changed the sum")
		}
		if got := hash(t, Holder{build(up)}); got != want {
			t.Fatal("map iteration order changed the sum")
		}
	}
}

// TestProtoDeterministic keys proto messages holding maps (structpb) by their
// deterministic marshal: equal messages give equal sums whatever their map
// order.
func TestProtoDeterministic(t *testing.T) {
	fields := map[string]any{}
	for i := range 100 {
		fields[fmt.Sprint("f", i)] = []any{float64(i), "x", true, map[string]any{"n": nil}}
	}
	msg := func() *structpb.Struct {
		s, err := structpb.NewStruct(fields)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := hash(t, msg())
	for range 20 {
		if got := hash(t, msg()); got != want {
			t.Fatal("equal proto messages gave different sums")
		}
	}
	other := msg()
	other.Fields["f1"] = structpb.NewStringValue("y")
	if hash(t, other) == want {
		t.Fatal("different proto messages gave equal sums")
	}
}

// TestForMatchesHash checks that the typed path (what the middleware uses)
// and Hash (what Default uses) agree.
func TestForMatchesHash(t *testing.T) {
	forMatches(t, Req{"alice", 10})
	forMatches(t, Pure{ID: 1, P: ptr(2), Tags: []string{"a"}, Hash: [4]byte{1}})
	forMatches(t, map[string]int{"a": 1})
	forMatches(t, inst)
	forMatches(t, &inst)
	forMatches(t, wrapperspb.String("x"))
	forMatches(t, Holder{A(1)})
	forMatches[any](t, A(1))
	forMatches[any](t, nil)
	forMatches[fmt.Stringer](t, inst)
	forMatches[fmt.Stringer](t, nil)
	forMatches(t, UserID("alice"))
	forMatches(t, []any{1, "a", nil})
}

func forMatches[T any](t *testing.T, v T) {
	t.Helper()
	for _, step := range []keyer.StepInfo{global, workflow} {
		f, err := keyer.NewFor[T](step)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Sum(&v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := keyer.Hash(step, v)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("For[%v].Sum(%#v) = %x, Hash = %x", reflect.TypeFor[T](), v, got, want)
		}
		ctx, _ := scope.Begin(context.Background(), "e")
		k1, err1 := f.Key(ctx, &v)
		k2, err2 := keyer.Default.Key(ctx, step, v)
		if err1 != nil || err2 != nil || k1 != k2 {
			t.Errorf("For.Key = %v, %v; Default.Key = %v, %v", k1, err1, k2, err2)
		}
	}
}

// TestLengthDelimiting crafts names and inputs that would collide if the
// key's components were simply concatenated.
func TestLengthDelimiting(t *testing.T) {
	sum := func(step keyer.StepInfo, v any) keyer.Sum {
		s, err := keyer.Hash(step, v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	g := func(name, version string) keyer.StepInfo {
		return keyer.StepInfo{Name: name, Version: version, Scope: scope.Global}
	}
	tests := []struct {
		name   string
		s1, s2 keyer.StepInfo
		v1, v2 any
	}{
		{"step+input", g("ab", ""), g("a", ""), "c", "bc"},
		{"step+version", g("ab", "c"), g("a", "bc"), 1, 1},
		{"version+input", g("s", "ab"), g("s", "a"), "c", "bc"},
		{"struct fields", g("s", ""), g("s", ""), Pair{"ab", ""}, Pair{"a", "b"}},
		{"distinct names", g("fetch_user", "v1"), g("fetch_order", "v1"), 1, 1},
		{"distinct versions", g("s", "v1"), g("s", "v2"), 1, 1},
		{"empty vs set version", g("s", ""), g("s", "v1"), 1, 1},
		{"distinct scopes", global, workflow, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if sum(tt.s1, tt.v1) == sum(tt.s2, tt.v2) {
				t.Error("sums equal")
			}
		})
	}
}

func TestMake(t *testing.T) {
	s := hash(t, 1)
	bg := context.Background()

	if _, err := keyer.Make(bg, workflow, s); !errors.Is(err, scope.ErrNoExecution) {
		t.Errorf("Workflow without execution: err = %v, want ErrNoExecution", err)
	}
	if _, err := keyer.Default.Key(bg, workflow, 1); !errors.Is(err, scope.ErrNoExecution) {
		t.Errorf("Default without execution: err = %v, want ErrNoExecution", err)
	}
	f, _ := keyer.NewFor[int](workflow)
	if _, err := f.Key(bg, ptr(1)); !errors.Is(err, scope.ErrNoExecution) {
		t.Errorf("For.Key without execution: err = %v, want ErrNoExecution", err)
	}

	ctxA, _ := scope.Begin(bg, "a")
	ctxB, _ := scope.Begin(bg, "b")
	ka, err := keyer.Make(ctxA, workflow, s)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := keyer.Make(ctxB, workflow, s)
	if ka == kb || ka.String() == kb.String() || ka.Execution != "a" || ka.Scope != scope.Workflow || ka.Step != "step" {
		t.Errorf("Workflow keys of two executions: %v, %v", ka, kb)
	}

	g1, err := keyer.Make(ctxA, global, s)
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := keyer.Make(bg, global, s)
	if g1 != g2 || g1.Execution != "" {
		t.Errorf("Global keys depend on the execution: %v, %v", g1, g2)
	}

	if _, err := keyer.Make(bg, keyer.StepInfo{Name: "s"}, s); !errors.Is(err, keyer.ErrInvalidKey) {
		t.Errorf("invalid scope: err = %v, want ErrInvalidKey", err)
	}
}

// TestGolden pins the sums of a few inputs, so that an accidental change of
// the encoding, the fingerprint or the prefix is caught.
//
// Changing these values means every stored entry gets a new key: that
// requires bumping keyFormat in hash.go (and saying so in the changelog),
// never just pasting the new sums.
func TestGolden(t *testing.T) {
	step := keyer.StepInfo{Name: "golden", Version: "v1", Scope: scope.Global}
	tests := []struct {
		name string
		step keyer.StepInfo
		v    any
		want string
	}{
		{"string", step, "alice", "86bab31b38c8219529ccba9a5fb286137f7c3b7c513b3c7dbec9f4a89ebfd235"},
		{"int", step, -3, "0438e04c24d61af532b72d46a2250e3d98506a8f5b21820091ddc2763c49a814"},
		{"anonymous struct", step, struct {
			User  string
			Limit int
		}{"alice", 10}, "dc061aa0fcafe328ca76a4e19aff12610f8b7a6e2eb739d2f4404b08d7bcd236"},
		{"map", step, map[string]float64{"a": 1, "b": math.NaN()}, "2ffb76eff885cfb57f8a4dff6900978969a5dca82be6727dfc2ec7af3769cae3"},
		{"time", step, time.Unix(1700000000, 5).In(ny), "623607dc52cc1ce52b8f93ab0b162c8fb257558b832ea46a4dc77cf5365815e0"},
		{"slice of any", step, []any{nil, 1, "x", 2.5, []byte{1}}, "d4b9b1cb61a9196ee5cfe965478067599026b49f2b7e20b5e2f0f966a64aa521"},
		{"proto", step, wrapperspb.String("p"), "4eaeb083f6570a20cdec6ff10d397de1c8aebc0e891362f82af7dfe2e3b3d6c8"},
		{"workflow", keyer.StepInfo{Name: "golden", Scope: scope.Workflow}, [2]uint8{1, 2}, "f7afac885125659b06aa3a7d586ec926321756b6f5464658a61a6940161addb7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := keyer.Hash(tt.step, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(s[:]); got != tt.want {
				t.Errorf("sum = %s, want %s (see the comment above: bump keyFormat)", got, tt.want)
			}
		})
	}
}

// TestUnkeyableTypes: types that can never be keyed are found from the type
// alone, by Check, NewFor and Hash, with the same error.
func TestUnkeyableTypes(t *testing.T) {
	tests := []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[Query](), "keyer: cannot key field Query.Callback of type func()"},
		{reflect.TypeFor[*Query](), "keyer: cannot key field Query.Callback of type func()"},
		{reflect.TypeFor[[]Query](), "keyer: cannot key field [].Callback of type func()"},
		{reflect.TypeFor[Pipe](), "keyer: cannot key field Pipe.C of type chan int"},
		{reflect.TypeFor[Raw](), "keyer: cannot key field Raw.P of type unsafe.Pointer"},
		{reflect.TypeFor[Batch](), "keyer: cannot key field Batch.Items[].F of type func(int) error"},
		{reflect.TypeFor[Handlers](), "keyer: cannot key field Handlers.M[] of type func()"},
		{reflect.TypeFor[ChanKeys](), "keyer: cannot key field ChanKeys.M[key] of type chan int"},
		{reflect.TypeFor[func()](), "keyer: cannot key value of type func()"},
		{reflect.TypeFor[chan struct{}](), "keyer: cannot key value of type chan struct {}"},
		{reflect.TypeFor[Stamp](), "keyer: cannot key field Stamp.at of type time.Time: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field"},
		{reflect.TypeFor[StampFirst](), "keyer: cannot key field StampFirst.at of type time.Time: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field"},
		{reflect.TypeFor[StampLast](), "keyer: cannot key field StampLast.at of type time.Time: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field"},
		{reflect.TypeFor[HiddenEmbedded](), "keyer: cannot key field HiddenEmbedded.ptrVersion of type *keyer_test.ptrVersion: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field"},
		{reflect.TypeFor[HiddenKey](), "keyer: cannot key field HiddenKey.k of type keyer_test.tenantID: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field"},
		{reflect.TypeFor[ByValue](), "keyer: cannot key field ByValue.M of type wrapperspb.StringValue: protobuf messages must be passed by pointer"},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			checkUnkeyable(t, keyer.Check(tt.typ), tt.want, tt.typ)
			// Hash of the zero value finds it from the type too.
			_, err := keyer.Hash(global, reflect.New(tt.typ).Elem().Interface())
			checkUnkeyable(t, err, tt.want, tt.typ)
		})
	}
	_, err := keyer.NewFor[Query](global)
	checkUnkeyable(t, err, tests[0].want, nil)
	_, err = keyer.AppendCanonical(nil, Query{})
	checkUnkeyable(t, err, tests[0].want, nil)
}

func checkUnkeyable(t *testing.T, err error, want string, _ reflect.Type) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("err = %q\n        want %q", err, want)
	}
	if !errors.Is(err, keyer.ErrUnkeyable) {
		t.Errorf("errors.Is(%v, ErrUnkeyable) = false", err)
	}
	var ue *keyer.UnkeyableError
	if !errors.As(err, &ue) || ue.Type == nil {
		t.Errorf("errors.As(%v, *UnkeyableError) = false or no Type", err)
	}
}

func TestKeyableTypes(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[Req](), reflect.TypeFor[Pure](), reflect.TypeFor[Holder](),
		reflect.TypeFor[Box](), reflect.TypeFor[NotComparable](), reflect.TypeFor[Event](),
		reflect.TypeFor[MsgField](), reflect.TypeFor[*structpb.Struct](), reflect.TypeFor[any](),
		reflect.TypeFor[map[UserID][]*time.Time](), reflect.TypeFor[Node](), nil,
	} {
		if err := keyer.Check(typ); err != nil {
			t.Errorf("Check(%v) = %v", typ, err)
		}
	}
}

// TestUnkeyableValues: values whose type allows keying but which cannot be
// keyed fail when keyed, with the path in the input.
func TestUnkeyableValues(t *testing.T) {
	loop := &Node{V: 1}
	loop.Next = loop
	two := &Node{V: 1, Next: &Node{V: 2}}
	two.Next.Next = two
	selfSlice := []any{nil}
	selfSlice[0] = selfSlice
	selfMap := map[string]any{}
	selfMap["me"] = selfMap
	var selfIface any
	selfIface = &selfIface

	tests := []struct {
		name string
		v    any
		want string
		is   error
	}{
		{"interface holding func", Holder{func() {}}, "keyer: cannot key field Holder.V.(func()) of type func()", nil},
		{"interface holding struct with func", Holder{Query{}}, "keyer: cannot key field Holder.V.(keyer_test.Query).Callback of type func()", nil},
		{"interface holding chan in a slice", Holder{[]any{1, make(chan int)}}, "keyer: cannot key field Holder.V.([]interface {})[1].(chan int) of type chan int", nil},
		{"cyclic pointer", *loop, "keyer: cannot key field Node.Next.Next of type *keyer_test.Node: cyclic value", nil},
		{"cyclic pointer from a pointer", loop, "keyer: cannot key field Node.Next of type *keyer_test.Node: cyclic value", nil},
		{"two-node cycle", two, "keyer: cannot key field Node.Next.Next of type *keyer_test.Node: cyclic value", nil},
		{"cyclic slice via interface", Holder{selfSlice}, "keyer: cannot key field Holder.V.([]interface {})[0].([]interface {}) of type []interface {}: cyclic value", nil},
		{"cyclic map", Holder{selfMap}, "keyer: cannot key field Holder.V.(map[string]interface {})[].(map[string]interface {}) of type map[string]interface {}: cyclic value", nil},
		{"cyclic interface pointer", Holder{selfIface}, "keyer: cannot key field Holder.V.(*interface {}).(*interface {}) of type *interface {}: cyclic value", nil},
		{"time in unexported map", Private{map[string]any{"t": inst}}, "keyer: cannot key field Private.m[].(time.Time) of type time.Time: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field", nil},
		{"time in unexported interface", Box{inst}, "keyer: cannot key field Box.v.(time.Time) of type time.Time: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field", nil},
		{"failing marshaller", WithBad{}, "keyer: cannot key field WithBad.M of type keyer_test.badMarshaler: its marshalling failed: boom", errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyer.Hash(global, tt.v)
			checkUnkeyable(t, err, tt.want, nil)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			_, err = keyer.AppendCanonical(nil, tt.v)
			checkUnkeyable(t, err, tt.want, nil)
		})
	}

	// The typed path reports the same errors, also for pure types, whose
	// fast walk carries no paths.
	f, _ := keyer.NewFor[Node](global)
	_, err := f.Sum(loop)
	checkUnkeyable(t, err, "keyer: cannot key field Node.Next.Next of type *keyer_test.Node: cyclic value", nil)
	h, _ := keyer.NewFor[Holder](global)
	_, err = h.Sum(&Holder{func() {}})
	checkUnkeyable(t, err, tests[0].want, nil)
}

// TestLongCycle: a cycle longer than the depth the fast walk follows without
// tracking is still found, and reported where it closes.
func TestLongCycle(t *testing.T) {
	for _, n := range []int{31, 32, 33, 100} {
		head := &Node{}
		cur := head
		for i := 1; i < n; i++ {
			cur.Next = &Node{V: i}
			cur = cur.Next
		}
		cur.Next = head
		f, _ := keyer.NewFor[*Node](global)
		_, err := f.Sum(&head)
		want := "keyer: cannot key field Node" + strings.Repeat(".Next", n) + " of type *keyer_test.Node: cyclic value"
		checkUnkeyable(t, err, want, nil)

		// Through interfaces (not a pure type).
		lhead := &Link{}
		lcur := lhead
		for i := 1; i < n; i++ {
			next := &Link{V: i}
			lcur.Next = next
			lcur = next
		}
		lcur.Next = lhead
		_, err = keyer.Hash(global, lhead)
		if !errors.Is(err, keyer.ErrUnkeyable) || !strings.HasSuffix(err.Error(), "cyclic value") {
			t.Errorf("cycle of %d Links: err = %v", n, err)
		}
	}
}

// TestDeepAcyclic: deep values that share no pointer on a path are keyed,
// and two lists differing only at the end differ.
func TestDeepAcyclic(t *testing.T) {
	const n = 1000
	list := func(last int) *Node {
		var head *Node
		for i := n - 1; i >= 0; i-- {
			head = &Node{V: i, Next: head}
		}
		cur := head
		for cur.Next != nil {
			cur = cur.Next
		}
		cur.V = last
		return head
	}
	if a, b, c := hash(t, list(1)), hash(t, list(1)), hash(t, list(2)); a != b || a == c {
		t.Error("deep lists: equal lists must have equal sums and different ones different sums")
	}
	f, _ := keyer.NewFor[Node](global)
	if _, err := f.Sum(list(1)); err != nil {
		t.Error(err)
	}

	links := func(last int) any {
		var l any = last
		for i := range n {
			l = Link{V: i, Next: l}
		}
		return l
	}
	if a, b, c := hash(t, links(1)), hash(t, links(1)), hash(t, links(2)); a != b || a == c {
		t.Error("deep interface chains: equal chains must have equal sums and different ones different sums")
	}

	// A value shared twice on different paths is not a cycle.
	shared := &Node{V: 1}
	if _, err := keyer.Hash(global, [40]*Node{0: shared, 39: shared}); err != nil {
		t.Error(err)
	}
	deep := shared
	for range 40 {
		deep = &Node{Next: deep}
	}
	if _, err := keyer.Hash(global, []*Node{deep, deep}); err != nil {
		t.Error(err)
	}
}

func TestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	req, err := keyer.NewFor[Req](global)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		in := Req{User: "alice", Limit: 10}
		if _, err := req.Sum(&in); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("For[Req].Sum: %v allocs, want 0", n)
	}

	pure, err := keyer.NewFor[Pure](global)
	if err != nil {
		t.Fatal(err)
	}
	x := 5
	tags := []string{"a", "bb"}
	b := []byte{1, 2, 3}
	if n := testing.AllocsPerRun(100, func() {
		in := Pure{ID: 1, P: &x, Tags: tags, Hash: [4]byte{1, 2}, Pairs: [2]Req{{"a", 1}, {"b", 2}}}
		in.Inner.F = 1.5
		in.Inner.B = b
		if _, err := pure.Sum(&in); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("For[Pure].Sum: %v allocs, want 0", n)
	}
}

func TestKeyString(t *testing.T) {
	s := hash(t, 1)
	h := hex.EncodeToString(s[:])
	tests := []struct {
		k    keyer.Key
		want string
	}{
		{keyer.Key{Scope: scope.Global, Step: "fetch_user", Sum: s}, "global/fetch_user/" + h},
		{keyer.Key{Scope: scope.Workflow, Execution: "exec_12345", Step: "fetch_user", Sum: s}, "workflow/exec_12345/fetch_user/" + h},
		{keyer.Key{Scope: scope.Global, Execution: "ignored", Step: "s", Sum: s}, "global/s/" + h},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func binaryKeys(t testing.TB) []keyer.Key {
	var s1, s2 keyer.Sum
	for i := range s1 {
		s1[i], s2[i] = byte(i), byte(255-i)
	}
	keys := []keyer.Key{
		{Scope: scope.Global, Sum: s1},
		{Scope: scope.Global, Sum: s2},
	}
	for _, id := range []string{"", "a", "ab", "a\x00", "exec_12345", strings.Repeat("x", 127), strings.Repeat("y", 128), strings.Repeat("z", 20000)} {
		keys = append(keys, keyer.Key{Scope: scope.Workflow, Execution: id, Sum: s1}, keyer.Key{Scope: scope.Workflow, Execution: id, Sum: s2})
	}
	return keys
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, k := range binaryKeys(t) {
		b, err := k.AppendBinary([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("AppendBinary overwrote dst")
		}
		got, err := keyer.ParseBinary(b[len("prefix"):])
		if err != nil {
			t.Fatalf("ParseBinary(%x): %v", b, err)
		}
		if got != k {
			t.Errorf("round trip: got %+v, want %+v", got, k)
		}
	}
	if _, err := (keyer.Key{}).AppendBinary(nil); !errors.Is(err, keyer.ErrInvalidKey) {
		t.Errorf("AppendBinary of the zero Key: err = %v, want ErrInvalidKey", err)
	}

	sum := bytes.Repeat([]byte{7}, 32)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, b := range map[string][]byte{
		"empty":               nil,
		"unknown tag":         cat([]byte("x"), sum),
		"global short":        cat([]byte("g"), sum[:31]),
		"global long":         cat([]byte("g"), sum, []byte{0}),
		"workflow no length":  []byte("w"),
		"workflow overlong":   cat([]byte("w\x05ab"), sum[:2]),
		"workflow bad varint": cat([]byte("w\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), sum),
		"non-minimal length":  cat([]byte("w\x81\x00a"), sum),
		"workflow short sum":  cat([]byte("w\x01a"), sum[:31]),
	} {
		if k, err := keyer.ParseBinary(b); !errors.Is(err, keyer.ErrInvalidKey) {
			t.Errorf("%s: ParseBinary(%x) = %+v, %v; want ErrInvalidKey", name, b, k, err)
		}
	}
}

// TestExecutionPrefix: the prefix of an execution starts every binary key of
// that execution and no other key, even when execution IDs are prefixes of
// each other.
func TestExecutionPrefix(t *testing.T) {
	keys := binaryKeys(t)
	for _, ex := range keys {
		if ex.Scope != scope.Workflow {
			continue
		}
		p := keyer.AppendExecutionPrefix(nil, ex.Execution)
		for _, k := range keys {
			b, _ := k.AppendBinary(nil)
			want := k.Scope == scope.Workflow && k.Execution == ex.Execution
			if got := bytes.HasPrefix(b, p); got != want {
				t.Errorf("prefix of %q on key of %v %q: %v, want %v", ex.Execution, k.Scope, k.Execution, got, want)
			}
		}
	}
}

func FuzzParseBinary(f *testing.F) {
	for _, k := range binaryKeys(f)[:10] {
		b, _ := k.AppendBinary(nil)
		f.Add(b)
	}
	f.Add([]byte("w\x81\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := keyer.ParseBinary(b)
		if err != nil {
			if !errors.Is(err, keyer.ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		again, err := k.AppendBinary(nil)
		if err != nil {
			t.Fatalf("AppendBinary of parsed %+v: %v", k, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x -> %+v -> %x", b, k, again)
		}
	})
}

func TestAppendCanonical(t *testing.T) {
	tests := []struct {
		v    any
		want []byte
	}{
		{nil, []byte{0}},
		{"ab", []byte{2, 'a', 'b'}},
		{-1, []byte{1}}, // zigzag varint
		{uint(300), []byte{0xac, 0x02}},
		{[]byte(nil), []byte{0}},
		{[]byte{9}, []byte{1, 1, 9}},
		{Pair{"a", "b"}, []byte{1, 'a', 1, 'b'}},
		{(*int)(nil), []byte{0}},
		{ptr(true), []byte{1, 1}},
		// A map: nil flag, count, entries sorted, each a flag and its key and
		// value (or their digest, when longer than 32 bytes).
		{map[string]bool{"b": false, "a": true}, []byte{1, 2, 1, 1, 'a', 1, 1, 1, 'b', 0}},
	}
	for _, tt := range tests {
		got, err := keyer.AppendCanonical([]byte("x"), tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("x"), tt.want...); !bytes.Equal(got, want) {
			t.Errorf("AppendCanonical(%#v) = %x, want %x", tt.v, got, want)
		}
	}
}

// TestConcurrent keys new types from many goroutines at once (run with
// -race): plans are built once and shared.
func TestConcurrent(t *testing.T) {
	type T1 struct{ M map[string][]int }
	type T2 struct{ V any }
	var wg sync.WaitGroup
	sums := make([][3]keyer.Sum, 16)
	for i := range sums {
		wg.Go(func() {
			var err error
			if sums[i][0], err = keyer.Hash(global, T1{map[string][]int{"a": {1}}}); err != nil {
				t.Error(err)
			}
			if sums[i][1], err = keyer.Hash(global, T2{T1{}}); err != nil {
				t.Error(err)
			}
			f, _ := keyer.NewFor[Req](global)
			if sums[i][2], err = f.Sum(&Req{"a", i % 2}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range sums {
		if sums[i][0] != sums[0][0] || sums[i][1] != sums[0][1] || sums[i][2] != sums[i%2][2] {
			t.Fatal("concurrent sums differ")
		}
	}
}
