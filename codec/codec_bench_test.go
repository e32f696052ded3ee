package codec

import (
	"testing"
)

// The measurements behind Default; see the package documentation for the
// numbers and the command. Each benchmark goes through Bind, as the
// middleware does, and reports the encoded size as "bytes".

func BenchmarkRoundTrip(b *testing.B) {
	b.Run("small", func(b *testing.B) { benchCodecs(b, newSmall(), benchRoundTrip[smallResult]) })
	b.Run("large", func(b *testing.B) { benchCodecs(b, newLarge(), benchRoundTrip[largeResult]) })
}

// BenchmarkEncode is the codec's share of a miss (the write).
func BenchmarkEncode(b *testing.B) {
	b.Run("small", func(b *testing.B) { benchCodecs(b, newSmall(), benchEncode[smallResult]) })
	b.Run("large", func(b *testing.B) { benchCodecs(b, newLarge(), benchEncode[largeResult]) })
}

// BenchmarkDecode is the codec's share of a back-tier hit.
func BenchmarkDecode(b *testing.B) {
	b.Run("small", func(b *testing.B) { benchCodecs(b, newSmall(), benchDecode[smallResult]) })
	b.Run("large", func(b *testing.B) { benchCodecs(b, newLarge(), benchDecode[largeResult]) })
}

// BenchmarkMsgpackCheck is what checkMsgpack adds to every Msgpack decode.
func BenchmarkMsgpackCheck(b *testing.B) {
	for _, tc := range []struct {
		name string
		v    any
	}{{"small", newSmall()}, {"large", newLarge()}} {
		data, err := Msgpack.Marshal(tc.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := checkMsgpack(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchCodecs[T any](b *testing.B, v T, run func(*testing.B, Codec, T)) {
	for _, c := range byteCodecs {
		b.Run(c.Name(), func(b *testing.B) { run(b, c, v) })
	}
}

func benchRoundTrip[T any](b *testing.B, c Codec, v T) {
	bc := Bind[T](c)
	var n int
	b.ReportAllocs()
	for b.Loop() {
		data, err := bc.Encode(v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bc.Decode(data); err != nil {
			b.Fatal(err)
		}
		n = len(data)
	}
	b.ReportMetric(float64(n), "bytes")
}

func benchEncode[T any](b *testing.B, c Codec, v T) {
	bc := Bind[T](c)
	var n int
	b.ReportAllocs()
	for b.Loop() {
		data, err := bc.Encode(v)
		if err != nil {
			b.Fatal(err)
		}
		n = len(data)
	}
	b.ReportMetric(float64(n), "bytes")
}

func benchDecode[T any](b *testing.B, c Codec, v T) {
	bc := Bind[T](c)
	data, err := bc.Encode(v)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bc.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bytes")
}
