package badger_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
)

// smallDisk mounts a tmpfs of size MiB for the test, or skips: mounting
// needs root, which CI has.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("full-disk tests mount a tmpfs, which needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk writes a file that leaves about left bytes free on dir's file
// system.
func fillDisk(t *testing.T, dir string, left int64) string {
	t.Helper()
	free := freeBytes(t, dir)
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for n := free - left; n > 0; n -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), n)]); err != nil {
			break
		}
	}
	return p
}

func freeBytes(t *testing.T, dir string) int64 {
	out, err := exec.Command("df", "-B1", "--output=avail", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(out))
	var n int64
	for _, c := range fields[len(fields)-1] {
		n = n*10 + int64(c-'0')
	}
	return n
}

// TestFullDisk: on a disk without room for what Badger maps into memory,
// writes fail with ErrNoSpace (the process lives on), reads go on, and
// writes work again once space is freed; Open on such a disk fails the
// same way instead of dying inside Badger.
func TestFullDisk(t *testing.T) {
	dir := smallDisk(t, "192m")
	db := filepath.Join(dir, "db")
	s, err := badger.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := backends.Entry{Value: strings.Repeat("v", 100), Created: time.Now()}
	if err := s.Set(ctx, damagedKey(0), e, damagedCodec); err != nil {
		t.Fatal(err)
	}

	filler := fillDisk(t, dir, 16<<20)
	time.Sleep(200 * time.Millisecond) // past the cached free-space reading
	err = s.Set(ctx, damagedKey(1), e, damagedCodec)
	if !errors.Is(err, badger.ErrNoSpace) {
		t.Fatalf("Set on a full disk = %v, want ErrNoSpace", err)
	}
	if _, err := s.Get(ctx, damagedKey(0), damagedCodec); err != nil {
		t.Fatalf("Get on a full disk: %v", err)
	}
	// Keep writing: refused every time, never a crash.
	for i := range 1000 {
		if err := s.Set(ctx, damagedKey(i+2), e, damagedCodec); !errors.Is(err, badger.ErrNoSpace) {
			t.Fatalf("Set %d on a full disk = %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := badger.Open(db); !errors.Is(err, badger.ErrNoSpace) {
		t.Fatalf("Open on a full disk = %v, want ErrNoSpace", err)
	}

	os.Remove(filler)
	s, err = badger.Open(db)
	if err != nil {
		t.Fatalf("Open once space is back: %v", err)
	}
	defer s.Close()
	if err := s.Set(ctx, damagedKey(1), e, damagedCodec); err != nil {
		t.Fatalf("Set once space is back: %v", err)
	}
}

// TestFillDisk writes until the disk is nearly full: the Store refuses
// writes before Badger's memory-mapped files run out of room (a SIGBUS
// would kill this test's process).
func TestFillDisk(t *testing.T) {
	dir := smallDisk(t, "160m")
	s, err := badger.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Random, so that Badger's compression cannot shrink it.
	raw := make([]byte, 100<<10)
	for i := 0; ; i++ {
		rand.Read(raw)
		e := backends.Entry{Value: hex.EncodeToString(raw), Created: time.Now()}
		err := s.Set(ctx, damagedKey(i), e, damagedCodec)
		if errors.Is(err, badger.ErrNoSpace) {
			t.Logf("refused after %d writes of 200 KiB", i)
			break
		}
		if err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
		if i > 100_000 {
			t.Fatal("the disk never filled")
		}
	}
	if _, err := s.Get(ctx, damagedKey(0), damagedCodec); err != nil {
		t.Fatalf("Get after the disk filled: %v", err)
	}
}
