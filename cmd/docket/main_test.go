package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/internal/redistest"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the output of this run")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is when the test data was made, in the future so that no store's own
// expiry (Badger's, Redis's, which use the real clock) drops it; the
// command's clock is fixed ten minutes later.
var t0 = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

const testNow = "2099-01-01T00:10:00Z"

type user struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

type receipt struct {
	ID    string
	Cents int
}

func key(sc scope.Scope, exec, step, in string) keyer.Key {
	return keyer.Key{Scope: sc, Execution: exec, Step: step, Sum: sha256.Sum256([]byte(step + "\x00" + in))}
}

func origin(b byte) []byte { return bytes.Repeat([]byte{b}, 24) }

// fixture is what populate stores: two steps of each scope, two versions,
// three codecs, an entry past its TTL at the command's clock, one without
// a trace, and two stored failures (middleware.WithErrorCaching), one of
// an execution, one with less than a second left (the last entry).
var fixture = []struct {
	key   keyer.Key
	entry backends.Entry
	codec backends.Codec
}{
	{key(scope.Global, "", "fetch_user", "alice"), backends.Entry{Value: &user{"alice", 30}, Created: t0, Expires: t0.Add(time.Hour), Execution: "exec_1", Origin: origin(0xa1)}, codec.Bind[*user](codec.Msgpack)},
	{key(scope.Global, "", "fetch_user", "bob"), backends.Entry{Value: &user{"bob", 41}, Created: t0.Add(5 * time.Minute), Origin: origin(0xb2)}, codec.Bind[*user](codec.Msgpack)},
	{key(scope.Global, "", "fetch_user", "carol"), backends.Entry{Value: &user{"carol", 25}, Created: t0, Expires: t0.Add(5 * time.Minute), Version: "v2", Origin: origin(0xc3)}, codec.Bind[*user](codec.Msgpack)},
	{key(scope.Workflow, "exec_1", "send_email", "welcome"), backends.Entry{Value: map[string]any{"sent": true, "to": "alice@example.com"}, Created: t0.Add(time.Minute), Expires: t0.Add(24 * time.Hour), Execution: "exec_1", Origin: origin(0xd4)}, codec.Bind[map[string]any](codec.JSON)},
	{key(scope.Workflow, "exec_2", "send_email", "welcome"), backends.Entry{Value: map[string]any{"sent": false}, Created: t0.Add(2 * time.Minute), Expires: t0.Add(72 * time.Hour), Execution: "exec_2"}, codec.Bind[map[string]any](codec.JSON)},
	{key(scope.Workflow, "exec/3", "charge", "card"), backends.Entry{Value: receipt{"r-1", 1299}, Created: t0.Add(3 * time.Minute), Execution: "exec/3", Origin: origin(0xe5)}, codec.Bind[receipt](codec.Gob)},
	{key(scope.Workflow, "exec_1", "charge", "card"), backends.Entry{Failure: &backends.Failure{Code: "card_declined", Message: "card declined: insufficient funds"}, Created: t0.Add(4 * time.Minute), Expires: t0.Add(time.Hour), Execution: "exec_1"}, codec.Bind[receipt](codec.Gob)},
	{key(scope.Global, "", "fetch_user", "mallory"), backends.Entry{Failure: &backends.Failure{Code: "not_found", Message: `user "mallory" does not exist`}, Created: t0.Add(9 * time.Minute), Expires: t0.Add(10*time.Minute + 500*time.Millisecond), Origin: origin(0xf6)}, codec.Bind[*user](codec.Msgpack)},
}

func populate(t *testing.T, s backends.Store) {
	t.Helper()
	for _, f := range fixture {
		if err := s.Set(context.Background(), f.key, f.entry, f.codec); err != nil {
			t.Fatal(err)
		}
	}
}

// target is one kind of store the command opens.
type target struct {
	name string
	// make returns the command's STORE argument for a store holding what
	// fill stores (nothing when fill is nil), closed again.
	make func(t *testing.T, fill func(*testing.T, backends.Store)) string
}

