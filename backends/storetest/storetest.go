package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// Run checks that the stores newStore makes meet the backends.Store
// contract; see the package documentation. newStore is called once per
// check and must return an empty store; it registers its own cleanup.
func Run(t *testing.T, newStore func(t *testing.T) backends.Store) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

var checks = []struct {
	name string
	run  func(t *testing.T, s backends.Store)
}{
	{"Comparable", testComparable},
	{"HitMiss", testHitMiss},
	{"Replace", testReplace},
	{"KeysDistinct", testKeysDistinct},
	{"Values", testValues},
	{"Expiry", testExpiry},
	{"Delete", testDelete},
	{"PurgeExecution", testPurge},
	{"PurgeThousands", testPurgeThousands},
	{"RetainExecution", testRetain},
	{"RetainMany", testRetainMany},
	{"InvalidKey", testInvalidKey},
	{"Corrupt", testCorrupt},
	{"Concurrent", testConcurrent},
	{"List", testList},
	{"DeleteMatching", testDeleteMatching},
	{"Closed", testClosed},
}

var ctx = context.Background()

// textCodec stores a string as its bytes. A payload that starts with
// undecodable fails to decode, as a payload of the wrong type would.
type textCodec struct{ id uint8 }

const undecodable = "\xffundecodable"

func (c textCodec) ID() uint8 { return c.id }

func (textCodec) Encode(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("storetest codec: %T is not a string", v)
	}
	return []byte(s), nil
}

func (textCodec) Decode(data []byte) (any, error) {
	if bytes.HasPrefix(data, []byte(undecodable)) {
		return nil, errors.New("storetest codec: undecodable payload")
	}
	return string(data), nil
}

var (
	codec      backends.Codec = textCodec{id: 201}
	otherCodec backends.Codec = textCodec{id: 202}
)

// sum is a real SHA-256 over what the keyer's covers: scope, step, input.
func sum(sc scope.Scope, step string, i int) keyer.Sum {
	b := binary.AppendUvarint([]byte{byte(sc)}, uint64(len(step)))
	b = append(b, step...)
	return sha256.Sum256(binary.LittleEndian.AppendUint64(b, uint64(i)))
}

// globalKey returns the key of step's Global call with input i.
func globalKey(step string, i int) keyer.Key {
	return keyer.Key{Scope: scope.Global, Step: step, Sum: sum(scope.Global, step, i)}
}

// workflowKey returns the key of step's call with input i in execution
// exec. The Sum does not cover the execution: every execution's call of one
// step with one input has the same Sum, as the keyer makes it.
func workflowKey(exec, step string, i int) keyer.Key {
	return keyer.Key{Scope: scope.Workflow, Execution: exec, Step: step, Sum: sum(scope.Workflow, step, i)}
}

func set(t testing.TB, s backends.Store, k keyer.Key, v string, expires time.Time) {
	t.Helper()
	e := backends.Entry{Value: v, Created: time.Now(), Expires: expires, Execution: k.Execution}
	if err := s.Set(ctx, k, e, codec); err != nil {
		t.Fatalf("Set(%v): %v", k, err)
	}
}

func get(t testing.TB, s backends.Store, k keyer.Key) backends.Entry {
	t.Helper()
	e, err := s.Get(ctx, k, codec)
	if err != nil {
		t.Fatalf("Get(%v) = %v; want a hit", k, err)
	}
	if e.Tier == "" {
		t.Errorf("Get(%v) left Entry.Tier empty", k)
	}
	return e
}

func want(t testing.TB, s backends.Store, k keyer.Key, v string) {
	t.Helper()
	e := get(t, s, k)
	if got, ok := e.Value.(string); !ok || got != v {
		t.Fatalf("Get(%v) = %s; want %s", k, short(e.Value), short(v))
	}
}

func miss(t testing.TB, s backends.Store, k keyer.Key) {
	t.Helper()
	e, err := s.Get(ctx, k, codec)
	if !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get(%v) = %s, %v; want ErrNotFound", k, short(e.Value), err)
	}
}

