package badger

import (
	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
)

// SetRaw stores val under key's database key as is, bypassing the entry
// format, so that tests can plant damaged entries.
func SetRaw(s *Store, key keyer.Key, val []byte) error {
	k, err := backends.EntryKey(nil, key)
	if err != nil {
		return err
	}
	return s.db.db.Update(func(txn *badgerdb.Txn) error { return txn.Set(dbKey(k), val) })
}

// GetRaw returns the bytes stored under key's database key, as Badger sees
// them (so an entry Badger has expired is badgerdb.ErrKeyNotFound).
func GetRaw(s *Store, key keyer.Key) ([]byte, error) {
	k, err := backends.EntryKey(nil, key)
	if err != nil {
		return nil, err
	}
	var val []byte
	err = s.db.db.View(func(txn *badgerdb.Txn) error {
		item, err := txn.Get(dbKey(k))
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		return err
	})
	return val, err
}

// ExpiresAt is the Badger expiry Set gives an entry.
var ExpiresAt = expiresAt
