package keyer_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/docket-go/docket/keyer"
)

// The types fuzzed values are built of. FA and FB share a shape, and FX
// and FY differ only in a field name, so a key that ignored names would
// collide.
type (
	FA int64
	FB int64
	FX struct{ X int64 }
	FY struct{ Y int64 }
	FP struct {
		V    any
		Next *FP
	}
)

// gen builds a value from fuzz bytes: a small grammar over scalars, named
// types, slices, maps, pointers and interfaces.
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) value(depth int) any {
	if depth > 6 {
		return int64(g.byte())
	}
	switch g.byte() % 13 {
	case 0:
		return nil
	case 1:
		return int64(int8(g.byte()))
	case 2:
		return uint64(g.byte())
	case 3:
		// Few distinct bit patterns, so NaNs and zeros of both signs meet.
		return [...]float64{0, math.Copysign(0, -1), math.NaN(), math.Float64frombits(0x7ff8000000000001), 1, math.Inf(1)}[g.byte()%6]
	case 4:
		n := int(g.byte() % 4)
		return string(g.take(n))
	case 5:
		return FA(int8(g.byte()))
	case 6:
		return FB(int8(g.byte()))
	case 7:
		return FX{int64(g.byte() % 3)}
	case 8:
		return FY{int64(g.byte() % 3)}
	case 9:
		n := int(g.byte() % 4)
		if n == 3 {
			return []any(nil)
		}
		s := make([]any, n)
		for i := range s {
			s[i] = g.value(depth + 1)
		}
		return s
	case 10:
		n := int(g.byte() % 4)
		m := make(map[string]any, n)
		for range n {
			m[string(g.take(1))] = g.value(depth + 1)
		}
		return m
	case 11:
		if g.byte()%2 == 0 {
			return (*FP)(nil)
		}
		p := &FP{V: g.value(depth + 1)}
		if g.byte()%2 == 0 {
			p.Next = &FP{V: g.value(depth + 1)}
		}
		return p
	default:
		return []byte(g.take(int(g.byte() % 3)))
	}
}

func (g *gen) take(n int) []byte {
	if n > len(g.b) {
		n = len(g.b)
	}
	s := g.b[:n]
	g.b = g.b[n:]
	return s
}

// equivalent is the documented rule: reflect.DeepEqual, except that NaN
// equals NaN and -0 equals +0, and types must be identical.
func equivalent(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || x != x && y != y
	case reflect.Interface, reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equivalent(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equivalent(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !equivalent(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !equivalent(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}

// FuzzKey: two values have equal keys exactly when they are equivalent
// under the documented rule — of one type, and equal up to NaN and -0.
func FuzzKey(f *testing.F) {
	f.Add([]byte{1, 5}, []byte{1, 5})
	f.Add([]byte{5, 5}, []byte{6, 5})
	f.Add([]byte{7, 1}, []byte{8, 1})
	f.Add([]byte{3, 2}, []byte{3, 3})
	f.Add([]byte{3, 0}, []byte{3, 1})
	f.Add([]byte{10, 2, 'a', 1, 1, 'b', 2, 1}, []byte{10, 2, 'b', 2, 1, 'a', 1, 1})
	f.Add([]byte{9, 0}, []byte{9, 3})
	f.Add([]byte{11, 1, 4, 1, 'x', 0, 1, 1}, []byte{11, 1, 4, 1, 'x', 0, 1, 1})
	f.Add([]byte{4, 0}, []byte{12, 0})
	f.Fuzz(func(t *testing.T, x, y []byte) {
		a := (&gen{x}).value(0)
		b := (&gen{y}).value(0)
		ka, err := keyer.Hash(global, a)
		if err != nil {
			t.Fatalf("Hash(%#v): %v", a, err)
		}
		kb, err := keyer.Hash(global, b)
		if err != nil {
			t.Fatalf("Hash(%#v): %v", b, err)
		}
		want := equivalent(reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem())
		if got := ka == kb; got != want {
			t.Fatalf("%#v and %#v: equal keys %v, equivalent %v", a, b, got, want)
		}
		// The typed path agrees.
		h, _ := keyer.NewFor[FP](global)
		s, err := h.Sum(&FP{V: a})
		if err != nil {
			t.Fatal(err)
		}
		if s2, _ := keyer.Hash(global, FP{V: a}); s != s2 {
			t.Fatalf("For.Sum and Hash differ for %#v", a)
		}
	})
}
