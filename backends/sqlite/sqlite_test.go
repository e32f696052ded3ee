package sqlite_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/backends/storetest"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var ctx = context.Background()

// textCodec stores a string as its bytes.
type textCodec struct{}

func (textCodec) ID() uint8                       { return 3 }
func (textCodec) Encode(v any) ([]byte, error)    { return []byte(v.(string)), nil }
func (textCodec) Decode(data []byte) (any, error) { return string(data), nil }

var codec backends.Codec = textCodec{}

func globalKey(i int) keyer.Key {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return keyer.Key{Scope: scope.Global, Step: "step", Sum: sha256.Sum256(b[:])}
}

func workflowKey(exec string, i int) keyer.Key {
	k := globalKey(i)
	k.Scope, k.Execution = scope.Workflow, exec
	k.Sum[0] ^= 0xFF
	return k
}

func open(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "docket.db") }

func set(t testing.TB, s backends.Store, k keyer.Key, v string) {
	t.Helper()
	if err := s.Set(ctx, k, backends.Entry{Value: v, Created: time.Now(), Execution: k.Execution}, codec); err != nil {
		t.Fatalf("Set(%v): %v", k, err)
	}
}

func want(t testing.TB, s backends.Store, k keyer.Key, v string) {
	t.Helper()
	e, err := s.Get(ctx, k, codec)
	if err != nil || e.Value != v {
		t.Fatalf("Get(%v) = %v, %v; want %q", k, e.Value, err, v)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backends.Store { return open(t, dbPath(t)) })
}

func TestConformanceSyncFull(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T) backends.Store {
		return open(t, dbPath(t), sqlite.WithSyncFull(), sqlite.WithExpiryInterval(0))
	})
}

func TestConformanceTiered(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backends.Store {
		return backends.Tiered(memory.New(10_000), open(t, dbPath(t)))
	})
}

// rawDB opens the Store's file with database/sql, as the sqlite3 shell
// would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// The columns describe each entry, for plain SQL.
func TestColumns(t *testing.T) {
	path := dbPath(t)
	s := open(t, path)
	created := time.UnixMilli(1_700_000_000_123)
	expires := created.Add(time.Hour + 500*time.Microsecond)
	origin := append(bytes.Repeat([]byte{0xAB}, 16), bytes.Repeat([]byte{0xCD}, 8)...)
	k := workflowKey("exec_1", 1)
	k.Step = "fetch_user"
	e := backends.Entry{Value: "v", Created: created, Expires: expires, Execution: "exec_1", Origin: origin, Version: "v2"}
	if err := s.Set(ctx, k, e, codec); err != nil {
		t.Fatal(err)
	}
	g := globalKey(1)
	if err := s.Set(ctx, g, backends.Entry{Value: "g", Execution: "producer"}, codec); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	type row struct {
		step, scope                    string
		exec, version, traceID, spanID sql.NullString
		created, expires               sql.NullInt64
		codec                          int
	}
	read := func(k keyer.Key) row {
		bk, _ := backends.EntryKey(nil, k)
		var r row
		err := db.QueryRow(`SELECT step, scope, execution_id, version, created_at, expires_at, codec, trace_id, span_id
			FROM docket_entries WHERE key = ?`, bk).Scan(&r.step, &r.scope, &r.exec, &r.version, &r.created, &r.expires, &r.codec, &r.traceID, &r.spanID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := read(k)
	if r.step != "fetch_user" || r.scope != "workflow" || r.exec.String != "exec_1" || r.version.String != "v2" ||
		r.created.Int64 != created.UnixMilli() || r.expires.Int64 != expires.UnixMilli()+1 || r.codec != 3 ||
		r.traceID.String != strings.Repeat("ab", 16) || r.spanID.String != strings.Repeat("cd", 8) {
		t.Errorf("workflow row = %+v", r)
	}
	r = read(g)
	if r.scope != "global" || r.exec.String != "producer" || r.version.Valid || r.created.Valid || r.expires.Valid || r.traceID.Valid {
		t.Errorf("global row = %+v", r)
	}
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != 1 {
		t.Errorf("user_version = %d, %v; want 1", v, err)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestReopen(t *testing.T) {
	path := dbPath(t)
	s := open(t, path)
	set(t, s, globalKey(1), "g")
	set(t, s, workflowKey("e", 1), "w")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	want(t, s, globalKey(1), "g")
	want(t, s, workflowKey("e", 1), "w")
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not.db")
	garbage := bytes.Repeat([]byte("this is not a database. "), 200)
	if err := os.WriteFile(notDB, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	fdb := rawDB(t, foreign)
	if _, err := fdb.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	ndb := rawDB(t, newer)
	if _, err := ndb.Exec(`PRAGMA user_version = 7`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		is         error
		says       string
	}{
		{"missing directory", filepath.Join(dir, "missing", "docket.db"), nil, "no such file or directory"},
		{"not a database", notDB, sqlite.ErrNotDatabase, "not a SQLite database"},
		{"foreign database", foreign, sqlite.ErrForeignDatabase, "users"},
		{"newer schema", newer, sqlite.ErrNewerSchema, "schema version 7"},
		{"a directory", dir, nil, "is a directory"},
		{"empty path", "", nil, "need the path"},
		{"URI", "file:x.db?mode=ro", nil, "need the path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(tc.path)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded", tc.path)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Open = %v; want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "sqlite: open") {
				t.Errorf("Open = %q; want it to say %q", err, tc.says)
			}
		})
	}
	// Refused files are untouched: same bytes, no journal beside them.
	if b, err := os.ReadFile(notDB); err != nil || !bytes.Equal(b, garbage) {
		t.Errorf("not-a-database file changed: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(notDB + suffix); err == nil {
			t.Errorf("Open left %s beside a file it refused", notDB+suffix)
		}
	}
	var n int
	if err := ndb.QueryRow(`PRAGMA user_version`).Scan(&n); err != nil || n != 7 {
		t.Errorf("newer schema's user_version = %d, %v; want 7", n, err)
	}
	if err := fdb.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'docket_entries'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("Open wrote its table into a foreign database: %d, %v", n, err)
	}
}

// A row whose blob is damaged is a miss that the next Set overwrites.
func TestCorruptRow(t *testing.T) {
	path := dbPath(t)
	s := open(t, path)
	k := globalKey(1)
	set(t, s, k, "good")
	db := rawDB(t, path)
	bk, _ := backends.EntryKey(nil, k)
	if _, err := db.Exec(`UPDATE docket_entries SET value = substr(value, 1, length(value) - 2) || x'0000' WHERE key = ?`, bk); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, k, codec); !errors.Is(err, backends.ErrCorrupt) {
		t.Fatalf("Get of a damaged row = %v; want ErrCorrupt", err)
	}
	set(t, s, k, "fixed")
	want(t, s, k, "fixed")
}

