package badger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/docket-go/docket/backends"
)

// ErrDamaged is returned (wrapped, with backends.ErrCorrupt) by Open when a
// file of the database is damaged or missing: the error names it. Open
// refuses rather than let Badger crash the process in a goroutine of its
// own, skip a table whose checksum fails, or delete the tables a missing
// MANIFEST no longer lists.
var ErrDamaged = errors.New("badger: database file damaged")

func damaged(dir, file, format string, args ...any) error {
	return fmt.Errorf("badger: open %q: %s: %s: %w: %w", dir, file, fmt.Sprintf(format, args...), ErrDamaged, backends.ErrCorrupt)
}

// verifyDir checks what Badger would mishandle before it opens dir: a
// MANIFEST missing, unreadable or cut mid-entry beside tables it no longer
// lists (Badger deletes those), and tables that do not open or fail their
// checksums (Badger panics in a goroutine Open starts, or skips the table).
// Every table is read once, so Open costs time in proportion to the data.
func verifyDir(dir string, o badgerdb.Options) error {
	names, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("badger: open %q: %w", dir, err)
	}
	var tables []uint64
	for _, n := range names {
		if id, ok := table.ParseFileID(n.Name()); ok && strings.HasSuffix(n.Name(), ".sst") {
			tables = append(tables, id)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	slices.Sort(tables)
	mpath := filepath.Join(dir, badgerdb.ManifestFilename)
	f, err := os.Open(mpath)
	if errors.Is(err, os.ErrNotExist) {
		return damaged(dir, badgerdb.ManifestFilename, "missing beside %d tables (%s...): opening would delete them", len(tables), table.IDToFilename(tables[0]))
	}
	if err != nil {
		return fmt.Errorf("badger: open %q: %w", dir, err)
	}
	mf, end, err := badgerdb.ReplayManifestFile(f, o.ExternalMagicVersion, o)
	st, serr := f.Stat()
	f.Close()
	if err != nil {
		return damaged(dir, badgerdb.ManifestFilename, "%v", err)
	}
	cut := serr == nil && end < st.Size()
	for _, id := range tables {
		if _, ok := mf.Tables[id]; !ok && cut {
			return damaged(dir, badgerdb.ManifestFilename, "cut mid-entry, and it does not list %s: opening would delete it", table.IDToFilename(id))
		}
	}
	if len(o.EncryptionKey) > 0 {
		return nil // tables need the key registry to be read
	}
	for id, tm := range mf.Tables {
		if err := verifyTable(table.NewFilename(id, dir), tm, o); err != nil {
			return damaged(dir, table.IDToFilename(id), "%v", err)
		}
	}
	return nil
}

// verifyTable opens one table and checks every block's checksum, turning a
// panic in Badger's table code into an error.
func verifyTable(path string, tm badgerdb.TableManifest, o badgerdb.Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable: %v", r)
		}
	}()
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("listed in the MANIFEST but missing")
		}
		return err
	}
	t, err := table.OpenTable(mf, table.Options{
		ReadOnly:    true,
		ChkMode:     options.OnTableRead,
		BlockSize:   o.BlockSize,
		Compression: tm.Compression,
	})
	if err != nil {
		return err
	}
	// Not DecrRef: at zero references it deletes the file.
	return t.MmapFile.Close(-1)
}
