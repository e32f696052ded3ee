package redis_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
)

// The environment of a helper process: which helper it is, and the Redis
// and Store it uses.
const (
	helperEnv   = "DOCKET_REDIS_HELPER"
	addrEnv     = "DOCKET_REDIS_ADDR"
	prefixEnv   = "DOCKET_REDIS_PREFIX"
	leaseEnv    = "DOCKET_REDIS_LEASE_TTL"
	stepEnv     = "DOCKET_REDIS_STEP"
	procsEnv    = "DOCKET_REDIS_PROCS"
	outputStart = "helper: "
)

// helperProc is a re-executed test binary running one helper test.
type helperProc struct {
	cmd   *exec.Cmd
	lines chan []string // output lines after outputStart, split in fields
	done  chan struct{}
}

// startHelper re-executes the test binary to run the test named name as a
// helper, with env added to its environment.
func startHelper(t *testing.T, name string, env ...string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + name}, env...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &helperProc{cmd: cmd, lines: make(chan []string, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), outputStart); ok {
				p.lines <- strings.Fields(line)
			}
		}
		close(p.lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		_ = cmd.Wait()
	})
	return p
}

// next returns the helper's next output line, which must start with word.
func (p *helperProc) next(t *testing.T, word string, within time.Duration) []string {
	t.Helper()
	select {
	case f, ok := <-p.lines:
		if !ok {
			t.Fatalf("helper ended before saying %q", word)
		}
		if len(f) == 0 || f[0] != word {
			t.Fatalf("helper said %q, want %q", f, word)
		}
		return f
	case <-time.After(within):
		t.Fatalf("helper did not say %q within %v", word, within)
		return nil
	}
}

func (p *helperProc) wait(t *testing.T) {
	t.Helper()
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

func say(format string, args ...any) {
	fmt.Printf(outputStart+format+"\n", args...)
}

// helperStore is the Store a helper process uses, from its environment.
func helperStore(t *testing.T) (*redis.Store, *goredis.Client) {
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv(addrEnv), PoolSize: 256})
	t.Cleanup(func() { c.Close() })
	opts := []redis.Option{redis.WithPrefix(os.Getenv(prefixEnv))}
	if d, err := time.ParseDuration(os.Getenv(leaseEnv)); err == nil {
		opts = append(opts, redis.WithLeaseTTL(d))
	}
	return redis.New(c, opts...), c
}

func helperDuration(name string) time.Duration {
	d, err := time.ParseDuration(os.Getenv(name))
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return d
}

func isHelper(t *testing.T) bool {
	if os.Getenv(helperEnv) != t.Name() {
		t.Skip("run by the tests that re-execute the binary")
		return false
	}
	return true
}

const (
	manyProcs      = 4
	manyGoroutines = 64
	manyKeys       = 100
)

// TestManyProcesses: 4 processes of 64 goroutines each ask for the same 100
// keys at once, each goroutine every key, and a step takes 20 ms. Exactly
// 100 runs commit in all (a run: an Acquire that returned a lease, then a
// commit that stored its result), and every caller in every process gets
// the one stored value of each key.
func TestManyProcesses(t *testing.T) {
	srv := redistest.Start(t)
	env := []string{addrEnv + "=" + srv.Addr, prefixEnv + "=many:", stepEnv + "=20ms",
		procsEnv + "=" + strconv.Itoa(manyProcs)}
	procs := make([]*helperProc, manyProcs)
	for i := range procs {
		procs[i] = startHelper(t, "TestManyProcessesHelper", env...)
	}
	runs := 0
	values := map[string]map[string]bool{} // key: values callers got
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
		t.Errorf("%d runs in all, want %d", runs, manyKeys)
	}
	if len(values) != manyKeys {
		t.Errorf("callers got values of %d keys, want %d", len(values), manyKeys)
	}
	for k, vs := range values {
		if len(vs) != 1 {
			t.Errorf("key %s: callers got %d different values: %v", k, len(vs), vs)
		}
	}
}

