package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
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

// faultLog records the store faults a persisted step reports, through its
// observer (WithObserver) and its logger (WithLogger), and the outcome of
// each call.
type faultLog struct {
	mu       sync.Mutex
	faults   []string // op: err
	errs     []error
	logged   []string // op of each warning
	outcomes []middleware.Outcome
}

func (l *faultLog) Start(ctx context.Context, _ middleware.CallInfo) (context.Context, middleware.CallSpan) {
	return ctx, faultSpan{l}
}

func (l *faultLog) Origin(context.Context) []byte { return nil }

func (l *faultLog) Fault(_ context.Context, _ middleware.CallInfo, store, op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, store+" "+op)
	l.errs = append(l.errs, err)
}

func (l *faultLog) Purged(context.Context, string, string, int, error) {}

type faultSpan struct{ l *faultLog }

func (s faultSpan) End(o middleware.Outcome) {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	s.l.outcomes = append(s.l.outcomes, o)
}

// faultHandler is a slog.Handler that records the op of each warning.
type faultHandler struct{ l *faultLog }

func (h faultHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h faultHandler) Handle(_ context.Context, r slog.Record) error {
	op := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "op" {
			op = a.Value.String()
		}
		return true
	})
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	h.l.logged = append(h.l.logged, op)
	return nil
}

func (h faultHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h faultHandler) WithGroup(string) slog.Handler      { return h }

// take returns the faults (observed and logged) and outcomes recorded
// since the last take.
func (l *faultLog) take() (faults []string, errs []error, logged []string, outcomes []middleware.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	faults, errs, logged, outcomes = l.faults, l.errs, l.logged, l.outcomes
	l.faults, l.errs, l.logged, l.outcomes = nil, nil, nil, nil
	return
}

