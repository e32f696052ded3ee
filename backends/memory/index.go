package memory

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// table is a shard's read index: an open-addressing hash table (linear
// probing) of the items its LRU holds, which Get searches without a lock.
//
// Only writers holding the shard's lock change it, and they change a slot
// only in ways a reader may observe at any moment: nil to an item, an item
// to tombstone, or an item to its replacement under the same key. A slot
// never becomes nil again, so a key that is present always lies before the
// first nil slot of its probe sequence, whatever a reader interleaves with.
// Growing or cleaning the table builds a new one and publishes it with one
// atomic store; a reader still on the old table sees a snapshot from just
// before the swap, and the old table is never written again.
//
// A hit therefore performs only loads: no lock word, no reader count, no
// shared counter, so the cache lines it reads stay shared between cores.
type table struct {
	slots []atomic.Pointer[item]
	mask  uint64
	// live counts items; used counts items and tombstones. Written only by
	// the lock holder.
	live, used int
}

// tombstone marks a removed item's slot so that probe sequences running
// through it go on.
var tombstone = &item{}

// minTableSlots is the size of a new shard's table.
const minTableSlots = 8

func newTable(slots int) *table {
	return &table{slots: make([]atomic.Pointer[item], slots), mask: uint64(slots - 1)}
}

// slotHash is the part of a key's hash that picks its slot: the low bits
// already pick its shard (see Store.hash), so they would be the same for
// every key of a shard.
func slotHash(h uint64) uint64 { return bits.RotateLeft64(h, -maxShardBits) }

// lookup returns the item stored under k, or nil. It takes no lock.
func (t *table) lookup(k *mapKey, h uint64) *item {
	for i := slotHash(h); ; i++ {
		it := t.slots[i&t.mask].Load()
		if it == nil {
			return nil
		}
		if it != tombstone && it.key.sum == k.sum && it.key.exec == k.exec {
			return it
		}
	}
}

// put stores it under it.key, replacing the item there, and reports whether
// the table must be rebuilt (see rebuild). The caller holds the shard's lock.
func (t *table) put(it *item, h uint64) (full bool) {
	free := -1
	for i := slotHash(h); ; i++ {
		j := int(i & t.mask)
		cur := t.slots[j].Load()
		switch {
		case cur == nil:
			if free < 0 {
				free = j
				t.used++
			}
			t.slots[free].Store(it)
			t.live++
			// At most three quarters in use keeps probe sequences short
			// and guarantees every one of them ends at a nil slot.
			return 4*t.used > 3*len(t.slots)
		case cur == tombstone:
			if free < 0 {
				free = j
			}
		case cur.key == it.key:
			t.slots[j].Store(it)
			return false
		}
	}
}

// remove takes the item stored under k out of the table, if there is one.
// The caller holds the shard's lock.
func (t *table) remove(k *mapKey, h uint64) {
	for i := slotHash(h); ; i++ {
		j := i & t.mask
		cur := t.slots[j].Load()
		if cur == nil {
			return
		}
		if cur != tombstone && cur.key == *k {
			t.slots[j].Store(tombstone)
			t.live--
			return
		}
	}
}

// rebuild returns a copy of t without tombstones, sized so that it is at
// most a quarter full: the next rebuild is at least half its slots in puts
// away, which makes the copying O(1) per put, amortized, also in a full
// shard, where every put follows an eviction that leaves a tombstone. It
// shrinks a table that removals have emptied.
func (t *table) rebuild(seed maphash.Seed) *table {
	n := minTableSlots
	for n < 4*t.live {
		n *= 2
	}
	nt := newTable(n)
	for i := range t.slots {
		if it := t.slots[i].Load(); it != nil && it != tombstone {
			nt.put(it, keyHash(seed, &it.key))
		}
	}
	return nt
}
