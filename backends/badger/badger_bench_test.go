package badger_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
)

// benchKeys are precomputed, so that benchmarks do not time SHA-256.
var benchKeys = func() []keyer.Key {
	ks := make([]keyer.Key, 1<<14)
	for i := range ks {
		if i%2 == 0 {
			ks[i] = globalKey(i)
		} else {
			ks[i] = workflowKey("exec_12345", i)
		}
	}
	return ks
}()

func benchEntry(i int) backends.Entry {
	now := time.Now()
	return backends.Entry{Value: newUser(i), Created: now, Expires: now.Add(time.Hour), Execution: "exec_12345"}
}

func fill(b *testing.B, s *badger.Store, n int) {
	b.Helper()
	for i := range n {
		if err := s.Set(ctx, benchKeys[i], benchEntry(i), userCodec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet is a back-tier hit: Badger read plus DecodeEntry with a JSON
// codec of a small struct. "memtable" reads entries still in Badger's write
// buffer; "table" reads them from on-disk tables through the block cache,
// as after a restart.
func BenchmarkGet(b *testing.B) {
	const n = 4096
	for _, where := range []string{"memtable", "table"} {
		b.Run(where, func(b *testing.B) {
			dir := b.TempDir()
			s := open(b, dir)
			fill(b, s, n)
			if where == "table" {
				// Close flushes the memtable to a table.
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				s = open(b, dir)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Get(ctx, benchKeys[i%n], userCodec); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkTieredBackHit is a front-tier miss answered by the back tier:
// Badger read, decode, promotion into the front. The front holds one entry
// and the keys alternate, so every Get misses it.
func BenchmarkTieredBackHit(b *testing.B) {
	s := open(b, b.TempDir())
	fill(b, s, 2)
	t := backends.Tiered(memory.New(1), s)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e, err := t.Get(ctx, benchKeys[i%2], userCodec)
		if err != nil || e.Tier != "badger" {
			b.Fatal(e.Tier, err)
		}
		i++
	}
}

// BenchmarkSet is a miss's write without sync: EncodeEntry with JSON plus a
// Badger transaction.
func BenchmarkSet(b *testing.B) {
	s := open(b, b.TempDir())
	e := benchEntry(1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Set(ctx, benchKeys[i%len(benchKeys)], e, userCodec); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSetSync compares one writer with 32 concurrent ones, every Set
// synced: with group commit the 32 share fsyncs. ns/op is wall time per
// Set over all writers, the inverse of throughput.
func BenchmarkSetSync(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := open(b, b.TempDir(), badger.WithSyncWrites(true))
			writeConcurrently(b, s, writers)
		})
	}
}

// BenchmarkBadgerTxnSync is BenchmarkSetSync on Badger directly, one
// transaction per write: Badger batches concurrent transactions into one
// write but syncs its log once per transaction, so 32 writers gain little.
// It is the reason for the Store's own group commit.
func BenchmarkBadgerTxnSync(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			opts := badgerdb.DefaultOptions(b.TempDir()).WithLogger(nil).WithSyncWrites(true).
				WithMemTableSize(8 << 20).WithNumMemtables(2).WithBlockCacheSize(8 << 20).WithDetectConflicts(false)
			db, err := badgerdb.Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			val, err := backends.EncodeEntry(benchEntry(1), userCodec)
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range writers {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= b.N {
							return
						}
						k := benchKeys[i%len(benchKeys)].Sum[:]
						if err := db.Update(func(txn *badgerdb.Txn) error { return txn.Set(k, val) }); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkSetParallel is BenchmarkSetSync without sync.
func BenchmarkSetParallel(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := open(b, b.TempDir())
			writeConcurrently(b, s, writers)
		})
	}
}

func writeConcurrently(b *testing.B, s *badger.Store, writers int) {
	e := benchEntry(1)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := s.Set(ctx, benchKeys[i%len(benchKeys)], e, userCodec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkOpen measures Open of an empty directory with the Store's
// defaults and with Badger's own; MiB/op is what Open allocates on the Go
// heap (Close is not counted).
func BenchmarkOpen(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []badger.Option
	}{
		{"defaults", nil},
		{"badger-defaults", []badger.Option{badger.WithBadgerOptions(func(o badgerdb.Options) badgerdb.Options {
			return badgerdb.DefaultOptions(o.Dir).WithLogger(nil)
		})}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var allocated uint64
			for b.Loop() {
				dir := b.TempDir()
				allocated += openAlloc(b, dir, tc.opts...)
			}
			b.ReportMetric(float64(allocated)/float64(b.N)/(1<<20), "MiB/op")
		})
	}
}

// openAlloc opens and closes a Store in dir and returns the bytes Open
// allocated.
func openAlloc(tb testing.TB, dir string, opts ...badger.Option) uint64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := badger.Open(dir, opts...)
	runtime.ReadMemStats(&after)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return after.TotalAlloc - before.TotalAlloc
}
