package keyer_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/keyer/internal/othertest"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var ue *keyer.UnkeyableError
	if !errors.Is(err, keyer.ErrUnkeyable) || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want an *UnkeyableError", err)
	}
	if !strings.Contains(ue.Reason, reason) {
		t.Fatalf("err = %v, want reason %q", err, reason)
	}
}

// TestDepthLimit: a value nested deeper than MaxDepth is an error naming the
// path, not a stack overflow that kills the process.
func TestDepthLimit(t *testing.T) {
	const n = 1_000_000
	var head *Node
	for i := range n {
		head = &Node{V: i, Next: head}
	}
	_, err := keyer.Hash(global, head)
	wantReason(t, err, "nested more than 10000 deep")
	var ue *keyer.UnkeyableError
	errors.As(err, &ue)
	if !strings.HasPrefix(ue.Path, "Node.Next.Next") || !strings.Contains(ue.Path, "more)") || len(ue.Path) > 2000 {
		t.Errorf("path = %q, want an abbreviated Node.Next.Next...", ue.Path)
	}
	f, _ := keyer.NewFor[Node](global)
	_, err = f.Sum(head)
	wantReason(t, err, "nested more than 10000 deep")

	// Exactly at the limit is fine, one more is not.
	chain := func(depth int) any {
		var v any = 0
		for range depth {
			v = []any{v}
		}
		return v
	}
	if _, err := keyer.Hash(global, chain(keyer.MaxDepth)); err != nil {
		t.Errorf("depth MaxDepth: %v", err)
	}
	_, err = keyer.Hash(global, chain(keyer.MaxDepth+1))
	wantReason(t, err, "nested more than")

	// Interfaces holding structs count too.
	var l any = 0
	for range keyer.MaxDepth + 2 {
		l = Link{Next: l}
	}
	_, err = keyer.Hash(global, l)
	wantReason(t, err, "nested more than")
}

// TestDeepJSONLinear: JSON nested as deep as encoding/json allows, decoded
// into map[string]any, is keyed at a cost linear in its size (each map level
// used to copy its subtree's encoding again: 1 GiB allocated for 58 KiB).
func TestDeepJSONLinear(t *testing.T) {
	const depth = 9_999
	body := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	var sum keyer.Sum
	n := allocated(func() {
		var err error
		if sum, err = keyer.Hash(global, v); err != nil {
			t.Fatal(err)
		}
	})
	if limit := uint64(64 * len(body) * 16); n > limit {
		t.Errorf("keying %d bytes of JSON allocated %d bytes, want at most %d", len(body), n, limit)
	}
	// The same value decoded again keys the same; one leaf more differs.
	var w map[string]any
	json.Unmarshal([]byte(body), &w)
	if hash(t, w) != sum {
		t.Error("equal JSON values keyed differently")
	}
	json.Unmarshal([]byte(strings.Replace(body, "1", "2", 1)), &w)
	if hash(t, w) == sum {
		t.Error("different JSON values keyed equally")
	}
}

type DAG struct {
	L, R *DAG
	V    int
}

func dag(levels, leaf int) *DAG {
	d := &DAG{V: leaf}
	for i := range levels {
		d = &DAG{L: d, R: d, V: i}
	}
	return d
}

func tree(levels, leaf int) *DAG {
	if levels == 0 {
		return &DAG{V: leaf}
	}
	return &DAG{L: tree(levels-1, leaf), R: tree(levels-1, leaf), V: levels - 1}
}

// TestSharedValuesLinear: a value that reaches the same pointer, slice or
// map many times is keyed once per distinct value, and its key is that of
// an equal value that shares nothing.
func TestSharedValuesLinear(t *testing.T) {
	// Sharing does not change the key.
	if a, b := hash(t, dag(10, 7)), hash(t, tree(10, 7)); a != b {
		t.Error("a DAG and the equal tree keyed differently")
	}
	if a, b := hash(t, dag(10, 7)), hash(t, tree(10, 8)); a == b {
		t.Error("DAGs with different leaves keyed equally")
	}
	forMatches(t, *dag(12, 1))

	// 2^64 paths: walked once per node.
	big := dag(64, 1)
	n := allocated(func() { hash(t, big) })
	if n > 1<<20 {
		t.Errorf("a 64-level DAG allocated %d bytes", n)
	}
	f, _ := keyer.NewFor[DAG](global)
	if _, err := f.Sum(big); err != nil {
		t.Error(err)
	}

	// Through slices and maps in interfaces.
	var s any = []int{1, 2, 3}
	var m any = map[string]int{"a": 1}
	for range 64 {
		s = []any{s, s}
		m = map[string]any{"x": m, "y": m}
	}
	if n := allocated(func() { hash(t, s); hash(t, m) }); n > 1<<20 {
		t.Errorf("64 levels of shared slices and maps allocated %d bytes", n)
	}
}

type Twice struct{ A, B any }

