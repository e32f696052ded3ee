package badger_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var ctx = context.Background()

// user is a small result struct, the kind a step returns.
type user struct {
	ID    int      `json:"id"`
	Name  string   `json:"name"`
	Email string   `json:"email"`
	Tags  []string `json:"tags"`
}

// jsonCodec is a real codec, as the middleware binds one to a step's result
// type.
type jsonCodec[T any] struct{}

func (jsonCodec[T]) ID() uint8 { return 1 }

func (jsonCodec[T]) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec[T]) Decode(data []byte) (any, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

var userCodec backends.Codec = jsonCodec[*user]{}

// otherCodec has another ID: its bytes must never be decoded as userCodec's.
type otherCodec struct{ jsonCodec[*user] }

func (otherCodec) ID() uint8 { return 2 }

func newUser(i int) *user {
	return &user{ID: i, Name: fmt.Sprintf("user %d", i), Email: fmt.Sprintf("u%d@example.com", i), Tags: []string{"a", "b"}}
}

func globalKey(i int) keyer.Key {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return keyer.Key{Scope: scope.Global, Step: "step", Sum: sha256.Sum256(b[:])}
}

func workflowKey(exec string, i int) keyer.Key {
	k := globalKey(i)
	k.Scope, k.Execution = scope.Workflow, exec
	return k
}

func open(t testing.TB, dir string, opts ...badger.Option) *badger.Store {
	t.Helper()
	s, err := badger.Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func set(t testing.TB, s backends.Store, k keyer.Key, v *user, expires time.Time) {
	t.Helper()
	e := backends.Entry{Value: v, Created: time.Now(), Expires: expires, Execution: k.Execution}
	if err := s.Set(ctx, k, e, userCodec); err != nil {
		t.Fatalf("Set(%v): %v", k, err)
	}
}

func hit(t testing.TB, s backends.Store, k keyer.Key) backends.Entry {
	t.Helper()
	e, err := s.Get(ctx, k, userCodec)
	if err != nil {
		t.Fatalf("Get(%v): %v, want a hit", k, err)
	}
	return e
}

func wantUser(t testing.TB, s backends.Store, k keyer.Key, want *user) {
	t.Helper()
	e := hit(t, s, k)
	got, ok := e.Value.(*user)
	if !ok || got.ID != want.ID || got.Name != want.Name || got.Email != want.Email || strings.Join(got.Tags, ",") != strings.Join(want.Tags, ",") {
		t.Fatalf("Get(%v) = %#v, want %#v", k, e.Value, want)
	}
}

func miss(t testing.TB, s backends.Store, k keyer.Key) {
	t.Helper()
	if e, err := s.Get(ctx, k, userCodec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get(%v) = %v, %v; want ErrNotFound", k, e.Value, err)
	}
}

func TestSetGet(t *testing.T) {
	s := open(t, t.TempDir())
	created := time.Now().Add(-time.Minute)
	expires := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name    string
		key     keyer.Key
		expires time.Time
	}{
		{"global", globalKey(1), time.Time{}},
		{"global with TTL", globalKey(2), expires},
		{"workflow", workflowKey("exec_1", 1), time.Time{}},
		{"workflow with TTL", workflowKey("exec_1", 2), expires},
		{"empty execution ID", workflowKey("", 1), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			miss(t, s, tc.key)
			in := backends.Entry{Value: newUser(7), Created: created, Expires: tc.expires, Execution: "producer"}
			if err := s.Set(ctx, tc.key, in, userCodec); err != nil {
				t.Fatal(err)
			}
			e := hit(t, s, tc.key)
			if !e.Created.Equal(created) || !e.Expires.Equal(tc.expires) || e.Execution != "producer" || e.Tier != "badger" {
				t.Fatalf("Get = %+v; want Created %v, Expires %v, Execution producer, Tier badger", e, created, tc.expires)
			}
			wantUser(t, s, tc.key, newUser(7))

			set(t, s, tc.key, newUser(8), tc.expires) // Set replaces
			wantUser(t, s, tc.key, newUser(8))
		})
	}
	// Workflow keys of other executions, and the Global key with the same
	// Sum, are different keys.
	miss(t, s, workflowKey("exec_2", 1))
	miss(t, s, globalKey(3))
	if got := s.Name(); got != "badger" {
		t.Errorf("Name() = %q", got)
	}
}

