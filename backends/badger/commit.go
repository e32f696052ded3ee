package badger

import (
	"errors"
	"fmt"
	"sync"

	badgerdb "github.com/dgraph-io/badger/v4"
)

// Group commit.
//
// Badger batches the transactions that concurrent goroutines commit into one
// write to its logs, but with SyncWrites it still syncs the memtable's log
// once per transaction in the batch (db.writeToLSM), so 32 concurrent
// writers wait for 32 fsyncs where one would do: measured here, 32 writers
// reach only about 1.8 times the rate of one. The Store therefore commits
// the Sets that arrive while a commit is in progress together, in one
// transaction, which Badger writes with one fsync.
//
// The scheme is a writer queue (as in LevelDB): a Set queues itself; if no
// commit is running, it becomes the leader, takes the whole queue, commits
// it and wakes the writers it carried; then, if more have queued meanwhile,
// it hands leadership to the first of them. No goroutine runs between
// commits, and a lone writer pays only a mutex.

// write is one Set waiting to be committed.
type write struct {
	key, val  []byte
	expiresAt uint64
	err       error
	// ready receives true when the write is to lead the next commit, or
	// false when another leader has committed it (err is then its result).
	ready chan bool
}

var writePool = sync.Pool{New: func() any { return &write{ready: make(chan bool, 1)} }}

func newWrite(key, val []byte, expiresAt uint64) *write {
	w := writePool.Get().(*write)
	w.key, w.val, w.expiresAt = key, val, expiresAt
	return w
}

func (w *write) release() {
	*w = write{ready: w.ready}
	writePool.Put(w)
}

type committer struct {
	mu      sync.Mutex
	queue   []*write
	spare   []*write // the previous queue's array, reused
	leading bool     // a leader is committing; new writes queue up
}

// commit makes w durable (as far as the Store's sync setting goes) and
// returns its result.
func (s *Store) commit(w *write) error {
	c := &s.commits
	c.mu.Lock()
	c.queue = append(c.queue, w)
	if c.leading {
		c.mu.Unlock()
		if lead := <-w.ready; !lead {
			return w.err
		}
		c.mu.Lock()
	}
	c.leading = true
	batch := c.queue
	c.queue, c.spare = c.spare, nil
	c.mu.Unlock()

	s.writeAll(batch)
	for _, o := range batch {
		if o != w {
			o.ready <- false
		}
	}
	clear(batch)

	c.mu.Lock()
	c.spare = batch[:0]
	var next *write
	if len(c.queue) > 0 {
		next = c.queue[0]
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	if next != nil {
		next.ready <- true
	}
	return w.err
}

// writeAll commits batch, in as few transactions as Badger's size limit
// allows, and sets each write's err.
func (s *Store) writeAll(batch []*write) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		err := s.errClosed("set")
		for _, w := range batch {
			w.err = err
		}
		return
	}
	txn := s.db.NewTransaction(true)
	start := 0 // batch[start:i] are in txn, unless they failed to join it
	for i, w := range batch {
		e := &badgerdb.Entry{Key: w.key, Value: w.val, ExpiresAt: w.expiresAt}
		err := txn.SetEntry(e)
		if errors.Is(err, badgerdb.ErrTxnTooBig) {
			s.commitTxn(txn, batch[start:i])
			txn, start = s.db.NewTransaction(true), i
			err = txn.SetEntry(e)
		}
		if err != nil {
			// This write alone is bad (too large, say); the others go on.
			w.err = fmt.Errorf("badger: set: %w", err)
		}
	}
	s.commitTxn(txn, batch[start:])
}

// commitTxn commits txn and reports the result to its writes.
func (s *Store) commitTxn(txn *badgerdb.Txn, in []*write) {
	err := txn.Commit()
	if err != nil {
		err = fmt.Errorf("badger: set: %w", err)
	}
	for _, w := range in {
		if w.err == nil {
			w.err = err
		}
	}
}
