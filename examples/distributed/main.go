// Command distributed runs one persisted step in several processes that
// share a Redis: every process asks for the same keys at once, and each key
// runs once in all. Then it kills the process running a key (SIGKILL,
// mid-step) and shows another process finishing that key once the dead
// one's lease has expired. See README.md beside this file.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// A worker is this program started again with workerEnv set to its mode.
const (
	workerEnv = "DOCKET_DISTRIBUTED_WORKER"
	urlEnv    = "DOCKET_DISTRIBUTED_REDIS"
	prefixEnv = "DOCKET_DISTRIBUTED_PREFIX"
	keysEnv   = "DOCKET_DISTRIBUTED_KEYS"

	modeAll    = "all"    // ask for every key, from many goroutines
	modeHold   = "hold"   // run the slow key's step, forever
	modeFinish = "finish" // ask for the slow key

	goroutines = 16
	stepTime   = 200 * time.Millisecond
	leaseTTL   = time.Second
	slowKey    = "quarterly-report"
)

func main() {
	if mode, ok := os.LookupEnv(workerEnv); ok {
		os.Exit(workerMain(mode))
	}
	workers := flag.Int("workers", 4, "worker processes")
	keys := flag.Int("keys", 20, "keys every worker asks for")
	flag.Parse()
	if err := run(os.Stdout, *workers, *keys); err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(1)
	}
}

// run starts a Redis (or uses REDIS_URL), then the workers, and checks
// what they report.
func run(w io.Writer, workers, keys int) error {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		dir, err := os.MkdirTemp("", "docket-distributed-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := redistest.StartServer(dir)
		if err != nil {
			return fmt.Errorf("%w (or set REDIS_URL to a Redis 7 of yours)", err)
		}
		defer srv.Stop()
		url = srv.URL()
		fmt.Fprintf(w, "started redis-server on %s (set REDIS_URL to use another)\n", srv.Addr)
	} else {
		fmt.Fprintf(w, "using REDIS_URL %s\n", url)
	}
	// A prefix of this run's own, so a shared Redis starts empty for it.
	prefix := fmt.Sprintf("docket-distributed-%d:", time.Now().UnixNano())
	env := []string{urlEnv + "=" + url, prefixEnv + "=" + prefix, keysEnv + "=" + strconv.Itoa(keys)}

	fmt.Fprintf(w, "\n=== 1. %d workers x %d goroutines ask for the same %d keys at once (step: %v)\n", workers, goroutines, keys, stepTime)
	procs := make([]*worker, workers)
	for i := range procs {
		p, err := startWorker(modeAll, env)
		if err != nil {
			return err
		}
		defer p.kill()
		procs[i] = p
	}
	total := 0
	results := map[string]map[string]bool{}
	for i, p := range procs {
		runs := -1
		for f := range p.lines {
			switch f[0] {
			case "runs":
				runs, _ = strconv.Atoi(f[1])
			case "result":
				if results[f[1]] == nil {
					results[f[1]] = map[string]bool{}
				}
				results[f[1]][strings.Join(f[2:], " ")] = true
			}
		}
		if err := p.wait(); err != nil {
			return err
		}
		fmt.Fprintf(w, "  worker %d (pid %d): ran the step for %d keys, got all %d results\n", i+1, p.cmd.Process.Pid, runs, keys)
		total += runs
	}
	fmt.Fprintf(w, "  total: %d runs for %d keys\n", total, keys)
	if total != keys {
		return fmt.Errorf("%d runs for %d keys, want one per key", total, keys)
	}
	for k, vs := range results {
		if len(vs) != 1 {
			return fmt.Errorf("key %s: workers got %d different results", k, len(vs))
		}
	}
	if len(results) != keys {
		return fmt.Errorf("workers reported results for %d keys, want %d", len(results), keys)
	}
	fmt.Fprintln(w, "  every caller in every worker got the same result per key")

	fmt.Fprintf(w, "\n=== 2. a worker dies holding a key; another finishes it after the lease TTL (%v)\n", leaseTTL)
	holder, err := startWorker(modeHold, env)
	if err != nil {
		return err
	}
	defer holder.kill()
	f, ok := <-holder.lines
	if !ok || f[0] != "started" {
		return fmt.Errorf("holder said %q, want started", f)
	}
	fmt.Fprintf(w, "  worker A (pid %d): step for %q started, fencing token %s\n", holder.cmd.Process.Pid, slowKey, f[1])
	heldToken, _ := strconv.ParseUint(f[1], 10, 64)
	time.Sleep(2 * leaseTTL) // it renews its lease meanwhile
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = holder.wait()
	killed := time.Now()
	fmt.Fprintf(w, "  worker A: killed with SIGKILL mid-step (%v)\n", holder.cmd.ProcessState)
	finisher, err := startWorker(modeFinish, env)
	if err != nil {
		return err
	}
	defer finisher.kill()
	var token uint64
	var result string
	for f := range finisher.lines {
		switch f[0] {
		case "ran":
			token, _ = strconv.ParseUint(f[1], 10, 64)
		case "result":
			result = strings.Join(f[1:], " ")
		}
	}
	if err := finisher.wait(); err != nil {
		return err
	}
	fmt.Fprintf(w, "  worker B (pid %d): took the key over and ran its step, fencing token %d, %v after the kill\n",
		finisher.cmd.Process.Pid, token, time.Since(killed).Round(100*time.Millisecond))
	fmt.Fprintf(w, "  worker B: result %q\n", result)
	if token <= heldToken {
		return fmt.Errorf("the takeover's token %d is not greater than the dead holder's %d", token, heldToken)
	}
	fmt.Fprintln(w, "  the takeover's token is greater than the dead holder's: a system that saw A's token refuses A's late writes")
	return nil
}