func TestInvalidKey(t *testing.T) {
	s := open(t, t.TempDir())
	bad := keyer.Key{Scope: 0}
	if _, err := s.Get(ctx, bad, userCodec); !errors.Is(err, keyer.ErrInvalidKey) {
		t.Errorf("Get = %v; want ErrInvalidKey", err)
	}
	if err := s.Set(ctx, bad, backends.Entry{Value: newUser(1)}, userCodec); !errors.Is(err, keyer.ErrInvalidKey) {
		t.Errorf("Set = %v; want ErrInvalidKey", err)
	}
	if err := s.Delete(ctx, bad); !errors.Is(err, keyer.ErrInvalidKey) {
		t.Errorf("Delete = %v; want ErrInvalidKey", err)
	}
}

func TestSetEncodeError(t *testing.T) {
	s := open(t, t.TempDir())
	k := globalKey(1)
	if err := s.Set(ctx, k, backends.Entry{Value: func() {}}, userCodec); err == nil {
		t.Fatal("Set of a value the codec cannot encode succeeded")
	}
	miss(t, s, k)
}

// A write Badger rejects fails alone; the store keeps working.
func TestSetTooLarge(t *testing.T) {
	s := open(t, t.TempDir())
	huge := workflowKey(strings.Repeat("x", 70_000), 1) // Badger keys are at most 65,000 bytes
	if err := s.Set(ctx, huge, backends.Entry{Value: newUser(1)}, userCodec); err == nil {
		t.Fatal("Set with a 70 kB key succeeded")
	}
	set(t, s, globalKey(1), newUser(1), time.Time{})
	wantUser(t, s, globalKey(1), newUser(1))
}

// TTLs go to Badger too, so that Badger itself drops expired entries (and
// compaction reclaims them), not only the entry header's check.
func TestTTLExpiry(t *testing.T) {
	s := open(t, t.TempDir())
	start := time.Now()
	short, long, never := globalKey(1), globalKey(2), globalKey(3)
	set(t, s, short, newUser(1), start.Add(time.Second))
	set(t, s, long, newUser(2), start.Add(time.Hour))
	set(t, s, never, newUser(3), time.Time{})
	wantUser(t, s, short, newUser(1))

	// Badger's expiry has one-second resolution, rounded up: it drops the
	// entry once that second has begun.
	badgerExpiry := time.Unix(int64(badger.ExpiresAt(start.Add(time.Second))), 0)
	time.Sleep(time.Until(badgerExpiry) + 50*time.Millisecond)

	if e, err := s.Get(ctx, short, userCodec); !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get after expiry = %v, %v; want ErrNotFound", e.Value, err)
	}
	if _, err := badger.GetRaw(s, short); !errors.Is(err, badgerdb.ErrKeyNotFound) {
		t.Fatalf("Badger still has the expired entry: %v", err)
	}
	wantUser(t, s, long, newUser(2))
	wantUser(t, s, never, newUser(3))
}

