package sqlite

import (
	"context"
	"fmt"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"
)

// schemaVersion is the PRAGMA user_version of the schema below. A change to
// it takes a new version and a migration from every earlier one; a file
// with a higher version is refused, never rewritten.
const schemaVersion = 1

// schema is version 1. Times are Unix milliseconds; absent values are NULL.
// The value column holds the entry in backends.EncodeEntry's format, which
// repeats the other columns under a checksum and is what Get reads; the
// columns are for queries, purges and expiry.
var schema = []string{
	`CREATE TABLE docket_entries (
		key          BLOB    NOT NULL PRIMARY KEY,
		step         TEXT    NOT NULL,
		scope        TEXT    NOT NULL CHECK (scope IN ('global', 'workflow')),
		execution_id TEXT,
		version      TEXT,
		created_at   INTEGER,
		expires_at   INTEGER,
		codec        INTEGER NOT NULL,
		trace_id     TEXT,
		span_id      TEXT,
		value        BLOB    NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX docket_entries_execution ON docket_entries (execution_id) WHERE scope = 'workflow'`,
	`CREATE INDEX docket_entries_expires ON docket_entries (expires_at) WHERE expires_at IS NOT NULL`,
}

// setup checks what the file holds before it writes anything: a file that
// is not a database, a foreign database or a newer schema is refused
// untouched. Then it switches the file to WAL mode and creates the schema
// if it is new. Several processes may run setup on one file at once: the
// schema is created in a BEGIN IMMEDIATE transaction that checks again.
func (d *db) setup() error {
	ctx := context.Background()
	v, err := d.userVersion(ctx)
	if err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("%w: the file has schema version %d, this Docket knows up to %d", ErrNewerSchema, v, schemaVersion)
	}
	if v == 0 {
		if err := d.foreignTables(ctx); err != nil {
			return err
		}
	}
	var mode string
	if err := d.sql.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("set WAL mode: the file stays in %q mode", mode)
	}
	if v == schemaVersion {
		return nil
	}
	tx, err := d.sql.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see dsn
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var again int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&again); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if again == schemaVersion {
		return nil // another process created it meanwhile
	}
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// userVersion reads PRAGMA user_version, the first read of the file, which
// tells a non-database apart.
func (d *db) userVersion(ctx context.Context) (int, error) {
	var v int
	if err := d.sql.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		if code(err) == sqlite3.SQLITE_NOTADB {
			return 0, fmt.Errorf("%w: %w", ErrNotDatabase, err)
		}
		return 0, err
	}
	return v, nil
}

// foreignTables refuses a file at schema version 0 that already has tables:
// another application's database, which the Store must not write into.
func (d *db) foreignTables(ctx context.Context) error {
	var names []string
	rows, err := d.sql.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		if code(err) == sqlite3.SQLITE_NOTADB {
			return fmt.Errorf("%w: %w", ErrNotDatabase, err)
		}
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return err
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: it has tables %s and no Docket schema (user_version 0)", ErrForeignDatabase, strings.Join(names, ", "))
	}
	return nil
}
