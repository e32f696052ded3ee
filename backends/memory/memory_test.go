package memory_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var ctx = context.Background()

// globalKey returns the i-th Global key; its Sum is a real SHA-256, so keys
// spread over shards as the keyer's would.
func globalKey(i int) keyer.Key {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return keyer.Key{Scope: scope.Global, Step: "step", Sum: sha256.Sum256(b[:])}
}

// workflowKey returns the i-th key of execution exec. Its Sum equals
// globalKey(i)'s, as the same step and input would give.
func workflowKey(exec string, i int) keyer.Key {
	k := globalKey(i)
	k.Scope, k.Execution = scope.Workflow, exec
	return k
}

func set(t testing.TB, s *memory.Store, k keyer.Key, v any, expires time.Time) {
	t.Helper()
	if err := s.Set(ctx, k, backends.Entry{Value: v, Expires: expires, Execution: k.Execution}, nil); err != nil {
		t.Fatalf("Set(%v): %v", k, err)
	}
}

func hit(t testing.TB, s *memory.Store, k keyer.Key) any {
	t.Helper()
	e, err := s.Get(ctx, k, nil)
	if err != nil {
		t.Fatalf("Get(%v): %v, want a hit", k, err)
	}
	return e.Value
}

func miss(t testing.TB, s *memory.Store, k keyer.Key) {
	t.Helper()
	if e, err := s.Get(ctx, k, nil); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get(%v) = %v, %v; want ErrNotFound", k, e.Value, err)
	}
}

func TestNewPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"New(0)", func() { memory.New(0) }},
		{"New(-1)", func() { memory.New(-1) }},
		{"WithShards(0)", func() { memory.WithShards(0) }},
		{"WithShards(-4)", func() { memory.WithShards(-4) }},
		{"WithShards(3)", func() { memory.WithShards(3) }},
		{"WithShards(48)", func() { memory.WithShards(48) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tc.name)
				}
			}()
			tc.f()
		})
	}
}

func TestShards(t *testing.T) {
	for _, tc := range []struct {
		maxEntries int
		opts       []memory.Option
		wantShards int
	}{
		{1, nil, 1},
		{16, nil, 1},
		{47, nil, 2},
		{100, nil, 4},
		{1024, nil, 64},
		{10_000, nil, 64},
		{10_000, []memory.Option{memory.WithShards(1)}, 1},
		{10_000, []memory.Option{memory.WithShards(256)}, 64}, // at most 64
		// Too few entries for the shards asked: every shard holds at least one.
		{1, []memory.Option{memory.WithShards(64)}, 1},
		{3, []memory.Option{memory.WithShards(64)}, 2},
		{17, []memory.Option{memory.WithShards(64)}, 16},
	} {
		t.Run(fmt.Sprint(tc.maxEntries, "/", tc.wantShards), func(t *testing.T) {
			s := memory.New(tc.maxEntries, tc.opts...)
			if got := s.NumShards(); got != tc.wantShards {
				t.Errorf("shards = %d, want %d", got, tc.wantShards)
			}
			total := 0
			for _, c := range s.ShardCapacities() {
				if c < 1 {
					t.Errorf("shard capacity %d", c)
				}
				total += c
			}
			if total != tc.maxEntries {
				t.Errorf("total capacity = %d, want %d", total, tc.maxEntries)
			}
		})
	}
}