var targets = []target{
	{"badger", func(t *testing.T, fill func(*testing.T, backends.Store)) string {
		dir := t.TempDir()
		s, err := badger.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fill != nil {
			fill(t, s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}},
	{"sqlite", func(t *testing.T, fill func(*testing.T, backends.Store)) string {
		path := filepath.Join(t.TempDir(), "docket.db")
		s, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if fill != nil {
			fill(t, s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return "sqlite://" + path
	}},
	{"redis", func(t *testing.T, fill func(*testing.T, backends.Store)) string {
		srv := redistest.Start(t)
		s := redis.New(srv.Client(t))
		if fill != nil {
			fill(t, s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return srv.URL()
	}},
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string {
			if k == "DOCKET_NOW" {
				return testNow
			}
			return ""
		}}
	code := run(context.Background(), args, e)
	return result{code, out.String(), errOut.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// golden compares got with testdata/name.golden, after replacing the
// store's location with $STORE; -update rewrites the file.
func golden(t *testing.T, name, got string, store string) {
	t.Helper()
	if store != "" {
		got = strings.ReplaceAll(got, store, "$STORE")
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// The same commands print the same output on every store: one golden file
// per command, checked against each.
func TestPopulated(t *testing.T) {
	k := func(i int) string { return fixture[i].key.String() }
	cases := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"ls", "", []string{"ls"}},
		{"ls_json", "", []string{"ls", "-json"}},
		{"ls_step", "", []string{"ls", "--step", "fetch_user"}},
		{"ls_version", "", []string{"ls", "--step", "fetch_user", "--version", "v2"}},
		{"ls_unversioned", "", []string{"ls", "--step", "fetch_user", "--version", ""}},
		{"ls_scope", "", []string{"ls", "--scope", "workflow"}},
		{"ls_execution", "", []string{"ls", "--execution", "exec_1"}},
		{"ls_expired", "", []string{"ls", "--expired"}},
		{"ls_failures", "", []string{"ls", "--failures"}},
		{"ls_failures_json", "", []string{"ls", "-json", "--failures", "--step", "fetch_user", "--scope", "global"}},
		{"ls_failures_execution", "", []string{"ls", "--failures", "--execution", "exec_1"}},
		{"stats", "", []string{"stats"}},
		{"stats_json", "", []string{"stats", "-json"}},
		{"stats_failures", "", []string{"stats", "--failures"}},
		{"get_msgpack", "", []string{"get", "STORE", k(0)}},
		{"get_json", "", []string{"get", "-json", "STORE", k(3)}},
		{"get_gob", "", []string{"get", "STORE", k(5)}},
		{"get_failure", "", []string{"get", "STORE", k(7)}},
		{"get_failure_json", "", []string{"get", "-json", "STORE", k(7)}},
		{"get_missing", "", []string{"get", "STORE", key(scope.Global, "", "fetch_user", "nobody").String()}},
		{"get_bad_key", "", []string{"get", "STORE", "global/fetch_user/xyz"}},
		{"purge_declined", "n\n", []string{"purge", "--step", "fetch_user"}},
		{"purge_confirmed", "y\n", []string{"purge", "--execution", "exec_1"}},
		{"purge_version", "", []string{"purge", "-y", "--step", "fetch_user", "--version", "v2"}},
		{"purge_expired", "", []string{"purge", "-y", "--expired"}},
		{"purge_json", "", []string{"purge", "-y", "-json", "--step", "send_email"}},
		{"purge_failures", "y\n", []string{"purge", "--failures"}},
		{"purge_failures_step", "", []string{"purge", "-y", "--failures", "--step", "send_email"}},
		{"purge_failures_declined", "n\n", []string{"purge", "--failures", "--step", "fetch_user"}},
		{"purge_usage", "", []string{"purge", "-y", "--step", "a", "--expired"}},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					store := tg.make(t, populate)
					args := append([]string(nil), tc.args...)
					if i := indexOf(args, "STORE"); i >= 0 {
						args[i] = store
					} else {
						args = append(args, store)
					}
					out := runCmd(t, tc.stdin, args...).String()
					if strings.HasPrefix(tc.name, "purge") {
						// What the purge left.
						out += "--- ls after\n" + runCmd(t, "", "ls", store).stdout
					}
					golden(t, tc.name, out, store)
				})
			}
		})
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestEmpty(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			store := tg.make(t, nil)
			var out strings.Builder
			for _, args := range [][]string{{"ls"}, {"ls", "-json"}, {"stats"}, {"purge", "--expired"}} {
				fmt.Fprintf(&out, "$ docket %s\n%s", strings.Join(args, " "), runCmd(t, "", append(args, store)...))
			}
			golden(t, "empty", out.String(), store)
		})
	}
}

// A Badger directory that a running service holds is refused, naming the
// lock, and left as it was.
func TestLocked(t *testing.T) {
	dir := targets[0].make(t, populate)
	s, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ls"}, {"purge", "-y", "--expired"}} {
		golden(t, "locked_"+args[0], runCmd(t, "", append(args, dir)...).String(), dir)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, "", "stats", dir); r.code != 0 || !strings.Contains(r.stdout, "TOTAL") {
		t.Fatalf("after the service closed it: %v", r)
	}
}

