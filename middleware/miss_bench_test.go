package middleware_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// handCache is the cache Go programs hand-roll today, the baseline of the
// miss-path benchmarks: singleflight + sync.Map + a hex SHA-256 of the
// input's JSON.
type handCache struct {
	group singleflight.Group
	m     sync.Map
}

type handEntry struct {
	out     string
	expires time.Time
}

func (h *handCache) wrap(name string, fn func(context.Context, query) (string, error)) func(context.Context, query) (string, error) {
	lookup := func(key string) (string, bool) {
		if v, ok := h.m.Load(key); ok {
			if e := v.(handEntry); time.Now().Before(e.expires) {
				return e.out, true
			}
		}
		return "", false
	}
	return func(ctx context.Context, q query) (string, error) {
		data, err := json.Marshal(q)
		if err != nil {
			return "", err
		}
		hs := sha256.New()
		hs.Write([]byte(name))
		hs.Write([]byte{0})
		if id, ok := scope.ExecutionID(ctx); ok {
			hs.Write([]byte(id))
		}
		hs.Write([]byte{0})
		hs.Write(data)
		var sum [sha256.Size]byte
		key := hex.EncodeToString(hs.Sum(sum[:0]))
		if out, ok := lookup(key); ok {
			return out, nil
		}
		v, err, _ := h.group.Do(key, func() (any, error) {
			if out, ok := lookup(key); ok {
				return out, nil
			}
			out, err := fn(ctx, q)
			if err != nil {
				return nil, err
			}
			h.m.Store(key, handEntry{out: out, expires: time.Now().Add(time.Hour)})
			return out, nil
		})
		if err != nil {
			return "", err
		}
		return v.(string), nil
	}
}

func freeStep(_ context.Context, q query) (string, error) { return q.User, nil }

// BenchmarkMiss calls with a new key every time, as a server request does:
// with a cancellable context (http.Request.Context is never Background).
// The hand-rolled cache is the baseline of the same run.
func BenchmarkMiss(b *testing.B) {
	users := make([]string, 1<<16)
	for i := range users {
		users[i] = "user" + strconv.Itoa(i)
	}
	for _, impl := range []struct {
		name string
		make func() func(context.Context, query) (string, error)
	}{
		{"hand-rolled", func() func(context.Context, query) (string, error) {
			return (&handCache{}).wrap("fetch", freeStep)
		}},
		{"docket", func() func(context.Context, query) (string, error) {
			return middleware.Wrap("fetch", freeStep,
				middleware.WithPersistence(memory.New(1<<16), scope.Global, time.Hour))
		}},
	} {
		b.Run(impl.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			step := impl.make()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				// Limit changes every lap over users, so no key repeats.
				if _, err := step(ctx, query{User: users[i&(1<<16-1)], Limit: i >> 16}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExecution is one execution of a small workflow: Begin, five
// Workflow-scoped steps each called three times, End(nil); cancellable
// context, free steps. The hand-rolled baseline keeps a map per execution
// and drops it at the end.
func BenchmarkExecution(b *testing.B) {
	const steps, calls = 5, 3
	names := make([]string, steps)
	for i := range names {
		names[i] = fmt.Sprintf("step%d", i)
	}
	b.Run("hand-rolled", func(b *testing.B) {
		parent, cancel := context.WithCancel(context.Background())
		defer cancel()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ctx, exec := scope.Begin(parent, "exec_"+strconv.Itoa(i))
			h := &handCache{} // the execution's own map, dropped at its end
			for s := range steps {
				step := h.wrap(names[s], freeStep)
				for range calls {
					if _, err := step(ctx, query{User: "alice", Limit: s}); err != nil {
						b.Fatal(err)
					}
				}
			}
			_ = exec.End(nil)
		}
	})
	b.Run("docket", func(b *testing.B) {
		parent, cancel := context.WithCancel(context.Background())
		defer cancel()
		store := memory.New(1 << 14)
		wf := make([]func(context.Context, query) (string, error), steps)
		for s := range wf {
			wf[s] = middleware.Wrap(names[s], freeStep, middleware.WithPersistence(store, scope.Workflow, time.Hour))
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ctx, exec := scope.Begin(parent, "exec_"+strconv.Itoa(i))
			for s := range steps {
				for range calls {
					if _, err := wf[s](ctx, query{User: "alice", Limit: s}); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := exec.End(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
