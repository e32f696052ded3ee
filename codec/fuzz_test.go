package codec

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
)

// FuzzDecode: the default codec, bound to a typical result, never panics on
// arbitrary bytes (Bind would turn a panic into an error: call the codec
// directly so that a panic fails here), and every failure is ErrCorrupt.
func FuzzDecode(f *testing.F) {
	b := Bind[smallResult](nil)
	for _, v := range []smallResult{newSmall(), {}, {Tags: []string{}}} {
		data, err := b.Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa4, 'T', 'a', 'g', 's', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var v smallResult
		_ = Default().Unmarshal(data, &v)
		if _, err := b.Decode(data); err != nil && !errors.Is(err, backends.ErrCorrupt) {
			t.Fatalf("Decode: %v, not ErrCorrupt", err)
		}
	})
}

// FuzzDecodeAny: a result of type any is where a decoder trusts declared
// lengths the most (it allocates the []any of an array header up front).
func FuzzDecodeAny(f *testing.F) {
	for _, v := range []any{map[string]any{"a": []any{1, "x", nil}}, []any{}, "s", 1.5} {
		data, err := Msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		_ = Msgpack.Unmarshal(data, &v)
	})
}

// FuzzMsgpackCheckAccepts: checkMsgpack accepts everything the encoder
// writes, so that it never turns a good entry into a miss.
func FuzzMsgpackCheckAccepts(f *testing.F) {
	f.Add("x", int64(1), 1.5, []byte{1}, uint8(3))
	f.Add("", int64(math.MinInt64), math.Inf(1), []byte(nil), uint8(0))
	f.Fuzz(func(t *testing.T, s string, n int64, x float64, b []byte, k uint8) {
		list := make([]any, int(k))
		for i := range list {
			list[i] = []any{n + int64(i), s}
		}
		m := map[string]any{s: n, "x": x, "b": b, "list": list, "f32": float32(x), "u": uint64(n)}
		for i := 0; i < int(k); i++ {
			m[string(rune('a'+i%26))+s] = map[string]any{"n": n >> i}
		}
		v := struct {
			M map[string]any
			L largeResult
			T time.Time
			P *smallResult
		}{M: m, L: newLarge(), T: time.Unix(n%(1<<40), int64(k))}
		data, err := Msgpack.Marshal(v)
		if err != nil {
			t.Skip(err)
		}
		if err := checkMsgpack(data); err != nil {
			t.Fatalf("checkMsgpack rejects the encoder's output: %v", err)
		}
	})
}
