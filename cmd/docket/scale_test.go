package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// TestListMillion times ls over a Badger directory of DOCKET_LS_ENTRIES
// entries (1,000,000 is the target: at most 10 s), written with the byte
// store's batch Put. It is off unless the variable is set: populating takes
// longer than the rest of the suite.
//
//	DOCKET_LS_ENTRIES=1000000 go test ./cmd/docket -run TestListMillion -v
func TestListMillion(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DOCKET_LS_ENTRIES"))
	if n <= 0 {
		t.Skip("set DOCKET_LS_ENTRIES to run")
	}
	dir := t.TempDir()
	s, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	populateMany(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("populated %d entries in %v", n, time.Since(start).Round(time.Millisecond))

	out, err := os.Create(filepath.Join(t.TempDir(), "ls.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for _, args := range [][]string{{"ls", dir}, {"ls", "-json", dir}, {"stats", dir}, {"ls", "--step", "step_7", dir}} {
		start = time.Now()
		e := env{stdin: nil, stdout: out, stderr: os.Stderr, getenv: func(string) string { return "" }}
		if code := run(context.Background(), args, e); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		d := time.Since(start)
		t.Logf("docket %v over %d entries: %v", args[:len(args)-1], n, d.Round(time.Millisecond))
		if args[0] == "ls" && len(args) == 2 && n >= 1_000_000 && d > 10*time.Second {
			t.Errorf("ls took %v; the target is 10 s", d)
		}
	}
}

// populateMany stores n small msgpack entries of 16 steps, a tenth of them
// Workflow entries of 1,000 executions, in batches of the byte store's Put.
func populateMany(t *testing.T, s *badger.Store, n int) {
	c := codec.Bind[map[string]any](codec.Msgpack)
	bs := s.ByteStore()
	now := time.Now()
	origin := make([]byte, 24)
	const batch = 10_000
	recs := make([]backends.Record, 0, batch)
	for i := range n {
		step := "step_" + strconv.Itoa(i%16)
		k := keyer.Key{Scope: scope.Global, Step: step}
		if i%10 == 0 {
			k.Scope, k.Execution = scope.Workflow, "exec_"+strconv.Itoa(i%1000)
		}
		k.Sum = sha256.Sum256(binary.LittleEndian.AppendUint64([]byte(step), uint64(i)))
		binary.LittleEndian.PutUint64(origin, uint64(i))
		e := backends.Entry{Value: map[string]any{"id": i, "name": "user"}, Created: now, Expires: now.Add(time.Hour), Origin: origin, Step: step}
		val, err := backends.EncodeEntry(e, c)
		if err != nil {
			t.Fatal(err)
		}
		key, err := backends.EntryKey(nil, k)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, backends.Record{Key: key, Value: val, Meta: backends.Meta{Step: step, Scope: k.Scope, Execution: k.Execution, Expires: e.Expires}})
		if len(recs) == batch || i == n-1 {
			if err := bs.Put(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}
