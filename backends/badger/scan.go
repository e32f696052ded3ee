package badger

import (
	"context"

	badgerdb "github.com/dgraph-io/badger/v4"

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
// backends.Lister. It reads the entries in key order, in one read
// transaction; the scope and execution filters narrow it to a key prefix.
func (s *Store) List(ctx context.Context, f backends.Filter, fn func(backends.Info) error) error {
	return s.t().List(ctx, f, fn)
}

// DeleteMatching removes every entry f matches and returns how many it
// removed; see backends.Selector. It deletes in a write batch, so writers
// go on meanwhile.
func (s *Store) DeleteMatching(ctx context.Context, f backends.Filter) (int, error) {
	return s.t().DeleteMatching(ctx, f)
}

// scanPrefix is the narrowest key prefix that holds every entry f can
// match: keys start with the scope's tag, Workflow keys then with the
// execution.
func scanPrefix(f backends.Filter) []byte {
	switch {
	case f.Execution != "":
		return dbKey(backends.ExecutionPrefix(nil, f.Execution))
	case f.Scope == scope.Global:
		return []byte{nsEntry, 'g'}
	case f.Scope == scope.Workflow:
		return []byte{nsEntry, 'w'}
	}
	return []byte{nsEntry}
}

// each calls fn with every record under f's prefix, in key order, until fn
// returns an error or ctx ends. Badger does not show expired records.
func (d *db) each(ctx context.Context, f backends.Filter, fn func(it *badgerdb.Item, r backends.ScanRecord) error) (err error) {
	defer recovered(&err, "scan")
	prefix := scanPrefix(f)
	txn := d.db.NewTransaction(false)
	defer txn.Discard()
	opts := badgerdb.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	n := 0
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if n++; n%purgeCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		err := item.Value(func(v []byte) error {
			return fn(item, backends.ScanRecord{Key: item.Key()[1:], Value: v})
		})
		if err != nil {
			return damagedRead(err)
		}
	}
	return ctx.Err()
}

// Scan reads records with their values: an entry's step and version are
// in its header only.
func (d *db) Scan(ctx context.Context, f backends.Filter, fn func(backends.ScanRecord) error) error {
	return d.each(ctx, f, func(_ *badgerdb.Item, r backends.ScanRecord) error { return fn(r) })
}

// DeleteWhere queues the deletes in a write batch while it scans and
// flushes it at the end, also when ctx ended midway, so the count is true.
func (d *db) DeleteWhere(ctx context.Context, f backends.Filter, match func(backends.ScanRecord) bool) (n int, err error) {
	defer recovered(&err, "delete matching")
	if err := d.space.check(0); err != nil {
		return 0, err
	}
	wb := d.db.NewWriteBatch()
	stopped := d.each(ctx, f, func(item *badgerdb.Item, r backends.ScanRecord) error {
		if !match(r) {
			return nil
		}
		// The batch keeps the key until it commits, and the iterator
		// reuses its buffer: copy.
		if err := wb.Delete(item.KeyCopy(nil)); err != nil {
			return err
		}
		n++
		return nil
	})
	if stopped != nil && ctx.Err() == nil {
		wb.Cancel()
		return 0, stopped
	}
	if err := wb.Flush(); err != nil {
		return 0, err
	}
	return n, stopped
}

// Inspect returns the Info of the entry stored under key and the codec's
// encoding of its value, without decoding it, expired or not; see
// backends.ByteTier.Inspect.
func (s *Store) Inspect(ctx context.Context, key keyer.Key) (backends.Info, []byte, error) {
	return s.t().Inspect(ctx, key)
}
