package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/keyer"
)

// store is what the command needs of a durable store.
type store interface {
	backends.Lister
	backends.Selector
	Inspect(ctx context.Context, key keyer.Key) (backends.Info, []byte, error)
	Name() string
}

// errNoStore means the target names nothing the command can open.
var errNoStore = errors.New("not a Docket store")

// open opens the store target names: a Redis URL (redis://, rediss://), a
// SQLite file by path or sqlite:// URL, or a Badger directory. It never
// creates a store: a missing path is an error. closeFn releases it.
func open(target string, prefix string) (s store, closeFn func() error, err error) {
	switch {
	case strings.HasPrefix(target, "redis://"), strings.HasPrefix(target, "rediss://"):
		opts, err := goredis.ParseURL(target)
		if err != nil {
			return nil, nil, fmt.Errorf("redis URL: %w", err)
		}
		c := goredis.NewClient(opts)
		if err := c.Ping(context.Background()).Err(); err != nil {
			_ = c.Close()
			return nil, nil, fmt.Errorf("redis %s: %w", opts.Addr, err)
		}
		var ropts []redis.Option
		if prefix != "" {
			ropts = append(ropts, redis.WithPrefix(prefix))
		}
		r := redis.New(c, ropts...)
		return r, func() error { return errors.Join(r.Close(), c.Close()) }, nil
	case strings.HasPrefix(target, "sqlite://"):
		u, err := url.Parse(target)
		if err != nil {
			return nil, nil, fmt.Errorf("sqlite URL: %w", err)
		}
		path := u.Host + u.Path // sqlite://rel/path.db and sqlite:///abs/path.db
		if path == "" {
			return nil, nil, fmt.Errorf("sqlite URL %q names no file", target)
		}
		return openSQLite(path)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return nil, nil, err
	}
	if !fi.IsDir() {
		return openSQLite(target)
	}
	if _, err := os.Stat(filepath.Join(target, "MANIFEST")); err != nil {
		return nil, nil, fmt.Errorf("%q: %w: a directory without a Badger MANIFEST", target, errNoStore)
	}
	// No value-log GC: the command reads, or deletes and leaves.
	b, err := badger.Open(target, badger.WithGCInterval(0))
	if err != nil {
		if errors.Is(err, badger.ErrLocked) {
			// Badger's own text repeats what ErrLocked says and names the
			// directory, not the file that is locked: say it once.
			return nil, nil, fmt.Errorf("badger: open %q: %w: its lock file %q is held; stop the service that uses it, or inspect a copy",
				target, badger.ErrLocked, filepath.Join(target, "LOCK"))
		}
		return nil, nil, err
	}
	return b, b.Close, nil
}

func openSQLite(path string) (store, func() error, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, err
	}
	s, err := sqlite.Open(path, sqlite.WithExpiryInterval(0))
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}
