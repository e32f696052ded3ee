package memory

import (
	"context"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

var (
	_ backends.Lister   = (*Store)(nil)
	_ backends.Selector = (*Store)(nil)
)

// listBatch bounds how many entries List copies out of a shard under its
// lock before it calls fn, which runs without a lock (fn may use the
// Store).
const listBatch = 256

// info describes the entry it holds. An entry with an execution in its key
// is a Workflow entry: Global keys carry none.
func (it *item) info() backends.Info {
	k := keyer.Key{Scope: scope.Global, Execution: it.key.exec, Step: it.entry.Step, Sum: it.key.sum}
	if k.Execution != "" {
		k.Scope = scope.Workflow
	}
	i := backends.Info{
		Key:       k,
		Version:   it.entry.Version,
		Created:   it.entry.Created,
		Expires:   it.entry.Expires,
		Execution: it.entry.Execution,
		Origin:    it.entry.Origin,
		Tier:      tierName,
	}
	if k.Scope == scope.Workflow {
		i.Execution = k.Execution
	}
	return i
}

// List calls fn with an Info of every entry f matches, one shard at a time,
// until fn returns an error, which List returns; see backends.Lister. fn
// runs without a lock held, so it may call the Store. Size and Codec are
// zero: the Store keeps decoded values.
func (s *Store) List(ctx context.Context, f backends.Filter, fn func(backends.Info) error) error {
	s.lazyInit()
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	var batch []backends.Info
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &s.shards[i].shard
		sh.mu.Lock()
		keys := sh.lru.Keys()
		sh.mu.Unlock()
		// Keys is a snapshot; entries are looked up again in batches, so
		// the shard is never locked for long.
		for start := 0; start < len(keys); start += listBatch {
			batch = batch[:0]
			sh.mu.Lock()
			for _, k := range keys[start:min(start+listBatch, len(keys))] {
				if it, ok := sh.lru.Peek(k); ok {
					if in := it.info(); f.Matches(in) {
						batch = append(batch, in)
					}
				}
			}
			sh.mu.Unlock()
			for _, in := range batch {
				if err := fn(in); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// DeleteMatching removes every entry f matches and returns how many it
// removed; see backends.Selector. It locks one shard at a time.
func (s *Store) DeleteMatching(ctx context.Context, f backends.Filter) (int, error) {
	s.lazyInit()
	if f.Now.IsZero() {
		f.Now = time.Now()
	}
	n := 0
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		sh := &s.shards[i].shard
		sh.mu.Lock()
		for _, k := range sh.lru.Keys() {
			if it, ok := sh.lru.Peek(k); ok && f.Matches(it.info()) {
				sh.lru.Remove(k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n, nil
}
