package redis_test

import (
	"bufio"
	"context"
	"fmt"
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

// BenchmarkHotKey: 4 processes of 64 goroutines each call a persisted step,
// through memory in front of Redis, on one input at once; the step takes
// 1 ms. An iteration is one round: a new input, which every goroutine of
// every process calls once, and the round ends when all 256 calls have
// returned. It reports the calls answered per second and the step's runs
// per input, which must be 1: the benchmark fails if any round ran the step
// more than once, or any caller got another value than the rest. The
// same with one process (64 goroutines) is the baseline: what sharing the
// key across processes adds. It also reports the connections Redis
// accepted per round (pool growth and subscription connections).
func BenchmarkHotKey(b *testing.B) {
	for _, n := range []int{1, manyProcs} {
		b.Run(fmt.Sprintf("procs=%d", n), func(b *testing.B) { benchmarkHotKey(b, n) })
	}
}

func benchmarkHotKey(b *testing.B, nprocs int) {
	srv := redistest.Start(b)
	env := []string{addrEnv + "=" + srv.Addr, prefixEnv + "=hot:", stepEnv + "=1ms"}
	procs := make([]*helperProc, nprocs)
	for i := range procs {
		procs[i] = startHelper(b, "TestHotKeyHelper", env...)
	}
	for _, p := range procs {
		p.next(b, "ready", 30*time.Second)
	}
	raw := srv.Client(b)
	conns0 := connectionsReceived(b, raw)
	rounds, runs := 0, 0
	for b.Loop() {
		rounds++
		for _, p := range procs {
			if _, err := fmt.Fprintln(p.in, rounds); err != nil {
				b.Fatal(err)
			}
		}
		n, value := 0, ""
		for _, p := range procs {
			f := p.next(b, "done", 30*time.Second)
			r, _ := strconv.Atoi(f[1])
			n += r
			if value == "" {
				value = f[2]
			} else if f[2] != value {
				b.Fatalf("round %d: processes got %q and %q", rounds, value, f[2])
			}
		}
		if n != 1 {
			b.Errorf("round %d: the step ran %d times, want once", rounds, n)
		}
		runs += n
	}
	elapsed := b.Elapsed()
	conns := connectionsReceived(b, raw) - conns0
	for _, p := range procs {
		_ = p.in.Close()
		p.wait(b)
	}
	calls := rounds * nprocs * manyGoroutines
	b.ReportMetric(float64(calls)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(runs)/float64(rounds), "runs/key")
	b.ReportMetric(float64(conns)/float64(rounds), "conns/round")
}

// connectionsReceived is how many connections Redis has accepted.
func connectionsReceived(b *testing.B, raw *goredis.Client) int {
	b.Helper()
	info, err := raw.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_connections_received:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO stats without total_connections_received")
	return 0
}

// TestHotKeyHelper is a process of BenchmarkHotKey: for each round number
// read from its input, its goroutines call the step on it at once; it says
// how many times the step ran and the value its callers got.
func TestHotKeyHelper(t *testing.T) {
	if !isHelper(t) {
		return
	}
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv(addrEnv)})
	defer c.Close()
	store := backends.Tiered(memory.New(10_000), redis.New(c, redis.WithPrefix(os.Getenv(prefixEnv))))
	step := helperDuration(stepEnv)
	pid := os.Getpid()
	var runs atomic.Int64
	compute := middleware.Wrap("hot", func(ctx context.Context, in int) (string, error) {
		runs.Add(1)
		tok, _ := middleware.FenceFrom(ctx)
		select {
		case <-time.After(step):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return fmt.Sprintf("pid%d-input%d-token%d", pid, in, tok), nil
	}, middleware.WithPersistence(store, scope.Global, time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	say("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		round, err := strconv.Atoi(in.Text())
		if err != nil {
			t.Fatal(err)
		}
		before := runs.Load()
		var (
			wg     sync.WaitGroup
			values [manyGoroutines]string
		)
		for g := range values {
			wg.Go(func() {
				v, err := compute(ctx, round)
				if err != nil {
					t.Errorf("compute(%d): %v", round, err)
				}
				values[g] = v
			})
		}
		wg.Wait()
		for _, v := range values[1:] {
			if v != values[0] {
				t.Fatalf("round %d: callers got %q and %q", round, values[0], v)
			}
		}
		say("done %d %s", runs.Load()-before, values[0])
	}
}