// short keeps a 16 MiB value out of failure messages.
func short(v any) string {
	s := fmt.Sprintf("%q", v)
	if len(s) > 80 {
		return fmt.Sprintf("%s… (%d bytes)", s[:60], len(s))
	}
	return s
}

func testComparable(t *testing.T, s backends.Store) {
	if !reflect.TypeOf(s).Comparable() {
		t.Fatalf("%T is not comparable; stores are map keys (scope.Purger): use a pointer", s)
	}
	m := map[backends.Store]int{s: 1}
	if m[s] != 1 {
		t.Fatal("store is not equal to itself as a map key")
	}
	if s.Name() == "" {
		t.Error("Name() is empty")
	}
}

func testHitMiss(t *testing.T, s backends.Store) {
	created := time.Now().Add(-time.Minute).Round(time.Microsecond)
	expires := time.Now().Add(time.Hour).Round(time.Microsecond)
	origin := bytes.Repeat([]byte{0xAB}, 24)
	for _, tc := range []struct {
		name string
		key  keyer.Key
		in   backends.Entry
	}{
		{"global", globalKey("s", 1), backends.Entry{Value: "g", Created: created}},
		{"global with TTL and provenance", globalKey("s", 2), backends.Entry{Value: "g2", Created: created, Expires: expires, Execution: "producer", Origin: origin, Version: "v3"}},
		{"workflow", workflowKey("exec_1", "s", 1), backends.Entry{Value: "w", Created: created, Execution: "exec_1"}},
		{"workflow with TTL", workflowKey("exec_1", "s", 2), backends.Entry{Value: "w2", Created: created, Expires: expires, Execution: "exec_1", Origin: origin, Version: "2"}},
		{"empty execution ID", workflowKey("", "s", 1), backends.Entry{Value: "e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			miss(t, s, tc.key)
			if err := s.Set(ctx, tc.key, tc.in, codec); err != nil {
				t.Fatal(err)
			}
			e := get(t, s, tc.key)
			if e.Value != tc.in.Value || !e.Created.Equal(tc.in.Created) || !e.Expires.Equal(tc.in.Expires) ||
				e.Execution != tc.in.Execution || !bytes.Equal(e.Origin, tc.in.Origin) || e.Version != tc.in.Version ||
				e.Step != tc.key.Step {
				t.Fatalf("Get = %+v\nwant  %+v", e, tc.in)
			}
		})
	}
}

func testReplace(t *testing.T, s backends.Store) {
	k := workflowKey("e", "s", 1)
	set(t, s, k, "first", time.Time{})
	set(t, s, k, "second", time.Now().Add(time.Hour))
	want(t, s, k, "second")
	// A replacement without expiry lifts the old one.
	set(t, s, k, "third", time.Time{})
	if e := get(t, s, k); !e.Expires.IsZero() || e.Value != "third" {
		t.Fatalf("Get = %+v; want third, no expiry", e)
	}
}

// Keys that differ in one component only are different entries.
func testKeysDistinct(t *testing.T, s backends.Store) {
	keys := []keyer.Key{
		globalKey("s", 1),
		workflowKey("a", "s", 1),
		workflowKey("ab", "s", 1), // same Sum; "a" is a prefix of "ab"
		workflowKey("", "s", 1),
		globalKey("s", 2),
	}
	for i, k := range keys {
		set(t, s, k, fmt.Sprint("v", i), time.Time{})
	}
	for i, k := range keys {
		want(t, s, k, fmt.Sprint("v", i))
	}
}

func testValues(t *testing.T, s backends.Store) {
	big := strings.Repeat("0123456789abcdef", 1<<20) // 16 MiB
	binary := string([]byte{0, 0xff, 0xdc, 1, 0, '\n'})
	for i, v := range []string{"", binary, big} {
		k := globalKey("values", i)
		set(t, s, k, v, time.Time{})
		want(t, s, k, v)
	}
	// No TTL, no creation time: stored and never expiring.
	k := globalKey("values", 9)
	if err := s.Set(ctx, k, backends.Entry{Value: "zero"}, codec); err != nil {
		t.Fatal(err)
	}
	if e := get(t, s, k); !e.Expires.IsZero() || !e.Created.IsZero() || e.Value != "zero" {
		t.Fatalf("Get = %+v; want zero times", e)
	}
}

