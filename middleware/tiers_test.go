package middleware_test

import (
	"path/filepath"
	"testing"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/internal/redistest"
)

// tiers are the stores every control is tested on: a front tier alone, and
// a front tier before each durable store, in fresh temporary files, and
// before a shared one: a redis-server of the test's own (skipped where
// redis-server is not installed, unless CI=true).
var tiers = []struct {
	name string
	open func(t *testing.T) backends.Store
}{
	{"memory", func(*testing.T) backends.Store { return memory.New(1000) }},
	{"memory+badger", func(t *testing.T) backends.Store {
		db, err := badger.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return backends.Tiered(memory.New(1000), db)
	}},
	{"memory+sqlite", func(t *testing.T) backends.Store {
		db, err := sqlite.Open(filepath.Join(t.TempDir(), "d.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return backends.Tiered(memory.New(1000), db)
	}},
	{"memory+redis", func(t *testing.T) backends.Store {
		srv := redistest.Start(t)
		db := redis.New(srv.Client(t))
		t.Cleanup(func() { db.Close() })
		return backends.Tiered(memory.New(1000), db)
	}},
}
