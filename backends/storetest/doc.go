// Package storetest is the conformance suite of backends.Store, as
// testing/fstest is for file systems: one call in a store's tests checks
// every duty the Store interface states.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) backends.Store {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run calls newStore once per check, for a store of its own that holds
// nothing. It checks hits, misses and replacement; that Created, Expires,
// Execution, Origin and Version come back as set; that Workflow and Global
// keys with one digest are different entries; expiry (an expired entry is
// never returned, and is removed); Delete; PurgeExecution (that execution
// only, Global untouched, thousands of entries, a true count);
// RetainExecution, for a store that is a scope.Retainer (that execution's
// entries get the retention's end as their expiry, or keep their own where
// it is earlier, are served until then, then read as expired and are
// removed; other executions' and Global entries untouched; a true count);
// empty,
// zero-TTL and 16 MiB values; concurrent use (run with -race); that the
// store is comparable; and that an invalid key is an error, not a panic.
//
// Some checks need more than the Store interface, and Run finds it on the
// store or, for a backends.TieredStore, on its tiers:
//
//   - Damaged entries: for a store built by backends.NewByteTier, Run plants
//     garbage, truncated, bit-flipped, foreign-format-version, other-codec
//     and undecodable entries through its ByteStore and expects
//     backends.ErrCorrupt, then checks that a Set overwrites them. Stores
//     that keep decoded values have no bytes to damage; the check is
//     skipped for them.
//   - Removal of expired entries: Run watches the ByteStore (the record
//     must go), or a Len() int method. A store that removes expired entries
//     in the background may provide DeleteExpired() int or
//     DeleteExpired(context.Context) (int, error) for Run to call;
//     otherwise it has a few seconds (native TTLs have whole-second
//     resolution).
//   - Closing: for a store with Close() error, Run closes it and expects
//     every method to fail with an error wrapping backends.ErrClosed, and a
//     second Close to return nil.
package storetest
