package keyer_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// The input of every benchmark: Req{User: "alice", Limit: 10}. It is read
// from a variable so that the compiler cannot fold it.
var benchIn = Req{User: "alice", Limit: 10}

var (
	sumSink keyer.Sum
	keySink keyer.Key
	strSink string
)

var benchStep = keyer.StepInfo{Name: "fetch_user", Version: "v1", Scope: scope.Global}

// BenchmarkKey compares the cost of keying one call:
//
//   - Baseline: the bare cost, a hand-written encoding of the two fields
//     (uvarint length, the user's bytes, 8 bytes of limit: 14 bytes) hashed
//     with SHA-256. No step name, version or type; one SHA-256 block.
//   - For.Sum: what the middleware does per call. It hashes the step's
//     32-byte prefix digest plus the canonical encoding (7 bytes): 39 bytes,
//     one SHA-256 block too, so the difference is the reflect walk.
//   - Default: keyer.Default.Key through the Keyer interface, with the input
//     as any (as a custom WithKeyer sees it): compiles nothing ahead, so it
//     hashes the step prefix on every call.
//   - JSON: what users hand-roll, json.Marshal + SHA-256 + fmt.Sprintf.
func BenchmarkKey(b *testing.B) {
	b.Run("Baseline", func(b *testing.B) {
		b.ReportAllocs()
		in := benchIn
		for b.Loop() {
			var buf [64]byte
			n := binary.PutUvarint(buf[:], uint64(len(in.User)))
			n += copy(buf[n:], in.User)
			binary.LittleEndian.PutUint64(buf[n:], uint64(in.Limit))
			n += 8
			sumSink = sha256.Sum256(buf[:n])
		}
	})
	b.Run("For.Sum", func(b *testing.B) {
		b.ReportAllocs()
		f, err := keyer.NewFor[Req](benchStep)
		if err != nil {
			b.Fatal(err)
		}
		in := benchIn
		for b.Loop() {
			sumSink, err = f.Sum(&in)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Default", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		var k keyer.Keyer = keyer.Default
		var in any = benchIn
		var err error
		for b.Loop() {
			keySink, err = k.Key(ctx, benchStep, in)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSON", func(b *testing.B) {
		b.ReportAllocs()
		in := benchIn
		for b.Loop() {
			j, err := json.Marshal(in)
			if err != nil {
				b.Fatal(err)
			}
			s := sha256.Sum256(j)
			strSink = fmt.Sprintf("%s/%s/%x", benchStep.Name, benchStep.Version, s)
		}
	})
}

// BenchmarkSum measures For.Sum over inputs of other shapes.
func BenchmarkSum(b *testing.B) {
	x := 5
	pure := Pure{ID: 1, P: &x, Tags: []string{"a", "bb"}, Hash: [4]byte{1, 2}, Pairs: [2]Req{{"a", 1}, {"b", 2}}}
	pure.Inner.B = []byte("0123456789")
	b.Run("Pure", func(b *testing.B) { benchSum(b, pure) })
	b.Run("String", func(b *testing.B) { benchSum(b, UserID("alice")) })
	b.Run("Bytes1K", func(b *testing.B) { benchSum(b, make([]byte, 1024)) })
	b.Run("Map8", func(b *testing.B) {
		m := map[string]int{}
		for i := range 8 {
			m[fmt.Sprint("k", i)] = i
		}
		benchSum(b, m)
	})
	b.Run("Interface", func(b *testing.B) { benchSum(b, Holder{V: benchIn}) })
	b.Run("Time", func(b *testing.B) { benchSum(b, inst) })
	// Inputs whose cost used to grow faster than their size: JSON nested
	// 1,000 deep (each map level copied its subtree's encoding again) and a
	// DAG of 24 nodes that reach each other twice (each node more doubled
	// the work).
	b.Run("DeepJSON1000", func(b *testing.B) {
		body := strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000)
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			b.Fatal(err)
		}
		benchSum(b, v)
	})
	b.Run("DAG24", func(b *testing.B) { benchSum(b, *dag(24, 1)) })
}

func benchSum[T any](b *testing.B, in T) {
	b.ReportAllocs()
	f, err := keyer.NewFor[T](benchStep)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		sumSink, err = f.Sum(&in)
		if err != nil {
			b.Fatal(err)
		}
	}
}