func TestManyProcessesHelper(t *testing.T) {
	if !isHelper(t) {
		return
	}
	s, c := helperStore(t)
	step := helperDuration(stepEnv)
	procs, _ := strconv.Atoi(os.Getenv(procsEnv))
	// Start together: each process counts itself in and waits for the rest.
	if err := c.Incr(ctx, "many:ready").Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		n, err := c.Get(ctx, "many:ready").Int()
		if err == nil && n >= procs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d processes ready", n, procs)
		}
		time.Sleep(time.Millisecond)
	}
	pid := os.Getpid()
	var (
		mu   sync.Mutex
		runs int
		got  = map[int]map[string]bool{}
		wg   sync.WaitGroup
	)
	for g := range manyGoroutines {
		wg.Go(func() {
			for i := range manyKeys {
				i := (i + g*7) % manyKeys // goroutines start on different keys
				k := globalKey(i)
				e, l, err := s.Acquire(ctx, k, resultCodec)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				ran := false
				if l != nil {
					time.Sleep(step)
					mine := entry(fmt.Sprintf("pid%d-token%d", pid, l.Token()), i, time.Hour)
					if e, err = l.Commit(ctx, mine, resultCodec); err != nil {
						t.Errorf("Commit: %v", err)
						return
					}
					ran = e.Value == mine.Value
				}
				mu.Lock()
				if ran {
					runs++
				}
				if got[i] == nil {
					got[i] = map[string]bool{}
				}
				got[i][e.Value.(result).Who] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	say("runs %d", runs)
	for i, vs := range got {
		for v := range vs {
			say("value %d %s", i, v)
		}
	}
}

// TestKilledHolder: the holder of a lease is killed (SIGKILL) mid-step;
// another process takes the key over once the lease expires, with a
// greater token, and completes it.
func TestKilledHolder(t *testing.T) {
	srv := redistest.Start(t)
	ttl := 500 * time.Millisecond
	holder := startHelper(t, "TestHolderHelper", addrEnv+"="+srv.Addr, prefixEnv+"=kill:", leaseEnv+"="+ttl.String())
	f := holder.next(t, "token", 30*time.Second)
	token, _ := strconv.ParseUint(f[1], 10, 64)
	// Let it renew a few times first: the lease must outlive its first
	// TTL only through renewal.
	time.Sleep(2 * ttl)
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	s := redis.New(srv.Client(t), redis.WithPrefix("kill:"), redis.WithLeaseTTL(ttl))
	e, l, err := s.Acquire(ctx, globalKey(1), resultCodec)
	if err != nil || l == nil {
		t.Fatalf("Acquire after the holder died: %v, %v, %v; want the lease", e, l, err)
	}
	if d := time.Since(killed); d > ttl+200*time.Millisecond {
		t.Fatalf("took over %v after the kill, want within the lease TTL %v", d, ttl)
	}
	if l.Token() <= token {
		t.Fatalf("takeover token %d not greater than the killed holder's %d", l.Token(), token)
	}
	if _, err := l.Commit(ctx, entry("survivor", 1, time.Hour), resultCodec); err != nil {
		t.Fatal(err)
	}
	want(t, s, globalKey(1), result{"survivor", 1})
}

// TestHolderHelper takes the lease of key 1, says its token and holds it
// (renewing) until killed.
func TestHolderHelper(t *testing.T) {
	if !isHelper(t) {
		return
	}
	s, _ := helperStore(t)
	l := mustLease(t, s, globalKey(1))
	say("token %d", l.Token())
	<-l.Lost()
	t.Fatal("lease lost while holding it")
}

// TestPausedHolder: a holder stopped (SIGSTOP) past its lease's TTL; another
// process takes the key over and commits; the first is continued (SIGCONT),
// finishes its step and commits: it is refused and gets the winner's value,
// and the two runs' tokens differ (the winner's is greater).
func TestPausedHolder(t *testing.T) {
	srv := redistest.Start(t)
	ttl := 300 * time.Millisecond
	late := startHelper(t, "TestLateHelper", addrEnv+"="+srv.Addr, prefixEnv+"=pause:",
		leaseEnv+"="+ttl.String(), stepEnv+"=1s")
	f := late.next(t, "token", 30*time.Second)
	lateToken, _ := strconv.ParseUint(f[1], 10, 64)
	if err := late.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s := redis.New(srv.Client(t), redis.WithPrefix("pause:"), redis.WithLeaseTTL(ttl))
	_, l, err := s.Acquire(ctx, globalKey(1), resultCodec)
	if err != nil || l == nil {
		t.Fatalf("Acquire while the holder is paused: %v, %v; want the lease", l, err)
	}
	if _, err := l.Commit(ctx, entry("winner", 2, time.Hour), resultCodec); err != nil {
		t.Fatal(err)
	}
	if err := late.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	late.next(t, "lost", 10*time.Second)
	f = late.next(t, "got", 10*time.Second)
	if f[1] != "winner" {
		t.Fatalf("the late writer's callers got %q, want the winner's value", f[1:])
	}
	late.wait(t)
	if l.Token() <= lateToken {
		t.Fatalf("winner's token %d not greater than the late writer's %d", l.Token(), lateToken)
	}
	want(t, s, globalKey(1), result{"winner", 2})
}

// TestLateHelper takes the lease of key 1, says its token, runs a step of
// DOCKET_REDIS_STEP, then commits and says what the commit returned.
func TestLateHelper(t *testing.T) {
	if !isHelper(t) {
		return
	}
	s, _ := helperStore(t)
	l := mustLease(t, s, globalKey(1))
	say("token %d", l.Token())
	time.Sleep(helperDuration(stepEnv))
	select {
	case <-l.Lost():
		say("lost")
	case <-time.After(time.Second):
		say("kept")
	}
	e, err := l.Commit(ctx, entry("late", 1, time.Hour), resultCodec)
	if err != nil {
		t.Fatal(err)
	}
	say("got %s", e.Value.(result).Who)
}