// Within Badger's last second, the header's exact expiry decides.
func TestExpiryBeforeBadgerDrops(t *testing.T) {
	s := open(t, t.TempDir())
	k := globalKey(1)
	set(t, s, k, newUser(1), time.Now().Add(-time.Millisecond))
	_, err := s.Get(ctx, k, userCodec)
	if !errors.Is(err, backends.ErrNotFound) {
		t.Fatalf("Get of an entry past its Expires = %v; want ErrNotFound", err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	keys := []keyer.Key{globalKey(1), globalKey(2), workflowKey("exec_1", 1), workflowKey("exec_1", 2)}
	for i, k := range keys {
		set(t, s, k, newUser(i), time.Now().Add(time.Hour))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	for i, k := range keys {
		wantUser(t, s, k, newUser(i))
	}
	// The reopened store purges what the first one wrote.
	if n, err := s.PurgeExecution(ctx, "exec_1"); n != 2 || err != nil {
		t.Fatalf("PurgeExecution = %d, %v; want 2, nil", n, err)
	}
}

func TestPurgeExecution(t *testing.T) {
	s := open(t, t.TempDir())
	// "a" is a prefix of "ab" as a string, but not as a key prefix.
	const perExec = 600 // more than one purge check interval
	for i := range perExec {
		set(t, s, workflowKey("a", i), newUser(i), time.Time{})
	}
	for i := range 3 {
		set(t, s, workflowKey("ab", i), newUser(i), time.Time{})
		set(t, s, workflowKey("", i), newUser(i), time.Time{})
		set(t, s, globalKey(i), newUser(i), time.Time{})
	}
	n, err := s.PurgeExecution(ctx, "a")
	if n != perExec || err != nil {
		t.Fatalf("PurgeExecution(a) = %d, %v; want %d, nil", n, err, perExec)
	}
	for i := range perExec {
		miss(t, s, workflowKey("a", i))
	}
	for i := range 3 {
		wantUser(t, s, workflowKey("ab", i), newUser(i))
		wantUser(t, s, workflowKey("", i), newUser(i))
		wantUser(t, s, globalKey(i), newUser(i))
	}
	if n, err := s.PurgeExecution(ctx, "a"); n != 0 || err != nil {
		t.Fatalf("second PurgeExecution(a) = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.PurgeExecution(ctx, "ab"); n != 3 || err != nil {
		t.Fatalf("PurgeExecution(ab) = %d, %v; want 3, nil", n, err)
	}
	if n, err := s.PurgeExecution(ctx, "never-seen"); n != 0 || err != nil {
		t.Fatalf("PurgeExecution(never-seen) = %d, %v; want 0, nil", n, err)
	}
}

// purgeCtx is a context that ends after a number of Err checks, to stop a
// purge midway.
type purgeCtx struct {
	context.Context
	mu     sync.Mutex
	checks int
}

func (c *purgeCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks--
	if c.checks < 0 {
		return context.Canceled
	}
	return nil
}

func TestPurgeExecutionCancelled(t *testing.T) {
	s := open(t, t.TempDir())
	const total = 1000
	for i := range total {
		set(t, s, workflowKey("a", i), newUser(i), time.Time{})
	}
	n, err := s.PurgeExecution(&purgeCtx{Context: ctx, checks: 2}, "a")
	if !errors.Is(err, context.Canceled) || n <= 0 || n >= total {
		t.Fatalf("cancelled PurgeExecution = %d, %v; want 0 < n < %d and context.Canceled", n, err, total)
	}
	// The count is true: exactly n entries are gone.
	rest, err := s.PurgeExecution(ctx, "a")
	if err != nil || n+rest != total {
		t.Fatalf("PurgeExecution after a cancelled one = %d, %v; want %d", rest, err, total-n)
	}
}

func TestDelete(t *testing.T) {
	s := open(t, t.TempDir())
	a, b := globalKey(1), workflowKey("e", 1)
	set(t, s, a, newUser(1), time.Time{})
	set(t, s, b, newUser(2), time.Time{})
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	miss(t, s, a)
	wantUser(t, s, b, newUser(2))
	if err := s.Delete(ctx, a); err != nil {
		t.Fatalf("Delete of a missing key = %v; want nil", err)
	}
}

func TestCancelledContext(t *testing.T) {
	s := open(t, t.TempDir())
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(cctx, globalKey(1), userCodec); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v", err)
	}
	if err := s.Set(cctx, globalKey(1), backends.Entry{Value: newUser(1)}, userCodec); !errors.Is(err, context.Canceled) {
		t.Errorf("Set = %v", err)
	}
	if err := s.Delete(cctx, globalKey(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete = %v", err)
	}
	if _, err := s.PurgeExecution(cctx, "e"); !errors.Is(err, context.Canceled) {
		t.Errorf("PurgeExecution = %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := open(t, t.TempDir())
	set(t, s, globalKey(1), newUser(1), time.Time{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, f := range map[string]func() error{
		"Get": func() error { _, err := s.Get(ctx, globalKey(1), userCodec); return err },
		"Set": func() error {
			return s.Set(ctx, globalKey(2), backends.Entry{Value: newUser(2)}, userCodec)
		},
		"Delete":         func() error { return s.Delete(ctx, globalKey(1)) },
		"PurgeExecution": func() error { _, err := s.PurgeExecution(ctx, "e"); return err },
	} {
		if err := f(); !errors.Is(err, backends.ErrClosed) {
			t.Errorf("%s after Close = %v; want ErrClosed", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
}

// Calls racing Close either finish or fail with ErrClosed; none reaches a
// closed Badger.
func TestCloseDuringCalls(t *testing.T) {
	s := open(t, t.TempDir())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				exec := fmt.Sprint("e", g)
				k := workflowKey(exec, i)
				err := s.Set(ctx, k, backends.Entry{Value: newUser(i)}, userCodec)
				if err == nil {
					_, err = s.Get(ctx, k, userCodec)
				}
				if err == nil && i%50 == 0 {
					_, err = s.PurgeExecution(ctx, exec)
				}
				if err != nil {
					if !errors.Is(err, backends.ErrClosed) {
						t.Errorf("call racing Close = %v; want nil or ErrClosed", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	var cg sync.WaitGroup
	for range 3 {
		cg.Go(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	cg.Wait()
	wg.Wait()
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	_, err := badger.Open(dir)
	if !errors.Is(err, badger.ErrLocked) {
		t.Fatalf("second Open of a held directory = %v; want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("error %q does not say the directory is in use", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, dir) // free again
}

func TestOpenError(t *testing.T) {
	dir := t.TempDir() + "/file"
	if err := writeFile(dir); err != nil {
		t.Fatal(err)
	}
	_, err := badger.Open(dir)
	if err == nil || errors.Is(err, badger.ErrLocked) {
		t.Fatalf("Open of a regular file = %v; want an error other than ErrLocked", err)
	}
}

// Damaged bytes under a key are reported as ErrCorrupt (the middleware then
// runs the step and overwrites them), never a hit and never a panic.
func TestCorrupt(t *testing.T) {
	s := open(t, t.TempDir())
	k := globalKey(1)
	set(t, s, k, newUser(1), time.Time{})
	good, err := badger.GetRaw(s, k)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x10
	version := append([]byte(nil), good...)
	version[1] = 99
	undecodable, err := backends.EncodeEntry(backends.Entry{Value: "not a user"}, rawJSON{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		bytes []byte
		codec backends.Codec
	}{
		{"garbage", []byte("garbage that is long enough to be an entry"), userCodec},
		{"empty", []byte{}, userCodec},
		{"truncated", good[:len(good)-3], userCodec},
		{"flipped bit", flipped, userCodec},
		{"unknown version", version, userCodec},
		{"other codec", good, otherCodec{}},
		{"undecodable", undecodable, userCodec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := badger.SetRaw(s, k, tc.bytes); err != nil {
				t.Fatal(err)
			}
			e, err := s.Get(ctx, k, tc.codec)
			if !errors.Is(err, backends.ErrCorrupt) || errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("Get = %v, %v; want ErrCorrupt (and not ErrNotFound)", e.Value, err)
			}
			// What the middleware does next: overwrite.
			set(t, s, k, newUser(2), time.Time{})
			wantUser(t, s, k, newUser(2))
		})
	}
}

// rawJSON's payload is a JSON string, which userCodec cannot decode into a
// *user; it has userCodec's ID.
type rawJSON struct{ jsonCodec[string] }

func TestConcurrent(t *testing.T) {
	for _, syncWrites := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", syncWrites), func(t *testing.T) {
			s := open(t, t.TempDir(), badger.WithSyncWrites(syncWrites))
			const writers, perWriter = 16, 40
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range perWriter {
						// Half the keys are shared: concurrent Sets of one key
						// land in one group commit.
						k := globalKey(g*perWriter + i)
						if i%2 == 0 {
							k = globalKey(i)
						}
						if err := s.Set(ctx, k, backends.Entry{Value: newUser(i)}, userCodec); err != nil {
							t.Error(err)
							return
						}
						if e, err := s.Get(ctx, k, userCodec); err != nil || e.Value.(*user).ID != i {
							t.Errorf("Get after Set = %v, %v; want user %d", e.Value, err, i)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestTiered(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	s := backends.Tiered(memory.New(100), db)
	g, w := globalKey(1), workflowKey("exec_1", 1)
	set(t, s, g, newUser(1), time.Time{})
	set(t, s, w, newUser(2), time.Time{})
	if e := hit(t, s, g); e.Tier != "memory" {
		t.Fatalf("Tier = %q, want memory", e.Tier)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process: an empty front tier before the same directory.
	db = open(t, dir)
	s = backends.Tiered(memory.New(100), db)
	if e := hit(t, s, w); e.Tier != "badger" {
		t.Fatalf("Tier = %q after reopen, want badger", e.Tier)
	}
	if e := hit(t, s, w); e.Tier != "memory" {
		t.Fatalf("Tier = %q after promotion, want memory", e.Tier)
	}
	wantUser(t, s, w, newUser(2))
	if _, err := s.PurgeExecution(ctx, "exec_1"); err != nil {
		t.Fatal(err)
	}
	miss(t, s, w)
	miss(t, db, w)
	wantUser(t, s, g, newUser(1))
}

// recorder is a slog.Handler that keeps records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) count(min slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if rec.Level >= min {
			n++
		}
	}
	return n
}

func TestLogger(t *testing.T) {
	rec := &recorder{}
	s := open(t, t.TempDir(), badger.WithLogger(slog.New(rec)))
	set(t, s, globalKey(1), newUser(1), time.Time{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.count(slog.LevelDebug) == 0 {
		t.Error("Badger logged nothing to the given logger")
	}
	if n := rec.count(slog.LevelInfo); n != 0 {
		t.Errorf("%d records at Info or above from an uneventful open and close", n)
	}
}

// Large values live in Badger's value log; GC runs over it in the
// background and stops with Close (TestMain checks for leaked goroutines).
func TestValueLogAndGC(t *testing.T) {
	rec := &recorder{}
	called := false
	s := open(t, t.TempDir(),
		badger.WithGCInterval(5*time.Millisecond),
		badger.WithLogger(slog.New(rec)),
		badger.WithBadgerOptions(func(o badgerdb.Options) badgerdb.Options {
			called = true
			return o.WithValueThreshold(1 << 10)
		}))
	if !called {
		t.Fatal("WithBadgerOptions function not called")
	}
	big := newUser(1)
	big.Name = strings.Repeat("n", 8<<10)
	for i := range 50 {
		set(t, s, globalKey(i%5), big, time.Time{}) // overwrites make garbage
	}
	time.Sleep(30 * time.Millisecond)
	wantUser(t, s, globalKey(1), big)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(slog.LevelWarn); n != 0 {
		t.Errorf("%d warnings or errors logged", n)
	}
}

func TestOptionPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"WithMemTableSize(1000)":   func() { badger.WithMemTableSize(1000) },
		"WithBlockCacheSize(1000)": func() { badger.WithBlockCacheSize(1000) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		})
	}
}

func TestSmallMemTable(t *testing.T) {
	// Badger would reject its default value threshold with a 1 MiB
	// memtable; Open lowers it.
	s := open(t, t.TempDir(), badger.WithMemTableSize(1<<20), badger.WithBlockCacheSize(1<<20))
	set(t, s, globalKey(1), newUser(1), time.Time{})
	wantUser(t, s, globalKey(1), newUser(1))
}

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o600) }