// Files that are not a Docket store are clear errors and stay untouched.
func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a database "), 200)
	cases := []struct {
		name  string
		setup func() string
	}{
		{"garbage_file", func() string {
			p := filepath.Join(dir, "garbage.db")
			must(t, os.WriteFile(p, garbage, 0o644))
			return p
		}},
		{"badger_manifest", func() string {
			d := targets[0].make(t, populate)
			must(t, os.WriteFile(filepath.Join(d, "MANIFEST"), garbage, 0o644))
			return d
		}},
		{"not_a_store_dir", func() string { return t.TempDir() }},
		{"missing", func() string { return filepath.Join(dir, "no-such-store") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup()
			before := snapshot(t, path)
			golden(t, "corrupt_"+tc.name, runCmd(t, "", "ls", path).String(), path)
			if after := snapshot(t, path); after != before {
				t.Errorf("ls changed %s", path)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot is the names, sizes and contents' digests of the files at path.
func snapshot(t *testing.T, path string) string {
	var b strings.Builder
	_ = filepath.Walk(path, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %d %x\n", p, fi.Size(), sha256.Sum256(data))
		return nil
	})
	return b.String()
}

func TestParseKey(t *testing.T) {
	for _, f := range fixture {
		keys, err := parseKey(f.key.String())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, k := range keys {
			found = found || k == f.key
		}
		if !found {
			t.Errorf("parseKey(%q) = %v; none is the key", f.key.String(), keys)
		}
	}
	for _, bad := range []string{"", "global", "global/x", "workflow/x/" + strings.Repeat("ab", 32), "other/x/" + strings.Repeat("ab", 32), "global/x/" + strings.Repeat("ab", 31)} {
		if _, err := parseKey(bad); err == nil {
			t.Errorf("parseKey(%q) succeeded", bad)
		}
	}
}

// The bar appears once a scan has read many entries, on the writer given,
// and is cleared at the end.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(env{stderr: &buf}, true)
	for range barAfter - 1 {
		p.add()
	}
	if buf.Len() != 0 {
		t.Fatalf("bar drawn before %d entries: %q", barAfter, buf.String())
	}
	for range 5 * barAfter {
		p.add()
	}
	p.done()
	if !strings.Contains(buf.String(), "scanning") {
		t.Fatalf("no bar: %q", buf.String())
	}
	var off bytes.Buffer
	q := newProgress(env{stderr: &off}, false)
	for range 5 * barAfter {
		q.add()
	}
	q.done()
	if off.Len() != 0 {
		t.Fatalf("bar drawn while off: %q", off.String())
	}
}

// A wrong number of arguments names what is extra or missing before the
// usage.
func TestArgCount(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"ls", "DIR", "extra"}, `docket ls: unexpected argument "extra"`},
		{[]string{"stats", "DIR", "a", "b c"}, `docket stats: unexpected arguments "a" "b c"`},
		{[]string{"get", "STORE", "KEY", "-json", "more"}, `docket get: unexpected argument "more"`},
		{[]string{"purge", "-y", "--expired", "DIR", "extra"}, `docket purge: unexpected argument "extra"`},
		{[]string{"ls"}, "docket ls: missing STORE"},
		{[]string{"get"}, "docket get: missing STORE KEY"},
		{[]string{"get", "STORE"}, "docket get: missing KEY"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCmd(t, "", tc.args...)
			first, rest, _ := strings.Cut(r.stderr, "\n")
			if r.code != 2 || first != tc.want || !strings.HasPrefix(rest, "usage: docket "+tc.args[0]) {
				t.Errorf("got %v\nwant exit 2, %q, then the usage", r, tc.want)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	now := t0
	cases := []struct {
		expires time.Time
		want    string
	}{
		{time.Time{}, "never"},
		{now.Add(-time.Second), "expired"},
		{now, "expired"},
		{now.Add(time.Nanosecond), "<1s"},
		{now.Add(999 * time.Millisecond), "<1s"},
		{now.Add(time.Second), "1s"},
		{now.Add(90 * time.Second), "1m30s"},
		{now.Add(49 * time.Hour), "2d01h"},
	}
	for _, tc := range cases {
		var r row
		if !tc.expires.IsZero() {
			r.expires = tc.expires.UnixNano()
		}
		if got := ttl(r, now); got != tc.want {
			t.Errorf("ttl with %v left = %q, want %q", tc.expires.Sub(now), got, tc.want)
		}
	}
}

// entryFailure reads the failure record of what backends.EncodeEntry
// writes, whatever else the entry holds, and refuses damaged entries.
func TestEntryFailure(t *testing.T) {
	c := codec.Bind[*user](codec.Msgpack)
	long := strings.Repeat("é", 200) // lengths past one varint byte
	cases := []struct {
		name  string
		entry backends.Entry
	}{
		{"result", backends.Entry{Value: &user{"a", 1}, Created: t0, Expires: t0.Add(time.Hour), Execution: "e", Origin: origin(1), Version: "v1", Step: "s"}},
		{"result_bare", backends.Entry{Value: &user{}}},
		{"failure", backends.Entry{Failure: &backends.Failure{Code: "not_found", Message: "no such user"}, Created: t0, Expires: t0.Add(time.Second)}},
		{"failure_full", backends.Entry{Failure: &backends.Failure{Code: "invalid", Message: long}, Execution: long, Origin: origin(2), Version: long, Step: long}},
		{"failure_empty", backends.Entry{Failure: &backends.Failure{}}},
		// Expired by the real clock: the command shows entries a store
		// still holds whatever their TTL, which DecodeEntry would refuse.
		{"failure_expired", backends.Entry{Failure: &backends.Failure{Code: "gone", Message: "m"}, Expires: time.Unix(1, 0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := backends.EncodeEntry(tc.entry, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := entryFailure(b)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.entry.Failure
			if (got == nil) != (want == nil) || got != nil && (got.Code != want.Code || got.Message != want.Message) {
				t.Fatalf("entryFailure = %+v, want %+v", got, want)
			}
			for i := range b {
				damaged := bytes.Clone(b)
				damaged[i] ^= 0x10
				if _, err := entryFailure(damaged); !errors.Is(err, backends.ErrCorrupt) {
					t.Fatalf("byte %d flipped: err = %v, want ErrCorrupt", i, err)
				}
			}
			for n := range len(b) {
				if _, err := entryFailure(b[:n]); !errors.Is(err, backends.ErrCorrupt) {
					t.Fatalf("cut to %d bytes: err = %v, want ErrCorrupt", n, err)
				}
			}
		})
	}
}

// promptWriter is stdin that, when purge asks its question, first runs
// write: a service storing while the question is open.
type promptWriter struct {
	write  func()
	answer io.Reader
	once   sync.Once
}

func (p *promptWriter) Read(b []byte) (int, error) {
	p.once.Do(p.write)
	return p.answer.Read(b)
}

// purge -failures leaves an entry whose failure a result replaced while
// the question was open.
func TestPurgeFailuresKeepsNewResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docket.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, s.Close()) }()
	populate(t, s)
	failed := fixture[len(fixture)-1] // a result replaces it; the other failure goes
	if failed.entry.Failure == nil {
		t.Fatal("the fixture's last entry is not a failure")
	}
	stdin := &promptWriter{answer: strings.NewReader("y\n"), write: func() {
		e := backends.Entry{Value: &user{"mallory", 99}, Created: t0.Add(10 * time.Minute), Expires: t0.Add(time.Hour)}
		must(t, s.Set(context.Background(), failed.key, e, failed.codec))
	}}
	var out, errOut bytes.Buffer
	e := env{stdin: stdin, stdout: &out, stderr: &errOut, getenv: func(string) string { return testNow }}
	if code := run(context.Background(), []string{"purge", "--failures", path}, e); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := out.String(); got != "removed 1 entry\n" {
		t.Errorf("purge printed %q, want removed 1 entry", got)
	}
	if !strings.Contains(errOut.String(), "delete 2 entries?") {
		t.Errorf("purge asked %q, want delete 2 entries?", errOut.String())
	}
	got, err := s.Get(context.Background(), failed.key, failed.codec)
	if err != nil || got.Failure != nil || got.Value.(*user).Age != 99 {
		t.Fatalf("after purge: %+v, %v; want the new result", got, err)
	}
}

func TestToken(t *testing.T) {
	for in, want := range map[string]string{
		"not_found": "not_found",
		"":          `""`,
		"two words": `"two words"`,
		"say\"hi":   `"say\"hi"`,
		"tab\there": `"tab\there"`,
		"ünïcode":   "ünïcode",
	} {
		if got := token(in); got != want {
			t.Errorf("token(%q) = %s, want %s", in, got, want)
		}
	}
}
