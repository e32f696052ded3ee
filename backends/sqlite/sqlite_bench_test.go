package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/keyer"
)

// user is a small result struct, the kind a step returns.
type user struct {
	ID    int      `json:"id"`
	Name  string   `json:"name"`
	Email string   `json:"email"`
	Tags  []string `json:"tags"`
}

type userCodec struct{}

func (userCodec) ID() uint8                    { return 1 }
func (userCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }
func (userCodec) Decode(data []byte) (any, error) {
	var u *user
	err := json.Unmarshal(data, &u)
	return u, err
}

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
	u := &user{ID: i, Name: fmt.Sprint("user ", i), Email: fmt.Sprintf("u%d@example.com", i), Tags: []string{"a", "b"}}
	return backends.Entry{Value: u, Created: now, Expires: now.Add(time.Hour), Execution: "exec_12345"}
}

// benchCtx is cancellable, as a server request's context is.
func benchCtx(b *testing.B) context.Context {
	c, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return c
}

// BenchmarkTieredBackHit is a front-tier miss answered by SQLite: a read of
// the row, DecodeEntry with a JSON codec of a small struct, and promotion
// into the front. The front holds one entry and the keys alternate, so
// every Get misses it.
func BenchmarkTieredBackHit(b *testing.B) {
	c := benchCtx(b)
	s := open(b, dbPath(b))
	for i := range 2 {
		if err := s.Set(c, benchKeys[i], benchEntry(i), userCodec{}); err != nil {
			b.Fatal(err)
		}
	}
	t := backends.Tiered(memory.New(1), s)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e, err := t.Get(c, benchKeys[i%2], userCodec{})
		if err != nil || e.Tier != "sqlite" {
			b.Fatal(e.Tier, err)
		}
		i++
	}
}

// BenchmarkMissWrite is a miss's write through Tiered: EncodeEntry with
// JSON, one SQLite transaction (synchronous=NORMAL), then the front.
func BenchmarkMissWrite(b *testing.B) {
	c := benchCtx(b)
	t := backends.Tiered(memory.New(1<<14), open(b, dbPath(b)))
	e := benchEntry(1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := t.Set(c, benchKeys[i%len(benchKeys)], e, userCodec{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSetConcurrent compares one writer with 32 concurrent ones: with
// group commit the 32 share transactions (and, with sync=full, fsyncs).
// ns/op is wall time per Set over all writers; sets/s its inverse.
func BenchmarkSetConcurrent(b *testing.B) {
	for _, sync := range []string{"normal", "full"} {
		for _, writers := range []int{1, 32} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d", sync, writers), func(b *testing.B) {
				var opts []sqlite.Option
				if sync == "full" {
					opts = append(opts, sqlite.WithSyncFull())
				}
				writeConcurrently(b, open(b, dbPath(b), opts...), writers)
			})
		}
	}
}

func writeConcurrently(b *testing.B, s *sqlite.Store, writers int) {
	c := benchCtx(b)
	e := benchEntry(1)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := s.Set(c, benchKeys[i%len(benchKeys)], e, userCodec{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
}

// BenchmarkRawSQLite is the floor under the Store's numbers, measured the
// same way: a bare database/sql read of one row by key, and a bare
// BEGIN IMMEDIATE, INSERT OR REPLACE, COMMIT of one row (WAL,
// synchronous=NORMAL), on a two-column table without the Store's indexes,
// codec or entry format.
func BenchmarkRawSQLite(b *testing.B) {
	c := benchCtx(b)
	db, err := sql.Open("sqlite", dbPath(b)+"?_txlock=immediate&_synchronous=NORMAL&_journal_mode=WAL")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`); err != nil {
		b.Fatal(err)
	}
	put, err := db.Prepare(`INSERT OR REPLACE INTO t VALUES (?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	get, err := db.Prepare(`SELECT v FROM t WHERE k = ?`)
	if err != nil {
		b.Fatal(err)
	}
	v := make([]byte, 200)
	b.Run("get", func(b *testing.B) {
		if _, err := put.ExecContext(c, []byte{1}, v); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			var out []byte
			if err := get.QueryRowContext(c, []byte{1}).Scan(&out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tx, err := db.BeginTx(c, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.StmtContext(c, put).ExecContext(c, []byte{byte(i), byte(i >> 8)}, v); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
