package main

import (
	"context"
	"database/sql"
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
	Delete(ctx context.Context, key keyer.Key) error
	// ByteStore gives the stored bytes, where stored failures are read
	// (see listFailures).
	ByteStore() backends.ByteStore
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
	// sqlite.Open has checked the file and its schema, and refuses a path
	// with '?' or '#'.
	values, err := sql.Open("sqlite", path+"?_busy_timeout=5000")
	if err != nil {
		_ = s.Close()
		return nil, nil, err
	}
	return sqliteStore{s, values}, func() error { return errors.Join(values.Close(), s.Close()) }, nil
}

// sqliteStore is a SQLite store that can also read its entries' bytes in
// one scan: its own scans read the columns, which do not show stored
// failures (see listFailures). The table is for plain SQL (package sqlite
// documents it); values reads it on connections of its own.
type sqliteStore struct {
	*sqlite.Store
	values *sql.DB
}

var _ valueScanner = sqliteStore{}

func (s sqliteStore) scanValues(ctx context.Context, f backends.Filter, fn func(key, val []byte)) error {
	// Narrowed as the store's own scans are, on the columns that need no
	// conversion; the caller checks the rest.
	q, args := `SELECT key, value FROM docket_entries WHERE 1`, []any{}
	if f.Step != "" {
		q, args = q+` AND step = ?`, append(args, f.Step)
	}
	if f.Scope.Valid() {
		q, args = q+` AND scope = ?`, append(args, f.Scope.String())
	}
	if f.Execution != "" {
		q, args = q+` AND scope = 'workflow' AND execution_id = ?`, append(args, f.Execution)
	}
	rows, err := s.values.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var key, val sql.RawBytes // valid until the next row: fn copies what it keeps
	for rows.Next() {
		if err := rows.Scan(&key, &val); err != nil {
			return err
		}
		fn(key, val)
	}
	return rows.Err()
}