// TestMiddlewareRedisRestart: Redis goes away in the middle of a run of
// calls to a step persisted in memory in front of Redis, and comes back
// empty. While it is away, results in the front are still served; a new
// input runs the step and returns its result, with the fault observed and
// logged (the default: fail open), or fails with ErrStore without running
// the step (WithStrict). Once Redis is back, the next new input takes a
// lease and commits to Redis as usual: another process finds its result
// there.
func TestMiddlewareRedisRestart(t *testing.T) {
	for _, strict := range []bool{false, true} {
		name := "FailOpen"
		if strict {
			name = "Strict"
		}
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			// With go-redis's defaults each command to a Redis that is down
			// takes about 2 s to fail (4 tries of 5 dials 100 ms apart);
			// one retry of one dial keeps this test fast. The pool is larger
			// than the dial failures the test causes: go-redis stops dialling
			// for a second once they reach the pool size, which would delay
			// the recovery checked here by that much.
			client := func() *goredis.Client {
				return srv.Client(t, func(o *goredis.Options) {
					o.MaxRetries, o.DialerRetries, o.PoolSize = 1, 1, 100
				})
			}
			const prefix = "restart:"
			var (
				runs   atomic.Int64
				tokens sync.Map // value: the fencing token its run saw
			)
			log := &faultLog{}
			step := func(ctx context.Context, in int) (string, error) {
				tok, fenced := middleware.FenceFrom(ctx)
				v := fmt.Sprintf("input%d-run%d-fenced%v", in, runs.Add(1), fenced)
				tokens.Store(v, tok)
				return v, nil
			}
			token := func(v string) uint64 {
				tok, _ := tokens.Load(v)
				return tok.(uint64)
			}
			opts := []middleware.Option{
				middleware.WithPersistence(backends.Tiered(memory.New(100), redis.New(client(), redis.WithPrefix(prefix))), scope.Global, time.Hour),
				middleware.WithObserver(log),
				middleware.WithLogger(slog.New(faultHandler{log})),
			}
			if strict {
				opts = append(opts, middleware.WithStrict())
			}
			compute := middleware.Wrap("compute", step, opts...)
			call := func(in int) (string, error) {
				t.Helper()
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				return compute(cctx, in)
			}
			// expect checks the faults and the outcome of the call just made.
			expect := func(what string, faults []string, res middleware.Result, ran bool) {
				t.Helper()
				got, errs, logged, outcomes := log.take()
				if fmt.Sprint(got) != fmt.Sprint(faults) {
					t.Errorf("%s: observed faults %q, want %q", what, got, faults)
				}
				for i, err := range errs {
					if err == nil {
						t.Errorf("%s: fault %q with a nil error", what, got[i])
					}
					if strict && !errors.Is(err, middleware.ErrStore) {
						t.Errorf("%s: strict fault %q: %v, want ErrStore", what, got[i], err)
					}
				}
				ops := make([]string, len(faults))
				for i, f := range faults {
					ops[i] = strings.Fields(f)[1]
				}
				if fmt.Sprint(logged) != fmt.Sprint(ops) {
					t.Errorf("%s: logged faults %q, want %q", what, logged, ops)
				}
				if len(outcomes) != 1 || outcomes[0].Result != res || outcomes[0].Ran != ran {
					t.Errorf("%s: outcomes %+v, want one %v with Ran %v", what, outcomes, res, ran)
				}
			}
			mustCall := func(what string, in int, want string) string {
				t.Helper()
				v, err := call(in)
				if err != nil {
					t.Fatalf("%s: compute(%d): %v", what, in, err)
				}
				if want != "" && v != want {
					t.Fatalf("%s: compute(%d) = %q, want %q", what, in, v, want)
				}
				return v
			}

			// Redis up: a lease, a commit.
			v1 := mustCall("before", 1, "input1-run1-fencedtrue")
			expect("before", nil, middleware.ResultMiss, true)

			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			mustCall("down, stored input", 1, v1)
			expect("down, stored input", nil, middleware.ResultHit, false)
			v2, err := call(2)
			if strict {
				if !errors.Is(err, middleware.ErrStore) || v2 != "" {
					t.Fatalf("down, new input, strict: %q, %v; want ErrStore", v2, err)
				}
				expect("down, new input", []string{"memory+redis acquire"}, middleware.ResultError, false)
				if n := runs.Load(); n != 1 {
					t.Fatalf("strict: the step ran %d times, want once: not while Redis was down", n)
				}
			} else {
				if err != nil || v2 != "input2-run2-fencedfalse" {
					t.Fatalf("down, new input: %q, %v; want the step's result, run without a lease", v2, err)
				}
				expect("down, new input", []string{"memory+redis acquire", "memory+redis write"}, middleware.ResultMiss, true)
				// The front tier kept it.
				mustCall("down, input run while down", 2, v2)
				expect("down, input run while down", nil, middleware.ResultHit, false)
			}

			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			// Redis is back, empty: the next new input takes a lease and
			// commits. Its token is still greater than those issued before
			// the restart.
			in, want := 3, "input3-run3-fencedtrue"
			if strict {
				in, want = 2, "input2-run2-fencedtrue"
			}
			v := mustCall("back", in, want)
			expect("back", nil, middleware.ResultMiss, true)
			if token(v) <= token(v1) {
				t.Errorf("token after the restart %d, want greater than %d before it", token(v), token(v1))
			}
			mustCall("back, stored input", 1, v1)
			expect("back, stored input", nil, middleware.ResultHit, false)

			// Another process, with a front of its own, finds the result in
			// Redis and does not run the step.
			other := middleware.Wrap("compute", func(context.Context, int) (string, error) {
				t.Error("the step ran in another process: the result did not reach Redis")
				return "", nil
			}, middleware.WithPersistence(backends.Tiered(memory.New(100), redis.New(client(), redis.WithPrefix(prefix))), scope.Global, time.Hour),
				middleware.WithObserver(log))
			octx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if got, err := other(octx, in); err != nil || got != v {
				t.Fatalf("another process: compute(%d) = %q, %v; want %q", in, got, err, v)
			}
			if _, _, _, outcomes := log.take(); len(outcomes) != 1 || outcomes[0].Tier != "redis" {
				t.Fatalf("another process: outcomes %+v, want one answered by redis", outcomes)
			}
		})
	}
}

// TestMiddlewareRetention is the idempotent re-run across processes: an
// execution that completed with retention on one replica (memory in front
// of Redis) is replayed by a re-run of its ID on another, which sends no
// second email; once the retention has passed a re-run sends again.
func TestMiddlewareRetention(t *testing.T) {
	srv := redistest.Start(t)
	var sent atomic.Int64
	replica := func() middleware.Step[string, string] {
		store := backends.Tiered(memory.New(100), redis.New(srv.Client(t), redis.WithPrefix("ret:")))
		return middleware.Wrap("send_email", func(_ context.Context, to string) (string, error) {
			return fmt.Sprintf("message %d to %s", sent.Add(1), to), nil
		}, middleware.WithPersistence(store, scope.Workflow, 24*time.Hour))
	}
	run := func(send middleware.Step[string, string], opts ...scope.Option) string {
		t.Helper()
		ctx, exec := scope.Begin(context.Background(), "order-42", opts...)
		msg, err := send(ctx, "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if err := exec.End(nil); err != nil {
			t.Fatalf("End(nil): %v", err)
		}
		return msg
	}
	first := run(replica(), scope.WithRetention(time.Hour))
	if again := run(replica(), scope.WithRetention(100*time.Millisecond)); again != first || sent.Load() != 1 {
		t.Fatalf("re-run on another replica: %q, %d sent; want %q replayed, 1 sent", again, sent.Load(), first)
	}
	time.Sleep(150 * time.Millisecond)
	if again := run(replica()); again == first || sent.Load() != 2 {
		t.Fatalf("re-run after the retention: %q, %d sent; want a new send, 2 sent", again, sent.Load())
	}
}
