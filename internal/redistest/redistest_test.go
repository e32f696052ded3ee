package redistest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/docket-go/docket/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStopRestart(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t, "maxmemory 1mb")
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ConfigGet(ctx, "maxmemory").Result(); err != nil || got["maxmemory"] != "1048576" {
		t.Fatalf("maxmemory = %v, %v; want 1048576", got, err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted server is empty and on the same address.
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after restart: Exists = %d, %v; want 0, nil", n, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Client(t, func(o *goredis.Options) { o.MaxRetries = -1 }).Ping(ctx).Err(); err == nil {
		t.Fatal("Ping after Stop succeeded")
	}
	// Nothing but the log is left in the directory, which the test removes.
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base("redis.log") {
			t.Errorf("left in %s: %s", s.Dir, e.Name())
		}
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := redistest.StartServer(t.TempDir()); err != redistest.ErrNotInstalled {
		t.Fatalf("StartServer without %s: %v, want ErrNotInstalled", redistest.Binary, err)
	}
}
