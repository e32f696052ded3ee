package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips the
// test when that is not possible (it takes root).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill takes root (CI runs as root)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// A full disk fails writes and loses nothing acknowledged; the middleware
// still returns results (or, WithStrict, an error), and writes work again
// once there is space.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 8<<20)
	s := open(t, filepath.Join(dir, "docket.db"), sqlite.WithExpiryInterval(0))
	const before = 50
	for i := range before {
		set(t, s, globalKey(i), fmt.Sprint("before ", i))
	}
	filler := fill(t, dir)

	// Writes fail, big or small; reads go on.
	big := strings.Repeat("x", 256<<10)
	failed := 0
	for i := range 20 {
		if err := s.Set(ctx, globalKey(1000+i), backends.Entry{Value: big}, codec); err != nil {
			failed++
			if !strings.Contains(err.Error(), "full") {
				t.Errorf("Set on a full disk = %v; want it to say the disk is full", err)
			}
		}
	}
	if failed == 0 {
		t.Fatal("no Set failed on a full disk")
	}
	for i := range before {
		want(t, s, globalKey(i), fmt.Sprint("before ", i))
	}

	// Through the middleware: fail-open returns the result, strict an
	// error with it.
	runs := 0
	step := func(_ context.Context, n int) (string, error) {
		runs++
		return fmt.Sprint(strings.Repeat("r", 256<<10), n), nil
	}
	quiet := middleware.WithLogger(slog.New(slog.DiscardHandler))
	failOpen := middleware.Wrap("disk_full", step, middleware.WithPersistence(s, scope.Global, time.Hour), quiet)
	if out, err := failOpen(ctx, 1); err != nil || !strings.HasSuffix(out, "1") {
		t.Fatalf("fail-open call on a full disk = %.10q, %v; want the result", out, err)
	}
	strict := middleware.Wrap("disk_full_strict", step, middleware.WithPersistence(s, scope.Global, time.Hour), middleware.WithStrict(), quiet)
	if out, err := strict(ctx, 2); err == nil || !strings.HasSuffix(out, "2") {
		t.Fatalf("strict call on a full disk = %.10q, %v; want the result and an error", out, err)
	}

	// Space returns: writes work again, and nothing was lost.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	set(t, s, globalKey(2000), "after")
	want(t, s, globalKey(2000), "after")
	if _, err := failOpen(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after a full disk: %v", err)
	}
	s = open(t, filepath.Join(dir, "docket.db"))
	for i := range before {
		want(t, s, globalKey(i), fmt.Sprint("before ", i))
	}
	want(t, s, globalKey(2000), "after")
}