func testExpiry(t *testing.T, s backends.Store) {
	past, soon, live := globalKey("ttl", 1), workflowKey("e", "ttl", 2), globalKey("ttl", 3)
	set(t, s, past, "past", time.Now().Add(-time.Millisecond))
	set(t, s, soon, "soon", time.Now().Add(300*time.Millisecond))
	set(t, s, live, "live", time.Now().Add(time.Hour))
	want(t, s, soon, "soon")
	if _, err := s.Get(ctx, past, codec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get of an expired entry = %v; want ErrNotFound", err)
	}
	time.Sleep(350 * time.Millisecond)
	if _, err := s.Get(ctx, soon, codec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after expiry = %v; want ErrNotFound", err)
	}
	want(t, s, live, "live")

	// Hidden is not enough: the entries must go.
	deadline := time.Now().Add(5 * time.Second)
	for {
		held, how := holds(t, s, 1, past, soon)
		if how == "" {
			t.Logf("%T offers no way to see whether expired entries are removed", s)
			break
		}
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expired entries still stored 5 s after expiry (seen through %s)", held, how)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want(t, s, live, "live")
}

// tiers returns s, and its tiers if it has them.
func tiers(s backends.Store) []backends.Store {
	out := []backends.Store{s}
	if l, ok := s.(backends.Layered); ok {
		out = append(out, l.Front())
		if b, ok := s.(interface{ Back() backends.Store }); ok {
			out = append(out, b.Back())
		}
	}
	return out
}

func byteStore(s backends.Store) backends.ByteStore {
	for _, tier := range tiers(s) {
		if b, ok := tier.(interface{ ByteStore() backends.ByteStore }); ok {
			return b.ByteStore()
		}
	}
	return nil
}

// holds removes expired entries where s offers a way, then reports how
// many of keys are still stored, and what it looked at ("" if nothing).
// live is how many other entries s holds.
func holds(t *testing.T, s backends.Store, live int, keys ...keyer.Key) (int, string) {
	t.Helper()
	var how []string
	n := 0
	for _, tier := range tiers(s) {
		switch d := tier.(type) {
		case interface{ DeleteExpired() int }:
			d.DeleteExpired()
		case interface {
			DeleteExpired(context.Context) (int, error)
		}:
			if _, err := d.DeleteExpired(ctx); err != nil {
				t.Fatalf("DeleteExpired: %v", err)
			}
		}
	}
	if l, ok := s.(interface{ Len() int }); ok {
		how = append(how, "Len")
		n += l.Len() - live
	}
	if bs := byteStore(s); bs != nil {
		how = append(how, "ByteStore.Get")
		for _, k := range keys {
			bk, err := backends.EntryKey(nil, k)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bs.Get(ctx, bk); err == nil {
				n++
			} else if !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("ByteStore.Get: %v", err)
			}
		}
	}
	return n, strings.Join(how, ", ")
}

func testDelete(t *testing.T, s backends.Store) {
	a, b := globalKey("d", 1), workflowKey("e", "d", 1)
	set(t, s, a, "a", time.Time{})
	set(t, s, b, "b", time.Time{})
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	miss(t, s, a)
	want(t, s, b, "b")
	if err := s.Delete(ctx, a); err != nil {
		t.Fatalf("Delete of a missing key = %v; want nil", err)
	}
	set(t, s, a, "again", time.Time{})
	want(t, s, a, "again")
}