func TestNeverMoreThanMaxEntries(t *testing.T) {
	for _, maxEntries := range []int{1, 3, 17, 100, 1000} {
		for _, shards := range []int{0, 1, 4, 64} {
			t.Run(fmt.Sprintf("max=%d/shards=%d", maxEntries, shards), func(t *testing.T) {
				var opts []memory.Option
				if shards > 0 {
					opts = append(opts, memory.WithShards(shards))
				}
				s := memory.New(maxEntries, opts...)
				caps := s.ShardCapacities()
				for i := range 10 * maxEntries {
					k := globalKey(i)
					if i%3 != 0 {
						k = workflowKey(fmt.Sprint("exec", i%5), i)
					}
					set(t, s, k, i, time.Time{})
					if n := s.Len(); n > maxEntries {
						t.Fatalf("after %d Sets: Len = %d > %d", i+1, n, maxEntries)
					}
				}
				for i, n := range s.ShardLens() {
					if n > caps[i] {
						t.Errorf("shard %d holds %d > its capacity %d", i, n, caps[i])
					}
				}
				if keys, _ := s.IndexSize(); keys != s.ExecEntries() {
					t.Errorf("index holds %d keys, store %d execution entries", keys, s.ExecEntries())
				}
			})
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	const maxEntries = 64
	s := memory.New(maxEntries, memory.WithShards(8))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 5000 {
				i := r.IntN(200)
				k := globalKey(i)
				if i%2 == 0 {
					k = workflowKey(fmt.Sprint("exec", i%7), i)
				}
				switch op := r.IntN(100); {
				case op < 50:
					if e, err := s.Get(ctx, k, nil); err == nil && e.Value != i {
						t.Errorf("Get(%d) = %v", i, e.Value)
						return
					}
				case op < 90:
					var exp time.Time
					if op%2 == 0 {
						exp = time.Now().Add(time.Duration(r.IntN(2000)) * time.Microsecond)
					}
					set(t, s, k, i, exp)
				case op < 95:
					_ = s.Delete(ctx, k)
				case op < 98:
					_, _ = s.PurgeExecution(ctx, fmt.Sprint("exec", i%7))
				default:
					s.DeleteExpired()
				}
				if n := s.Len(); n > maxEntries {
					t.Errorf("Len = %d > %d", n, maxEntries)
					return
				}
			}
		})
	}
	wg.Wait()
	if keys, _ := s.IndexSize(); keys != s.ExecEntries() {
		t.Errorf("index holds %d keys, store %d execution entries", keys, s.ExecEntries())
	}
}

func TestLRUEvictionOrder(t *testing.T) {
	s := memory.New(3, memory.WithShards(1))
	a, b, c, d, e := globalKey(1), globalKey(2), globalKey(3), globalKey(4), globalKey(5)
	set(t, s, a, "a", time.Time{})
	set(t, s, b, "b", time.Time{})
	set(t, s, c, "c", time.Time{})
	hit(t, s, a)                    // recency, newest first: a c b
	set(t, s, d, "d", time.Time{})  // evicts b: d a c
	set(t, s, c, "c2", time.Time{}) // replacing counts as use: c d a
	set(t, s, e, "e", time.Time{})  // evicts a: e c d
	miss(t, s, b)
	miss(t, s, a)
	for k, want := range map[keyer.Key]string{c: "c2", d: "d", e: "e"} {
		if got := hit(t, s, k); got != want {
			t.Errorf("Get = %v, want %v", got, want)
		}
	}
}

func TestGet(t *testing.T) {
	s := memory.New(100)
	type user struct{ name string }
	v := &user{"alice"}
	k := workflowKey("exec1", 1)
	created := time.Now()
	expires := created.Add(time.Hour)
	in := backends.Entry{Value: v, Created: created, Expires: expires, Execution: "exec1", Origin: []byte("trace"), Tier: "whatever"}
	if err := s.Set(ctx, k, in, nil); err != nil {
		t.Fatal(err)
	}

	k.Step = "display name only"
	got, err := s.Get(ctx, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Value.(*user) != v {
		t.Errorf("Get returned a different value: %p, stored %p", got.Value, v)
	}
	want := in
	want.Tier = "memory"
	want.Step = "step" // an empty Step is recorded as the key's at Set
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Get = %+v, want %+v", got, want)
	}

	// Neither a Global key nor another execution's key with the same Sum
	// sees the entry.
	for _, other := range []keyer.Key{globalKey(1), workflowKey("exec2", 1)} {
		if _, err := s.Get(ctx, other, nil); err != backends.ErrNotFound {
			t.Errorf("Get(%v) = %v, want the ErrNotFound sentinel itself", other, err)
		}
	}
	if name := s.Name(); name != "memory" {
		t.Errorf("Name = %q", name)
	}
}

func TestDelete(t *testing.T) {
	s := memory.New(100)
	k := workflowKey("exec1", 1)
	set(t, s, k, 1, time.Time{})
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	miss(t, s, k)
	if err := s.Delete(ctx, k); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if keys, _ := s.IndexSize(); keys != 0 {
		t.Errorf("index still holds %d keys", keys)
	}
}

func TestExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expires func() time.Time
		wait    time.Duration
		wantErr error // nil: a hit
	}{
		{"never", func() time.Time { return time.Time{} }, 0, nil},
		{"future", func() time.Time { return time.Now().Add(time.Hour) }, 0, nil},
		// Decoded from a byte tier: no monotonic reading.
		{"future wall clock", func() time.Time { return time.Now().Add(time.Hour).Round(0) }, 0, nil},
		{"far future", func() time.Time { return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }, 0, nil},
		{"expires", func() time.Time { return time.Now().Add(2 * time.Millisecond) }, 10 * time.Millisecond, backends.ErrExpired},
		{"expires wall clock", func() time.Time { return time.Now().Add(2 * time.Millisecond).Round(0) }, 10 * time.Millisecond, backends.ErrExpired},
		// Not stored at all, so a plain miss.
		{"already expired", func() time.Time { return time.Now().Add(-time.Second) }, 0, backends.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := memory.New(100)
			k := workflowKey("exec", 1)
			set(t, s, k, "old", time.Time{})
			set(t, s, k, "new", tc.expires())
			time.Sleep(tc.wait)
			e, err := s.Get(ctx, k, nil)
			if tc.wantErr == nil {
				if err != nil || e.Value != "new" {
					t.Fatalf("Get = %v, %v; want new, nil", e.Value, err)
				}
				return
			}
			if err != tc.wantErr || !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Get = %v, %v; want %v (also ErrNotFound)", e.Value, err, tc.wantErr)
			}
			if s.Holds(k) {
				t.Error("the expired entry is still held")
			}
			if keys, _ := s.IndexSize(); keys != 0 {
				t.Errorf("index still holds %d keys", keys)
			}
			miss(t, s, k)
		})
	}
}

func TestExpiredSweptBySets(t *testing.T) {
	const capacity = 100
	soon := func() time.Time { return time.Now().Add(time.Millisecond) }

	t.Run("at the LRU tail", func(t *testing.T) {
		s := memory.New(capacity, memory.WithShards(1))
		for i := range 50 {
			set(t, s, workflowKey("exec", i), i, soon())
		}
		time.Sleep(5 * time.Millisecond)
		fresh := globalKey(1000)
		for range 25 { // each Set drops two from the tail
			set(t, s, fresh, 0, time.Time{})
		}
		if n := s.Len(); n != 1 {
			t.Errorf("Len = %d, want 1", n)
		}
		if keys, _ := s.IndexSize(); keys != 0 {
			t.Errorf("index still holds %d keys", keys)
		}
	})

	t.Run("behind live entries", func(t *testing.T) {
		s := memory.New(capacity, memory.WithShards(1))
		for i := range 10 { // older than the expiring ones, never used again
			set(t, s, globalKey(i), i, time.Time{})
		}
		for i := range 50 {
			set(t, s, workflowKey("exec", i), i, soon())
		}
		time.Sleep(5 * time.Millisecond)
		fresh := globalKey(1000)
		for range capacity { // a full sweep runs within capacity Sets
			set(t, s, fresh, 0, time.Time{})
		}
		if n := s.Len(); n != 11 {
			t.Errorf("Len = %d, want 11", n)
		}
		if keys, _ := s.IndexSize(); keys != 0 {
			t.Errorf("index still holds %d keys", keys)
		}
		for i := range 10 {
			hit(t, s, globalKey(i))
		}
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		s := memory.New(capacity)
		for i := range 10 {
			set(t, s, globalKey(i), i, time.Time{})
		}
		for i := range 30 {
			set(t, s, workflowKey("exec", i), i, soon())
		}
		time.Sleep(5 * time.Millisecond)
		if n := s.DeleteExpired(); n != 30 {
			t.Errorf("DeleteExpired = %d, want 30", n)
		}
		if n := s.Len(); n != 10 {
			t.Errorf("Len = %d, want 10", n)
		}
		if n := s.DeleteExpired(); n != 0 {
			t.Errorf("second DeleteExpired = %d, want 0", n)
		}
	})
}

func TestPurgeExecution(t *testing.T) {
	s := memory.New(1000)
	for i := range 20 {
		set(t, s, workflowKey("a", i), i, time.Time{})
	}
	for i := range 15 {
		set(t, s, workflowKey("b", i), i, time.Time{})
	}
	for i := range 10 { // same Sums as a's and b's
		set(t, s, globalKey(i), i, time.Time{})
	}
	for _, tc := range []struct {
		exec string
		want int
	}{
		{"", 0}, // Global entries are not an execution
		{"a", 20},
		{"a", 0},
		{"unknown", 0},
	} {
		n, err := s.PurgeExecution(ctx, tc.exec)
		if err != nil || n != tc.want {
			t.Errorf("PurgeExecution(%q) = %d, %v; want %d", tc.exec, n, err, tc.want)
		}
	}
	for i := range 20 {
		miss(t, s, workflowKey("a", i))
	}
	for i := range 15 {
		hit(t, s, workflowKey("b", i))
	}
	for i := range 10 {
		hit(t, s, globalKey(i))
	}
	if keys, execs := s.IndexSize(); keys != 15 || execs > s.NumShards() {
		t.Errorf("index holds %d keys of %d shard-executions, want 15 keys of b only", keys, execs)
	}
}

