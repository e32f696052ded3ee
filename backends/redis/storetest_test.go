package redis_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/backends/storetest"
	"github.com/docket-go/docket/internal/redistest"
)

// The checks share one server; each store has a prefix of its own, so each
// starts empty.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) backends.Store { return newStore(t, srv) })
}

func TestConformanceTiered(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) backends.Store {
		return backends.Tiered(memory.New(10_000), newStore(t, srv))
	})
}

func TestConformanceCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	storetest.Run(t, func(t *testing.T) backends.Store {
		return redis.New(srv.ClusterClient(t), redis.WithPrefix(t.Name()+":"))
	})
}

// A Store not made by New errs on every method, saying so; none panics.
func TestZeroStore(t *testing.T) {
	s := &redis.Store{}
	errs := map[string]error{"Close": s.Close()}
	_, errs["Get"] = s.Get(ctx, globalKey(1), resultCodec)
	errs["Set"] = s.Set(ctx, globalKey(1), entry("a", 1, 0), resultCodec)
	errs["Delete"] = s.Delete(ctx, globalKey(1))
	_, errs["PurgeExecution"] = s.PurgeExecution(ctx, "e")
	errs["List"] = s.List(ctx, backends.Filter{}, func(backends.Info) error { return nil })
	_, errs["DeleteMatching"] = s.DeleteMatching(ctx, backends.Filter{})
	_, errs["RetainExecution"] = s.RetainExecution(ctx, "e", time.Now().Add(time.Hour))
	_, _, errs["Inspect"] = s.Inspect(ctx, globalKey(1))
	_, _, errs["Acquire"] = s.Acquire(ctx, globalKey(1), resultCodec)
	for name, err := range errs {
		if !errors.Is(err, backends.ErrClosed) || !strings.Contains(err.Error(), "redis.New") {
			t.Errorf("%s on a zero Store = %v; want ErrClosed saying to use redis.New", name, err)
		}
	}
	if s.Name() != "redis" || !s.EncodesValues() || s.ByteStore() != nil {
		t.Errorf("zero Store: Name %q, EncodesValues %v, ByteStore %v", s.Name(), s.EncodesValues(), s.ByteStore())
	}
}

// After Close, Acquire fails like the other methods; the client is not
// closed.
func TestCloseAcquire(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	s := redis.New(c)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Acquire(ctx, globalKey(1), resultCodec); !errors.Is(err, backends.ErrClosed) {
		t.Fatalf("Acquire after Close: %v, want ErrClosed", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("the client after the Store's Close: %v", err)
	}
}