func TestBackgroundExpiry(t *testing.T) {
	path := dbPath(t)
	s := open(t, path, sqlite.WithExpiryInterval(20*time.Millisecond))
	for i := range 1200 { // more than one delete batch
		if err := s.Set(ctx, globalKey(i), backends.Entry{Value: "x", Expires: time.Now().Add(50 * time.Millisecond)}, codec); err != nil {
			t.Fatal(err)
		}
	}
	set(t, s, globalKey(-1), "live")
	db := rawDB(t, path)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM docket_entries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left; want the live one only", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want(t, s, globalKey(-1), "live")
}

func TestDeleteExpired(t *testing.T) {
	s := open(t, dbPath(t), sqlite.WithExpiryInterval(0))
	for i := range 3 {
		if err := s.Set(ctx, globalKey(i), backends.Entry{Value: "x", Expires: time.Now().Add(-time.Second)}, codec); err != nil {
			t.Fatal(err)
		}
	}
	set(t, s, globalKey(9), "live")
	if n, err := s.DeleteExpired(ctx); n != 3 || err != nil {
		t.Fatalf("DeleteExpired = %d, %v; want 3", n, err)
	}
	want(t, s, globalKey(9), "live")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx); !errors.Is(err, backends.ErrClosed) {
		t.Fatalf("DeleteExpired after Close = %v; want ErrClosed", err)
	}
}

// A Store not made by Open errs on every method, saying so; none panics.
func TestZeroStore(t *testing.T) {
	s := &sqlite.Store{}
	errs := map[string]error{"Close": s.Close()}
	_, errs["Get"] = s.Get(ctx, globalKey(1), codec)
	errs["Set"] = s.Set(ctx, globalKey(1), backends.Entry{Value: "v"}, codec)
	errs["Delete"] = s.Delete(ctx, globalKey(1))
	_, errs["PurgeExecution"] = s.PurgeExecution(ctx, "e")
	errs["List"] = s.List(ctx, backends.Filter{}, func(backends.Info) error { return nil })
	_, errs["DeleteMatching"] = s.DeleteMatching(ctx, backends.Filter{})
	_, errs["RetainExecution"] = s.RetainExecution(ctx, "e", time.Now().Add(time.Hour))
	_, _, errs["Inspect"] = s.Inspect(ctx, globalKey(1))
	_, errs["DeleteExpired"] = s.DeleteExpired(ctx)
	for name, err := range errs {
		if !errors.Is(err, backends.ErrClosed) || !strings.Contains(err.Error(), "use sqlite.Open") {
			t.Errorf("%s on a zero Store = %v; want ErrClosed saying to use sqlite.Open", name, err)
		}
	}
	if s.Name() != "sqlite" || !s.EncodesValues() || s.ByteStore() != nil {
		t.Errorf("zero Store: Name %q, EncodesValues %v, ByteStore %v", s.Name(), s.EncodesValues(), s.ByteStore())
	}
}

func TestOptionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("WithBusyTimeout(-1) did not panic")
		}
	}()
	sqlite.WithBusyTimeout(-1)
}