func TestPurgeExecutionAfterEvictions(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			s := memory.New(16, memory.WithShards(shards))
			for i := range 100 {
				switch i % 3 {
				case 0:
					set(t, s, workflowKey("a", i), i, time.Time{})
				case 1:
					set(t, s, workflowKey("b", i), i, time.Time{})
				default:
					set(t, s, globalKey(i), i, time.Time{})
				}
			}
			if keys, _ := s.IndexSize(); keys != s.ExecEntries() {
				t.Fatalf("index holds %d keys, store %d execution entries: evicted keys leak", keys, s.ExecEntries())
			}
			count := func(exec string, rem int) int {
				n := 0
				for i := rem; i < 100; i += 3 {
					k := globalKey(i)
					if exec != "" {
						k = workflowKey(exec, i)
					}
					if s.Holds(k) {
						n++
					}
				}
				return n
			}
			heldA, heldB, heldG := count("a", 0), count("b", 1), count("", 2)
			if n, _ := s.PurgeExecution(ctx, "a"); n != heldA {
				t.Errorf("PurgeExecution(a) = %d, want %d", n, heldA)
			}
			if got := count("a", 0); got != 0 {
				t.Errorf("%d entries of a left", got)
			}
			if got := count("b", 1); got != heldB {
				t.Errorf("b entries: %d, want %d", got, heldB)
			}
			if got := count("", 2); got != heldG {
				t.Errorf("Global entries: %d, want %d", got, heldG)
			}
			if keys, _ := s.IndexSize(); keys != heldB {
				t.Errorf("index holds %d keys, want %d", keys, heldB)
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	s := memory.New(1000)
	forever := workflowKey("exec", 1)
	ttl := globalKey(2)
	set(t, s, forever, 1, time.Time{})
	set(t, s, ttl, 2, time.Now().Add(time.Hour))
	absent := globalKey(3)
	for _, tc := range []struct {
		name string
		key  keyer.Key
	}{
		{"hit", forever},
		{"hit with TTL", ttl},
		{"miss", absent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, func() { _, _ = s.Get(ctx, tc.key, nil) }); n != 0 {
				t.Errorf("Get allocates %v times", n)
			}
		})
	}
}

func TestPurgeVisitsOnlyItsShards(t *testing.T) {
	s := memory.New(10_000)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		set(t, s, workflowKey("exec_a", i), i, time.Time{})
	}
	for i := 0; i < 500; i++ {
		set(t, s, workflowKey("exec_b", i), i, time.Time{})
	}
	if n, _ := s.PurgeExecution(ctx, "exec_a"); n != 5 {
		t.Fatalf("purged %d, want 5", n)
	}
	if n := s.ExecShardsTracked(); n != 1 {
		t.Fatalf("%d executions tracked after purging exec_a, want 1", n)
	}
	// Entries evicted without a purge leave nothing tracked behind.
	small := memory.New(4, memory.WithShards(1))
	for i := 0; i < 100; i++ {
		set(t, small, workflowKey(fmt.Sprint("exec_", i), i), i, time.Time{})
	}
	if n := small.ExecShardsTracked(); n != 4 {
		t.Fatalf("%d executions tracked in a 4-entry store, want 4", n)
	}
}

// TestHitsKeepEntriesAlive: an entry hit between inserts survives a stream
// of inserts that evicts entries nobody reads, although hits move entries
// only once they have aged.
func TestHitsKeepEntriesAlive(t *testing.T) {
	s := memory.New(8, memory.WithShards(1))
	hot := globalKey(0)
	set(t, s, hot, "hot", time.Time{})
	for i := 1; i < 200; i++ {
		set(t, s, globalKey(i), i, time.Time{})
		hit(t, s, hot)
	}
	miss(t, s, globalKey(1))
}
