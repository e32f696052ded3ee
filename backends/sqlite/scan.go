package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"strings"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var (
	_ backends.ByteScanner = (*db)(nil)
	_ backends.Lister      = (*Store)(nil)
	_ backends.Selector    = (*Store)(nil)
)

// List calls fn with an Info of every entry f matches; see
// backends.Lister. It reads the columns only, never the values, and
// filters in SQL.
func (s *Store) List(ctx context.Context, f backends.Filter, fn func(backends.Info) error) error {
	return s.t().List(ctx, f, fn)
}

// DeleteMatching removes every entry f matches and returns how many it
// removed; see backends.Selector. It deletes in SQL, in transactions of a
// bounded number of rows.
func (s *Store) DeleteMatching(ctx context.Context, f backends.Filter) (int, error) {
	return s.t().DeleteMatching(ctx, f)
}

// where is f as a SQL condition on the columns, with its arguments.
func where(f backends.Filter) (string, []any) {
	conds := []string{"1"}
	var args []any
	if f.Step != "" {
		conds = append(conds, "step = ?")
		args = append(args, f.Step)
	}
	if f.ByVersion() {
		// NULL is the empty version (see null).
		if f.Version == "" {
			conds = append(conds, "version IS NULL")
		} else {
			conds = append(conds, "version = ?")
			args = append(args, f.Version)
		}
	}
	if f.Scope.Valid() {
		conds = append(conds, "scope = ?")
		args = append(args, f.Scope.String())
	}
	if f.Execution != "" {
		conds = append(conds, "scope = 'workflow' AND execution_id = ?")
		args = append(args, f.Execution)
	}
	if f.Expired {
		now := f.Now
		if now.IsZero() {
			now = time.Now()
		}
		// expires_at is rounded up to the millisecond (see millis): a row
		// that matches here has expired.
		conds = append(conds, "expires_at <= ?")
		args = append(args, now.UnixMilli())
	}
	return strings.Join(conds, " AND "), args
}

// Scan reads the columns of the rows f matches, not their values.
func (d *db) Scan(ctx context.Context, f backends.Filter, fn func(backends.ScanRecord) error) error {
	cond, args := where(f)
	rows, err := d.sql.QueryContext(ctx, `SELECT key, step, scope, execution_id, version, created_at, expires_at,
		codec, trace_id, span_id, length(value) FROM docket_entries WHERE `+cond, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key                        []byte
			step, sc                   string
			exec, version, trace, span sql.NullString
			created, expires           sql.NullInt64
			codec                      int64
			size                       int
		)
		if err := rows.Scan(&key, &step, &sc, &exec, &version, &created, &expires, &codec, &trace, &span, &size); err != nil {
			return err
		}
		m := backends.Meta{
			Step:      step,
			Scope:     scope.Global,
			Execution: exec.String,
			Version:   version.String,
			Codec:     uint8(codec),
		}
		if sc == "workflow" {
			m.Scope = scope.Workflow
		}
		if created.Valid {
			m.Created = time.UnixMilli(created.Int64)
		}
		if expires.Valid {
			m.Expires = time.UnixMilli(expires.Int64)
		}
		if trace.Valid && span.Valid {
			t, terr := hex.DecodeString(trace.String)
			s, serr := hex.DecodeString(span.String)
			if terr == nil && serr == nil {
				m.Origin = append(t, s...)
			}
		}
		if err := fn(backends.ScanRecord{Key: key, Meta: m, HasMeta: true, Size: size}); err != nil {
			return err
		}
	}
	return rows.Err()
}

// DeleteWhere deletes in SQL: every field of a Filter is a column, so match
// is not needed.
func (d *db) DeleteWhere(ctx context.Context, f backends.Filter, _ func(backends.ScanRecord) bool) (int, error) {
	cond, args := where(f)
	return d.deleteWhere(ctx, cond, args...)
}

// Inspect returns the Info of the entry stored under key and the codec's
// encoding of its value, without decoding it, expired or not; see
// backends.ByteTier.Inspect.
func (s *Store) Inspect(ctx context.Context, key keyer.Key) (backends.Info, []byte, error) {
	return s.t().Inspect(ctx, key)
}
