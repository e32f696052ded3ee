package badger_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var damagedCodec = codec.Bind[string](codec.JSON)

func damagedKey(i int) keyer.Key {
	s, _ := keyer.Hash(keyer.StepInfo{Name: "damaged", Scope: scope.Global}, i)
	return keyer.Key{Scope: scope.Global, Step: "damaged", Sum: s}
}

// fillAndClose writes n entries and closes the store, which flushes them
// into a table; it returns the tables written.
func fillAndClose(t *testing.T, dir string, n int) []string {
	t.Helper()
	s, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		e := backends.Entry{Value: strings.Repeat("v", 100), Created: time.Now()}
		if err := s.Set(ctx, damagedKey(i), e, damagedCodec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table written")
	}
	return tables
}

func wantDamaged(t *testing.T, err error, file string) {
	t.Helper()
	if !errors.Is(err, badger.ErrDamaged) || !errors.Is(err, backends.ErrCorrupt) || !strings.Contains(err.Error(), file) {
		t.Fatalf("Open = %v, want ErrDamaged naming %s", err, file)
	}
}

// TestOpenRefusesDamagedFiles: a damaged table or MANIFEST makes Open fail
// with an error naming the file, never crash or silently drop tables; the
// files are left as they were.
func TestOpenRefusesDamagedFiles(t *testing.T) {
	damage := []struct {
		name string
		file string // the file named in the error
		hurt func(t *testing.T, dir, table string)
	}{
		{"flipped byte in a table", "", func(t *testing.T, _, table string) {
			b, _ := os.ReadFile(table)
			b[len(b)/3] ^= 0xff
			os.WriteFile(table, b, 0o644)
		}},
		{"table cut to half", "", func(t *testing.T, _, table string) {
			st, _ := os.Stat(table)
			os.Truncate(table, st.Size()/2)
		}},
		{"MANIFEST deleted", "MANIFEST", func(t *testing.T, dir, _ string) {
			os.Remove(filepath.Join(dir, "MANIFEST"))
		}},
		{"MANIFEST emptied", "MANIFEST", func(t *testing.T, dir, _ string) {
			os.Truncate(filepath.Join(dir, "MANIFEST"), 0)
		}},
		{"MANIFEST cut mid-entry", "MANIFEST", func(t *testing.T, dir, _ string) {
			m := filepath.Join(dir, "MANIFEST")
			st, _ := os.Stat(m)
			os.Truncate(m, st.Size()-3)
		}},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			tables := fillAndClose(t, dir, 2000)
			d.hurt(t, dir, tables[0])

			file := d.file
			if file == "" {
				file = filepath.Base(tables[0])
			}
			before, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			s, err := badger.Open(dir)
			if err == nil {
				s.Close()
			}
			wantDamaged(t, err, file)
			after, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			if len(after) != len(before) {
				t.Errorf("tables before Open %v, after %v", before, after)
			}
		})
	}
}

// TestDamageWhileOpen: a table damaged under an open Store makes its reads
// misses (ErrCorrupt, or ErrNotFound where Badger reports a failed block
// checksum as a missing key), never a wrong value or a panic that reaches the
// caller, and a write replaces the entry.
func TestDamageWhileOpen(t *testing.T) {
	dir := t.TempDir()
	tables := fillAndClose(t, dir, 2000)
	s, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Flip bytes of the table's first data blocks under Badger's memory map.
	b, err := os.ReadFile(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 64<<10; i += 512 {
		b[i] ^= 0x55
	}
	f, err := os.OpenFile(tables[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(b[:64<<10], 0)
	f.Close()
	ctx := context.Background()
	missed := 0
	for i := range 2000 {
		got, err := s.Get(ctx, damagedKey(i), damagedCodec)
		switch {
		case err == nil:
			if got.Value != strings.Repeat("v", 100) {
				t.Fatalf("Get %d: wrong value %q", i, got.Value)
			}
		case errors.Is(err, backends.ErrCorrupt), errors.Is(err, backends.ErrNotFound):
			// Badger reports a block whose checksum fails as a missing key.
			missed++
		default:
			t.Fatalf("Get %d: %v", i, err)
		}
	}
	if missed == 0 {
		t.Fatal("no read noticed the damage")
	}
	for i := range 2000 {
		e := backends.Entry{Value: "new", Created: time.Now()}
		if err := s.Set(ctx, damagedKey(i), e, damagedCodec); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, damagedKey(i), damagedCodec)
		if err != nil || got.Value != "new" {
			t.Fatalf("Get %d after Set: %v, %v", i, got.Value, err)
		}
	}
}
