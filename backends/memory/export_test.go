package memory

import "github.com/docket-go/docket/keyer"

// Test-only views of a Store's internals.

// NumShards returns the number of shards.
func (s *Store) NumShards() int { s.lazyInit(); return len(s.shards) }

// ShardCapacities returns each shard's capacity.
func (s *Store) ShardCapacities() []int {
	s.lazyInit()
	caps := make([]int, len(s.shards))
	for i := range s.shards {
		caps[i] = s.shards[i].capacity
	}
	return caps
}

// ShardLens returns each shard's entry count.
func (s *Store) ShardLens() []int {
	lens := make([]int, len(s.shards))
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		lens[i] = sh.lru.Len()
		sh.mu.Unlock()
	}
	return lens
}

// ShardOf returns the index of key's shard.
func (s *Store) ShardOf(key keyer.Key) int {
	k := mapKey{exec: key.Execution, sum: key.Sum}
	sh := s.shardOf(s.hash(&k))
	for i := range s.shards {
		if &s.shards[i].shard == sh {
			return i
		}
	}
	panic("no shard")
}

// Holds reports whether key has an entry, expired or not, without touching
// its recency or removing it.
func (s *Store) Holds(key keyer.Key) bool {
	k := mapKey{exec: key.Execution, sum: key.Sum}
	sh := s.shardOf(s.hash(&k))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.lru.Contains(k)
}

// IndexSize returns the number of keys in the execution index over all
// shards, and the number of executions indexed (per shard, summed).
func (s *Store) IndexSize() (keys, execs int) {
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		for _, m := range sh.index {
			keys += len(m)
			execs++
		}
		sh.mu.Unlock()
	}
	return keys, execs
}

// ExecEntries returns the number of held entries that belong to an
// execution, counted from the LRUs, not from the index.
func (s *Store) ExecEntries() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i].shard
		sh.mu.Lock()
		for _, k := range sh.lru.Keys() {
			if k.exec != "" {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// ExecShardsTracked returns how many executions the shard registry lists.
func (s *Store) ExecShardsTracked() int {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	return len(s.execs.m)
}

// TableSlots returns the number of slots in each shard's read index.
func (s *Store) TableSlots() []int {
	s.lazyInit()
	n := make([]int, len(s.shards))
	for i := range s.shards {
		n[i] = len(s.shards[i].read.Load().slots)
	}
	return n
}

// LockShard locks key's shard until the returned function is called.
func (s *Store) LockShard(key keyer.Key) (unlock func()) {
	s.lazyInit()
	k := mapKey{exec: key.Execution, sum: key.Sum}
	sh := s.shardOf(s.hash(&k))
	sh.mu.Lock()
	return sh.mu.Unlock
}
