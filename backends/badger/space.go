package badger

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// ErrNoSpace is returned (wrapped) by writes, and by Open, when the disk
// under the Store has less free space than Badger may need to fill its
// memory-mapped files. Badger writes its log and memtables through memory
// maps of sparse files: on a full disk such a write is a SIGBUS that kills
// the process, not an error, so the Store refuses writes before that point.
// Writes work again once space is freed.
var ErrNoSpace = errors.New("badger: not enough free disk space")

// spaceCheckEvery bounds how long a free-space reading is trusted, and
// spaceCheckBytes how much may be written on it.
const (
	spaceCheckEvery = 100 * time.Millisecond
	spaceCheckBytes = 1 << 20
)

// reserve is the free space a Store keeps: a full value-log file, every
// memtable Badger may hold (the one being written, those waiting to be
// flushed, one more being created), each memory-mapped at about 1.3 times
// its size, and room for the tables a flush or compaction writes before it
// deletes the ones it replaces.
func reserve(o badgerdb.Options) int64 {
	memtables := int64(o.NumMemtables+1) * (o.MemTableSize + o.MemTableSize*3/10)
	return o.ValueLogFileSize + memtables + 4*o.BaseTableSize
}

// freeSpace returns the bytes available to an unprivileged writer on the
// file system of dir.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// checkSpace fails with ErrNoSpace when dir (or, before it exists, its
// parent) has less free space than reserve(o).
func checkSpace(dir string, o badgerdb.Options) error {
	free, err := freeSpace(dir)
	if err != nil {
		return nil // not there yet: Badger reports what it cannot create
	}
	if need := reserve(o); free < need {
		return fmt.Errorf("%w: %d MiB free, a Store needs %d MiB", ErrNoSpace, free>>20, need>>20)
	}
	return nil
}

// spaceGuard answers "is there room to write" from a reading of the free
// space that is at most spaceCheckEvery old and predates at most
// spaceCheckBytes of writes. Reads never consult it.
type spaceGuard struct {
	dir  string
	need int64

	mu      sync.Mutex
	checked time.Time
	written int64
	err     error
}

func (g *spaceGuard) check(n int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.written += int64(n)
	if time.Since(g.checked) < spaceCheckEvery && g.written < spaceCheckBytes {
		return g.err
	}
	g.checked, g.written, g.err = time.Now(), 0, nil
	free, err := freeSpace(g.dir)
	if err == nil && free < g.need {
		g.err = fmt.Errorf("%w: %d MiB free under %q, writes need %d MiB", ErrNoSpace, free>>20, g.dir, g.need>>20)
	}
	return g.err
}