// TestSizeLimit: what sharing cannot shorten — strings repeated, values
// copied into interfaces — stops at MaxSize with an error.
func TestSizeLimit(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	many := make([]string, keyer.MaxSize>>20+1)
	for i := range many {
		many[i] = long
	}
	_, err := keyer.Hash(global, many)
	wantReason(t, err, "exceeds 16 MiB")
	f, _ := keyer.NewFor[[]string](global)
	_, err = f.Sum(&many)
	wantReason(t, err, "exceeds 16 MiB")
	if _, err := keyer.Hash(global, many[:4]); err != nil {
		t.Errorf("4 MiB of strings: %v", err)
	}

	if testing.Short() || raceEnabled {
		t.Log("skipping 16 MiB of interface walking (slow under -race and -short)")
		return
	}
	// A struct copied into an interface at each level: 2^40 leaves.
	var v any = 1
	for range 40 {
		v = Twice{v, v}
	}
	_, err = keyer.Hash(global, v)
	wantReason(t, err, "exceeds 16 MiB")
}

// TestDistinctTypes: unnamed types that differ only in what the type
// fingerprint used to leave out have different keys.
func TestDistinctTypes(t *testing.T) {
	type A struct{ N int }
	tests := []struct {
		name string
		a, b any
	}{
		{"embedded vs named field", struct{ A }{A{1}}, struct{ A A }{A{1}}},
		{"struct tags", struct {
			X int `json:"x"`
		}{1}, struct{ X int }{1}},
		{"interface method signatures", []interface{ M() }{}, []interface{ M() int }{}},
		{"interface method sets", []interface{ M() }{}, []interface{ N() }{}},
		{"unexported fields of two packages", struct{ x int }{1}, othertest.Hidden(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if reflect.TypeOf(tt.a) == reflect.TypeOf(tt.b) {
				t.Fatal("test values have the same type")
			}
			if hash(t, tt.a) == hash(t, tt.b) {
				t.Errorf("%T and %T share a key", tt.a, tt.b)
			}
			if hash(t, Holder{tt.a}) == hash(t, Holder{tt.b}) {
				t.Errorf("%T and %T in an interface share a key", tt.a, tt.b)
			}
		})
	}
}

type Zoned struct {
	At  time.Time
	Loc *time.Location
}

type hiddenZone struct{ loc *time.Location }

var _ = hiddenZone{loc: time.UTC}

// TestLocationByName: a *time.Location is keyed by its name, so time.Local
// keys the same before and after the standard library loads it, and in
// processes with another TZ.
func TestLocationByName(t *testing.T) {
	if os.Getenv("KEYER_TEST_LOCATION") == "1" {
		// The child: time.Local not loaded yet.
		s := hash(t, Zoned{Loc: time.Local})
		fmt.Println(hex.EncodeToString(s[:]))
		return
	}
	first := ""
	for _, tz := range []string{"UTC", "America/New_York", "Asia/Tokyo"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestLocationByName$")
		cmd.Env = append(os.Environ(), "KEYER_TEST_LOCATION=1", "TZ="+tz)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("TZ=%s: %v", tz, err)
		}
		got := strings.Fields(string(out))[0]
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("TZ=%s: time.Local keyed %s, with the first TZ %s", tz, got, first)
		}
	}
	_ = time.Now().Local().String() // loads time.Local here
	if s := hash(t, Zoned{Loc: time.Local}); hex.EncodeToString(s[:]) != first {
		t.Error("time.Local keyed differently once loaded")
	}
	if hash(t, Zoned{Loc: time.FixedZone("X", 0)}) != hash(t, Zoned{Loc: time.FixedZone("X", 3600)}) {
		t.Error("two locations of one name keyed differently")
	}
	if hash(t, Zoned{Loc: time.UTC}) == hash(t, Zoned{Loc: time.FixedZone("X", 0)}) {
		t.Error("locations of two names keyed equally")
	}
	if hash(t, Zoned{Loc: time.UTC}) == hash(t, Zoned{}) {
		t.Error("UTC and a nil location keyed equally")
	}
	checkUnkeyable(t, keyer.Check(reflect.TypeFor[hiddenZone]()),
		"keyer: cannot key field hiddenZone.loc of type time.Location: it defines its own key (Keyable, proto, time or BinaryMarshaler) but sits in an unexported field", nil)
}

// TestErrorPrefix: keyer errors carry no "docket: " of their own, so the
// middleware's "docket: step ...: " is the only one.
func TestErrorPrefix(t *testing.T) {
	_, err := keyer.Default.Key(context.Background(), workflow, 1)
	if err == nil || strings.Contains(err.Error(), "docket:") {
		t.Errorf("Default.Key without an execution: err = %v, want no \"docket:\" in it", err)
	}
	for _, err := range []error{keyer.ErrUnkeyable, keyer.ErrInvalidKey, keyer.Check(reflect.TypeFor[Query]())} {
		if !strings.HasPrefix(err.Error(), "keyer: ") {
			t.Errorf("%q: want the prefix \"keyer: \"", err)
		}
	}
}