func testPurge(t *testing.T, s backends.Store) {
	for i := range 5 {
		set(t, s, workflowKey("a", "p", i), "a", time.Time{})
		set(t, s, workflowKey("a", "q", i), "a", time.Now().Add(time.Hour))
	}
	for i := range 3 {
		set(t, s, workflowKey("ab", "p", i), "ab", time.Time{})
		set(t, s, workflowKey("", "p", i), "empty", time.Time{})
		// A Global entry produced by execution a is not a's to purge.
		if err := s.Set(ctx, globalKey("p", i), backends.Entry{Value: "g", Execution: "a"}, codec); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeExecution(ctx, "a")
	if n != 10 || err != nil {
		t.Fatalf("PurgeExecution(a) = %d, %v; want 10, nil", n, err)
	}
	for i := range 5 {
		miss(t, s, workflowKey("a", "p", i))
		miss(t, s, workflowKey("a", "q", i))
	}
	for i := range 3 {
		want(t, s, workflowKey("ab", "p", i), "ab")
		want(t, s, workflowKey("", "p", i), "empty")
		want(t, s, globalKey("p", i), "g")
	}
	for _, tc := range []struct {
		exec string
		want int
	}{{"a", 0}, {"ab", 3}, {"never-seen", 0}} {
		if n, err := s.PurgeExecution(ctx, tc.exec); n != tc.want || err != nil {
			t.Errorf("PurgeExecution(%q) = %d, %v; want %d, nil", tc.exec, n, err, tc.want)
		}
	}
	for i := range 3 {
		want(t, s, globalKey("p", i), "g")
	}
	// A purged execution can be written again.
	set(t, s, workflowKey("a", "p", 0), "again", time.Time{})
	want(t, s, workflowKey("a", "p", 0), "again")
}

func testPurgeThousands(t *testing.T, s backends.Store) {
	const total, writers = 3000, 8
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := g; i < total; i += writers {
				e := backends.Entry{Value: "x", Execution: "big"}
				if err := s.Set(ctx, workflowKey("big", "step", i), e, codec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	set(t, s, workflowKey("small", "step", 1), "small", time.Time{})
	set(t, s, globalKey("step", 1), "global", time.Time{})
	if n, err := s.PurgeExecution(ctx, "big"); n != total || err != nil {
		t.Fatalf("PurgeExecution(big) = %d, %v; want %d, nil", n, err, total)
	}
	for _, i := range []int{0, 1, total / 2, total - 1} {
		miss(t, s, workflowKey("big", "step", i))
	}
	want(t, s, workflowKey("small", "step", 1), "small")
	want(t, s, globalKey("step", 1), "global")
}

// testRetain: RetainExecution moves the expiry of one execution's entries,
// and of no other entry, to the time given, or keeps their own where it is
// earlier; they are served until then, then read as expired and go.
func testRetain(t *testing.T, s backends.Store) {
	r, ok := s.(scope.Retainer)
	if !ok {
		t.Skipf("%T is not a scope.Retainer: an execution with retention purges it at End(nil)", s)
	}
	now := time.Now()
	until := now.Add(time.Hour)
	own := map[keyer.Key]time.Time{
		workflowKey("r", "a", 1): {},                         // no expiry: until
		workflowKey("r", "a", 2): now.Add(2 * time.Hour),     // later: until
		workflowKey("r", "b", 1): now.Add(30 * time.Minute),  // earlier: its own
		workflowKey("r", "b", 2): now.Add(-time.Millisecond), // expired: not kept
	}
	others := map[keyer.Key]time.Time{
		workflowKey("rb", "a", 1): {}, // an execution whose ID starts with r's
		workflowKey("rb", "a", 2): now.Add(2 * time.Hour),
		workflowKey("", "a", 1):   {},
		globalKey("a", 1):         {},
		globalKey("a", 2):         now.Add(2 * time.Hour),
	}
	for k, exp := range own {
		set(t, s, k, "r", exp)
	}
	for k, exp := range others {
		// A Global entry produced by execution r is not r's.
		e := backends.Entry{Value: "other", Expires: exp, Execution: "r"}
		if err := s.Set(ctx, k, e, codec); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := r.RetainExecution(ctx, "r", until); n != 3 || err != nil {
		t.Fatalf("RetainExecution(r) = %d, %v; want 3, nil", n, err)
	}
	for k, exp := range own {
		if exp.IsZero() || exp.After(until) {
			exp = until
		}
		if !exp.After(now) {
			miss(t, s, k)
			continue
		}
		e := get(t, s, k)
		if e.Value != "r" || !e.Expires.Equal(exp) {
			t.Errorf("Get(%v) after RetainExecution = %s expiring %v; want r expiring %v", k, short(e.Value), e.Expires, exp)
		}
	}
	for k, exp := range others {
		e := get(t, s, k)
		if e.Value != "other" || !e.Expires.Equal(exp) {
			t.Errorf("Get(%v) of another execution or Global = %s expiring %v; want it untouched, expiring %v", k, short(e.Value), e.Expires, exp)
		}
	}
	if n, err := r.RetainExecution(ctx, "never-seen", until); n != 0 || err != nil {
		t.Errorf("RetainExecution(never-seen) = %d, %v; want 0, nil", n, err)
	}

	// A shorter retention shortens it; once it has passed the entries are
	// expired, and removed like any expired entry.
	soon := time.Now().Add(200 * time.Millisecond)
	if n, err := r.RetainExecution(ctx, "r", soon); n != 3 || err != nil {
		t.Fatalf("RetainExecution(r) again = %d, %v; want 3, nil", n, err)
	}
	time.Sleep(time.Until(soon) + 50*time.Millisecond)
	var retained []keyer.Key
	for k := range own {
		miss(t, s, k)
		retained = append(retained, k)
	}
	for k := range others {
		want(t, s, k, "other")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		held, how := holds(t, s, len(others), retained...)
		if how == "" || held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still stored 5 s after their retention ended (seen through %s)", held, how)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for k := range others {
		want(t, s, k, "other")
	}
}

// testRetainMany: RetainExecution keeps every entry of an execution of a
// thousand, some of them of MiBs (a store that works in batches needs
// several, by count and by size), and counts them all.
func testRetainMany(t *testing.T, s backends.Store) {
	r, ok := s.(scope.Retainer)
	if !ok {
		t.Skipf("%T is not a scope.Retainer", s)
	}
	const total, writers = 1000, 8
	big := strings.Repeat("b", 2<<20)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := g; i < total; i += writers {
				e := backends.Entry{Value: "x", Execution: "many"}
				if i%300 == 7 {
					e.Value = big
				}
				if err := s.Set(ctx, workflowKey("many", "step", i), e, codec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	set(t, s, workflowKey("other", "step", 1), "other", time.Time{})
	until := time.Now().Add(time.Hour)
	if n, err := r.RetainExecution(ctx, "many", until); n != total || err != nil {
		t.Fatalf("RetainExecution(many) = %d, %v; want %d, nil", n, err, total)
	}
	for _, i := range []int{0, 7, 307, total / 2, total - 1} {
		e := get(t, s, workflowKey("many", "step", i))
		if v, _ := e.Value.(string); !e.Expires.Equal(until) || (i%300 == 7) != (v == big) {
			t.Errorf("entry %d after RetainExecution: %d bytes expiring %v; want its value expiring %v", i, len(v), e.Expires, until)
		}
	}
	if e := get(t, s, workflowKey("other", "step", 1)); !e.Expires.IsZero() {
		t.Errorf("another execution's entry expires at %v after RetainExecution; want never", e.Expires)
	}
}

// An invalid key (no scope) is an error or a miss, never a panic.
func testInvalidKey(t *testing.T, s backends.Store) {
	bad := keyer.Key{Step: "s"}
	if _, err := s.Get(ctx, bad, codec); err == nil {
		t.Error("Get of an invalid key returned a hit")
	}
	_ = s.Set(ctx, bad, backends.Entry{Value: "v"}, codec)
	_ = s.Delete(ctx, bad)
}

func testCorrupt(t *testing.T, s backends.Store) {
	bs := byteStore(s)
	if bs == nil {
		t.Skipf("%T keeps decoded values: it has no bytes to damage", s)
	}
	k := workflowKey("e", "c", 1)
	bk, err := backends.EntryKey(nil, k)
	if err != nil {
		t.Fatal(err)
	}
	good, err := backends.EncodeEntry(backends.Entry{Value: "good", Created: time.Now()}, codec)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x10
	version := bytes.Clone(good)
	version[1] = 99
	foreign, err := backends.EncodeEntry(backends.Entry{Value: "other"}, otherCodec)
	if err != nil {
		t.Fatal(err)
	}
	undec, err := backends.EncodeEntry(backends.Entry{Value: undecodable}, codec)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"garbage", []byte("garbage that is long enough to be an entry")},
		{"empty", []byte{}},
		{"truncated", good[:len(good)-3]},
		{"flipped bit", flipped},
		{"unknown format version", version},
		{"other codec", foreign},
		{"undecodable", undec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := backends.Record{Key: bk, Value: tc.bytes, Meta: backends.Meta{Step: k.Step, Scope: k.Scope, Execution: k.Execution, Codec: codec.ID()}}
			if err := bs.Put(ctx, []backends.Record{rec}); err != nil {
				t.Fatal(err)
			}
			e, err := s.Get(ctx, k, codec)
			if !errors.Is(err, backends.ErrCorrupt) || errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Get = %s, %v; want ErrCorrupt (and not ErrNotFound)", short(e.Value), err)
			}
			// What the middleware does next: overwrite.
			set(t, s, k, "fixed", time.Time{})
			want(t, s, k, "fixed")
			// A purge removes damaged entries too.
			if err := bs.Put(ctx, []backends.Record{rec}); err != nil {
				t.Fatal(err)
			}
			if n, err := s.PurgeExecution(ctx, "e"); n != 1 || err != nil {
				t.Fatalf("PurgeExecution of a damaged entry = %d, %v; want 1, nil", n, err)
			}
			miss(t, s, k)
		})
	}
}

func testConcurrent(t *testing.T, s backends.Store) {
	const goroutines, ops, keys = 8, 200, 16
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			exec := fmt.Sprint("e", g%2)
			for i := range ops {
				k := workflowKey(exec, "c", i%keys)
				if i%3 == 0 {
					k = globalKey("c", i%keys)
				}
				v := fmt.Sprintf("v%d", i%keys)
				switch i % 10 {
				case 7:
					if err := s.Delete(ctx, k); err != nil {
						t.Error(err)
						return
					}
				case 9:
					if _, err := s.PurgeExecution(ctx, exec); err != nil {
						t.Error(err)
						return
					}
				default:
					e := backends.Entry{Value: v, Execution: exec}
					if err := s.Set(ctx, k, e, codec); err != nil {
						t.Error(err)
						return
					}
				}
				e, err := s.Get(ctx, k, codec)
				switch {
				case errors.Is(err, backends.ErrNotFound):
				case err != nil:
					t.Errorf("Get(%v) = %v", k, err)
					return
				case e.Value != v:
					// Every writer of a key writes the same value.
					t.Errorf("Get(%v) = %v; want %s", k, e.Value, v)
					return
				}
			}
		})
	}
	wg.Wait()
}

func testClosed(t *testing.T, s backends.Store) {
	c, ok := s.(interface{ Close() error })
	if !ok {
		t.Skipf("%T has no Close", s)
	}
	k := globalKey("closed", 1)
	set(t, s, k, "v", time.Time{})
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, f := range map[string]func() error{
		"Get":            func() error { _, err := s.Get(ctx, k, codec); return err },
		"Set":            func() error { return s.Set(ctx, k, backends.Entry{Value: "w"}, codec) },
		"Delete":         func() error { return s.Delete(ctx, k) },
		"PurgeExecution": func() error { _, err := s.PurgeExecution(ctx, "e"); return err },
		"RetainExecution": func() error {
			r, ok := s.(scope.Retainer)
			if !ok {
				return backends.ErrClosed // nothing to check
			}
			_, err := r.RetainExecution(ctx, "e", time.Now().Add(time.Hour))
			return err
		},
	} {
		if err := f(); !errors.Is(err, backends.ErrClosed) {
			t.Errorf("%s after Close = %v; want ErrClosed", name, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
}
