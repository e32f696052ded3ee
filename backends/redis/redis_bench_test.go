package redis_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
)

// roundTrips counts the client's round trips: each command and each
// pipeline is one.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkHit compares a Redis-tier hit (Store.Get: GET, then checksum,
// header and decoding of a small struct) with a bare go-redis GET of the
// same bytes, on one server and connection pool, in one run.
func BenchmarkHit(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	s := redis.New(c, redis.WithPrefix("bench:"))
	k := globalKey(1)
	if err := s.Set(context.Background(), k, entry("alice", 1, time.Hour), resultCodec); err != nil {
		b.Fatal(err)
	}
	keys, err := c.Keys(context.Background(), "bench:*").Result()
	if err != nil || len(keys) != 1 {
		b.Fatalf("keys: %q, %v", keys, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("Store.Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, k, resultCodec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GoRedisGET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, keys[0]).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHitRatio interleaves a Redis-tier hit and a bare GET of the same
// bytes, one of each per iteration, so that both see the same noise on a
// shared machine; it reports each one's time and their ratio.
func BenchmarkHitRatio(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	s := redis.New(c, redis.WithPrefix("bench:"))
	k := globalKey(1)
	if err := s.Set(context.Background(), k, entry("alice", 1, time.Hour), resultCodec); err != nil {
		b.Fatal(err)
	}
	keys, err := c.Keys(context.Background(), "bench:*").Result()
	if err != nil || len(keys) != 1 {
		b.Fatalf("keys: %q, %v", keys, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var tier, bare time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := s.Get(ctx, k, resultCodec); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := c.Get(ctx, keys[0]).Bytes(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		tier += t1.Sub(t0)
		bare += t2.Sub(t1)
	}
	b.ReportMetric(float64(tier.Nanoseconds())/float64(b.N), "tier-ns/hit")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "GET-ns/hit")
	b.ReportMetric(float64(tier)/float64(bare), "tier/GET")
}

// BenchmarkMiss is a miss with a lease: Acquire of a key nobody has stored
// (it takes the lease) and Commit of the result, with no other process
// waiting. It interleaves, one of each per iteration, GET+SET of the same
// bytes on another client of the same server: the least a miss costs
// without coordination (look, then store). It reports each one's time,
// their ratio and the lease path's round trips per miss.
func BenchmarkMiss(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	rt := &roundTrips{}
	c.AddHook(rt)
	bare := srv.Client(b)
	s := redis.New(c, redis.WithPrefix("bench:"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The scripts' first calls load them (EVALSHA, then EVAL): not counted.
	for i := range 2 {
		_, l, err := s.Acquire(ctx, globalKey(-1-i), resultCodec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Commit(ctx, entry("warm", i, time.Hour), resultCodec); err != nil {
			b.Fatal(err)
		}
	}
	e := entry("alice", 1, time.Hour)
	val, err := backends.EncodeEntry(e, resultCodec)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	rt.n.Store(0)
	var lease, getset time.Duration
	for b.Loop() {
		i := int(missSeq.Add(1))
		t0 := time.Now()
		_, l, err := s.Acquire(ctx, globalKey(i), resultCodec)
		if err != nil || l == nil {
			b.Fatalf("Acquire: %v, %v", l, err)
		}
		if _, err := l.Commit(ctx, e, resultCodec); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		k := "bench:bare:" + strconv.Itoa(i)
		if err := bare.Get(ctx, k).Err(); err != goredis.Nil {
			b.Fatal(err)
		}
		if err := bare.Set(ctx, k, val, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		lease += t1.Sub(t0)
		getset += t2.Sub(t1)
	}
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "round-trips/miss")
	b.ReportMetric(float64(lease.Nanoseconds())/float64(b.N), "lease-ns/miss")
	b.ReportMetric(float64(getset.Nanoseconds())/float64(b.N), "GETSET-ns/miss")
	b.ReportMetric(float64(lease)/float64(getset), "lease/GETSET")
}

// missSeq numbers the keys of BenchmarkMiss across its runs (-count), so
// every iteration misses.
var missSeq atomic.Int64

// BenchmarkWaiter is a process that finds a key's lease held and waits for
// the holder's commit: per iteration, one Store takes a key's lease,
// another Store's Acquire of the key waits (subscribed to the key's
// channel), the holder commits, and the waiter returns the entry. It
// reports the waiter's round trips (scripts; the subscription is one
// more, on a connection of its own), and the time from the holder's
// commit returning to the waiter's Acquire returning.
func BenchmarkWaiter(b *testing.B) {
	srv := redistest.Start(b)
	raw := srv.Client(b)
	holder := redis.New(srv.Client(b), redis.WithPrefix("bench:"))
	wc := srv.Client(b)
	rt := &roundTrips{}
	wc.AddHook(rt)
	waiter := redis.New(wc, redis.WithPrefix("bench:"), redis.WithPollInterval(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := entry("alice", 1, time.Hour)
	var wake time.Duration
	n := 0
	for b.Loop() {
		k := globalKey(int(missSeq.Add(1)))
		_, l, err := holder.Acquire(ctx, k, resultCodec)
		if err != nil || l == nil {
			b.Fatalf("holder Acquire: %v, %v", l, err)
		}
		before := rt.n.Load()
		done := make(chan time.Time)
		go func() {
			if e, l, err := waiter.Acquire(ctx, k, resultCodec); err != nil || l != nil || e.Value == nil {
				b.Errorf("waiter Acquire: %v, %v, %v", e.Value, l, err)
			}
			done <- time.Now()
		}()
		// Commit once the waiter has subscribed and looked again.
		for {
			chans, err := raw.PubSubShardChannels(ctx, "bench:*").Result()
			if err != nil {
				b.Fatal(err)
			}
			if len(chans) == 1 && rt.n.Load()-before >= 2 {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		if _, err := l.Commit(ctx, e, resultCodec); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		wake += (<-done).Sub(committed)
		n++
	}
	b.ReportMetric(float64(rt.n.Load())/float64(n), "round-trips/waiter")
	b.ReportMetric(float64(wake.Nanoseconds())/float64(n), "wake-ns")
}