// worker is a running worker process and its output, line by line.
type worker struct {
	cmd   *exec.Cmd
	lines chan []string
	done  chan struct{}
}

func startWorker(mode string, env []string) (*worker, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), append(env, workerEnv+"="+mode)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &worker{cmd: cmd, lines: make(chan []string, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 {
				p.lines <- f
			}
		}
		close(p.lines)
	}()
	return p, nil
}

func (p *worker) wait() error {
	<-p.done
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && !exit.Exited() {
		return nil // killed on purpose
	}
	return err
}

func (p *worker) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.wait()
	}
}

// ---- A worker: the same code a service replica would run ----

func workerMain(mode string) int {
	if err := workerRun(mode); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

func workerRun(mode string) error {
	opts, err := goredis.ParseURL(os.Getenv(urlEnv))
	if err != nil {
		return err
	}
	client := goredis.NewClient(opts)
	defer client.Close()
	shared := redis.New(client, redis.WithPrefix(os.Getenv(prefixEnv)), redis.WithLeaseTTL(leaseTTL))
	store := backends.Tiered(memory.New(10_000), shared)

	var runs atomic.Int64
	report := middleware.Wrap("report", func(ctx context.Context, name string) (string, error) {
		runs.Add(1)
		token, _ := middleware.FenceFrom(ctx)
		if mode == modeHold {
			fmt.Println("started", token)
			select {} // dies here
		}
		if mode == modeFinish {
			fmt.Println("ran", token)
		}
		time.Sleep(stepTime)
		return fmt.Sprintf("%s by pid %d", name, os.Getpid()), nil
	}, middleware.WithPersistence(store, scope.Global, time.Hour))

	ctx := context.Background()
	switch mode {
	case modeAll:
		keys, _ := strconv.Atoi(os.Getenv(keysEnv))
		var mu sync.Mutex
		got := map[string]string{}
		var wg sync.WaitGroup
		var failed atomic.Value
		for range goroutines {
			wg.Go(func() {
				for _, i := range rand.Perm(keys) {
					name := fmt.Sprintf("report-%02d", i)
					v, err := report(ctx, name)
					if err != nil {
						failed.Store(err)
						return
					}
					mu.Lock()
					if old, ok := got[name]; ok && old != v {
						failed.Store(fmt.Errorf("%s: two results in one process: %q, %q", name, old, v))
					}
					got[name] = v
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			return err
		}
		fmt.Println("runs", runs.Load())
		for k, v := range got {
			fmt.Println("result", k, v)
		}
	case modeHold, modeFinish:
		v, err := report(ctx, slowKey)
		if err != nil {
			return err
		}
		fmt.Println("result", v)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}
