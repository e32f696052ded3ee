package redis_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

const scopeEnv = "DOCKET_REDIS_SCOPE"

// sharedExecution is the execution ID every process of the Workflow case
// begins: one job resumed on several replicas.
const sharedExecution = "job_42"

// TestMiddlewareManyProcesses: 4 processes of 64 goroutines each call a
// persisted step on the same 100 inputs at once, through memory in front
// of Redis, and the step takes 20 ms: it runs 100 times in all, and every
// caller in every process gets the same result per input. In Workflow
// scope the processes share one execution ID, and End(nil) in one of them
// removes the execution's entries from Redis.
func TestMiddlewareManyProcesses(t *testing.T) {
	for _, sc := range []scope.Scope{scope.Global, scope.Workflow} {
		t.Run(sc.String(), func(t *testing.T) {
			srv := redistest.Start(t)
			env := []string{addrEnv + "=" + srv.Addr, prefixEnv + "=mw:", stepEnv + "=20ms",
				procsEnv + "=" + strconv.Itoa(manyProcs), scopeEnv + "=" + sc.String()}
			procs := make([]*helperProc, manyProcs)
			for i := range procs {
				procs[i] = startHelper(t, "TestMiddlewareHelper", env...)
			}
			runs := 0
			values := map[string]map[string]bool{}
			for _, p := range procs {
				for f := range p.lines {
					switch f[0] {
					case "runs":
						n, _ := strconv.Atoi(f[1])
						runs += n
					case "value":
						if values[f[1]] == nil {
							values[f[1]] = map[string]bool{}
						}
						values[f[1]][f[2]] = true
					}
				}
				p.wait(t)
			}
			if runs != manyKeys {
				t.Errorf("the step ran %d times in all, want %d", runs, manyKeys)
			}
			if len(values) != manyKeys {
				t.Errorf("callers got results for %d inputs, want %d", len(values), manyKeys)
			}
			for k, vs := range values {
				if len(vs) != 1 {
					t.Errorf("input %s: callers got %d different results: %v", k, len(vs), vs)
				}
			}
			if sc == scope.Workflow {
				// Each helper begins the execution; the last one to finish
				// ends it with nil.
				s := redis.New(srv.Client(t), redis.WithPrefix("mw:"))
				if n, err := s.PurgeExecution(ctx, sharedExecution); n != 0 || err != nil {
					t.Errorf("after End(nil): PurgeExecution found %d entries (%v), want none left", n, err)
				}
			}
		})
	}
}

func TestMiddlewareHelper(t *testing.T) {
	if !isHelper(t) {
		return
	}
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv(addrEnv), PoolSize: 64})
	defer c.Close()
	shared := redis.New(c, redis.WithPrefix(os.Getenv(prefixEnv)))
	store := backends.Tiered(memory.New(10_000), shared)
	sc := scope.Global
	if os.Getenv(scopeEnv) == scope.Workflow.String() {
		sc = scope.Workflow
	}
	step := helperDuration(stepEnv)
	procs, _ := strconv.Atoi(os.Getenv(procsEnv))
	pid := os.Getpid()
	var runs atomic.Int64
	compute := middleware.Wrap("compute", func(ctx context.Context, in int) (string, error) {
		runs.Add(1)
		tok, _ := middleware.FenceFrom(ctx)
		time.Sleep(step)
		return fmt.Sprintf("pid%d-input%d-token%d", pid, in, tok), nil
	}, middleware.WithPersistence(store, sc, time.Hour))

	callCtx := ctx
	var exec *scope.Execution
	if sc == scope.Workflow {
		callCtx, exec = scope.Begin(ctx, sharedExecution)
	}
	// Start together, as in TestManyProcessesHelper.
	if err := c.Incr(ctx, "mw:ready").Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		n, err := c.Get(ctx, "mw:ready").Int()
		if err == nil && n >= procs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d processes ready", n, procs)
		}
	}
	var (
		mu  sync.Mutex
		got = map[int]map[string]bool{}
		wg  sync.WaitGroup
	)
	for g := range manyGoroutines {
		wg.Go(func() {
			for i := range manyKeys {
				in := (i + g*7) % manyKeys
				v, err := compute(callCtx, in)
				if err != nil {
					t.Errorf("compute(%d): %v", in, err)
					return
				}
				mu.Lock()
				if got[in] == nil {
					got[in] = map[string]bool{}
				}
				got[in][v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	say("runs %d", runs.Load())
	for in, vs := range got {
		for v := range vs {
			say("value %d %s", in, v)
		}
	}
	if exec != nil {
		// The last process to finish ends the execution; the others leave
		// it running, as replicas that hand a job on would.
		if n, err := c.Incr(ctx, "mw:finished").Result(); err != nil {
			t.Fatal(err)
		} else if int(n) == procs {
			if err := exec.End(nil); err != nil {
				t.Fatalf("End(nil): %v", err)
			}
		}
	}
}
