package backends

import (
	"context"
	"sync"
)

// Group commit.
//
// A durable store pays per commit: a transaction, a log write, with sync an
// fsync. A ByteTier therefore commits the Sets that arrive while a commit is
// in progress together, in one Put, so that 32 concurrent writers share
// commits instead of queueing for 32 of them.
//
// The scheme is a writer queue (as in LevelDB): a Set queues itself; if no
// commit is running, it becomes the leader, takes the whole queue, puts it
// and wakes the writers it carried; then, if more have queued meanwhile, it
// hands leadership to the first of them. No goroutine runs between commits,
// and a lone writer pays only a mutex.

// write is one Set waiting to be committed.
type write struct {
	ctx context.Context
	rec Record
	err error
	// ready receives true when the write is to lead the next commit, or
	// false when another leader has committed it (err is then its result).
	ready chan bool
}

var writePool = sync.Pool{New: func() any { return &write{ready: make(chan bool, 1)} }}

func newWrite(ctx context.Context, rec Record) *write {
	w := writePool.Get().(*write)
	w.ctx, w.rec = ctx, rec
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
	recs    []Record // the leader's batch, reused
	leading bool     // a leader is committing; new writes queue up
}

// commit stores w's record and returns its result.
func (t *ByteTier) commit(w *write) error {
	c := &t.commits
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
	recs := c.recs[:0]
	c.recs = nil
	c.mu.Unlock()

	recs = t.putAll(w.ctx, batch, recs)
	for _, o := range batch {
		if o != w {
			o.ready <- false
		}
	}
	clear(batch)
	clear(recs)

	c.mu.Lock()
	c.spare, c.recs = batch[:0], recs[:0]
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

// putAll puts batch in one Put and sets each write's err; when that Put
// fails, it puts each record alone, so that one bad record fails alone. It
// returns recs, grown to hold the batch, for reuse.
func (t *ByteTier) putAll(ctx context.Context, batch []*write, recs []Record) []Record {
	if err := t.enter("set"); err != nil {
		for _, w := range batch {
			w.err = err
		}
		return recs
	}
	defer t.leave()
	// The leader's cancellation must not fail the others' writes, and a
	// write that has begun is finished in any case.
	ctx = context.WithoutCancel(ctx)
	for _, w := range batch {
		recs = append(recs, w.rec)
	}
	err := t.store.Put(ctx, recs)
	if err == nil || len(batch) == 1 {
		for _, w := range batch {
			w.err = err
		}
		return recs
	}
	for i, w := range batch {
		w.err = t.store.Put(ctx, recs[i:i+1])
	}
	return recs
}
