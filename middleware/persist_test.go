package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

type query struct {
	User  string
	Limit int
}

// counted returns a step that counts its runs and answers "User:Limit".
func counted(runs *atomic.Int64) func(context.Context, query) (string, error) {
	return func(_ context.Context, q query) (string, error) {
		runs.Add(1)
		return fmt.Sprintf("%s:%d", q.User, q.Limit), nil
	}
}

var scopes = []scope.Scope{scope.Workflow, scope.Global}

// inExecution returns a context with an execution.
func inExecution(t testing.TB, s scope.Scope, id string) (context.Context, *scope.Execution) {
	t.Helper()
	// Global calls ignore the execution; giving them one too shows that.
	return scope.Begin(context.Background(), id)
}

func TestRunsOncePerKey(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			var runs atomic.Int64
			step := middleware.Wrap("fetch", counted(&runs), middleware.WithPersistence(memory.New(100), s, time.Hour))
			ctx, _ := inExecution(t, s, "e1")
			for i := 0; i < 3; i++ {
				for _, q := range []query{{"alice", 1}, {"bob", 1}, {"alice", 2}} {
					got, err := step(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if want := fmt.Sprintf("%s:%d", q.User, q.Limit); got != want {
						t.Fatalf("got %q, want %q", got, want)
					}
				}
			}
			if n := runs.Load(); n != 3 {
				t.Fatalf("step ran %d times, want 3 (once per distinct input)", n)
			}
		})
	}
}

func TestScopesAcrossExecutions(t *testing.T) {
	tests := []struct {
		scope scope.Scope
		want  int64 // runs for 3 executions with the same input
	}{
		{scope.Workflow, 3},
		{scope.Global, 1},
	}
	for _, tt := range tests {
		t.Run(tt.scope.String(), func(t *testing.T) {
			var runs atomic.Int64
			step := middleware.Wrap("fetch", counted(&runs), middleware.WithPersistence(memory.New(100), tt.scope, time.Hour))
			for i := 0; i < 3; i++ {
				ctx, exec := scope.Begin(context.Background(), fmt.Sprintf("exec_%d", i))
				if _, err := step(ctx, query{"alice", 1}); err != nil {
					t.Fatal(err)
				}
				if err := exec.End(nil); err != nil {
					t.Fatal(err)
				}
			}
			if n := runs.Load(); n != tt.want {
				t.Fatalf("runs = %d, want %d", n, tt.want)
			}
		})
	}
}

func TestStepNamesAndVersionsNeverShare(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			store := memory.New(100)
			var runs atomic.Int64
			steps := []middleware.Step[query, string]{
				middleware.Wrap("a", counted(&runs), middleware.WithPersistence(store, s, time.Hour)),
				middleware.Wrap("ab", counted(&runs), middleware.WithPersistence(store, s, time.Hour)),
				middleware.Wrap("a", counted(&runs), middleware.WithPersistence(store, s, time.Hour), middleware.WithVersion("v2")),
			}
			ctx, _ := inExecution(t, s, "e")
			for round := 0; round < 2; round++ {
				for _, step := range steps {
					if _, err := step(ctx, query{"x", 1}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if n := runs.Load(); n != int64(len(steps)) {
				t.Fatalf("runs = %d, want %d (one per step name/version)", n, len(steps))
			}
		})
	}
}

func TestWorkflowNeedsExecution(t *testing.T) {
	var runs atomic.Int64
	step := middleware.Wrap("fetch", counted(&runs), middleware.WithPersistence(memory.New(10), scope.Workflow, time.Hour))
	_, err := step(context.Background(), query{"alice", 1})
	if !errors.Is(err, scope.ErrNoExecution) {
		t.Fatalf("err = %v, want scope.ErrNoExecution", err)
	}
	if runs.Load() != 0 {
		t.Fatal("step ran without an execution")
	}
	// Global needs none.
	g := middleware.Wrap("fetch", counted(&runs), middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	if _, err := g(context.Background(), query{"alice", 1}); err != nil {
		t.Fatal(err)
	}
}

func TestEndedExecutionRefusesCalls(t *testing.T) {
	var runs atomic.Int64
	step := middleware.Wrap("fetch", counted(&runs), middleware.WithPersistence(memory.New(10), scope.Workflow, time.Hour))
	ctx, exec := scope.Begin(context.Background(), "e")
	exec.End(nil)
	if _, err := step(ctx, query{"alice", 1}); !errors.Is(err, scope.ErrEnded) {
		t.Fatalf("err = %v, want scope.ErrEnded", err)
	}
	if runs.Load() != 0 {
		t.Fatal("step ran in an ended execution")
	}
}

type withFunc struct {
	Name     string
	Callback func()
}

type withAny struct {
	Name  string
	Extra any
}

func TestUnkeyableInput(t *testing.T) {
	t.Run("static type panics at construction", func(t *testing.T) {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(fmt.Sprint(r), "keyer: cannot key field withFunc.Callback of type func()") {
				t.Fatalf("recovered %v, want the unkeyable-field message", r)
			}
		}()
		middleware.Wrap("f", func(context.Context, withFunc) (int, error) { return 0, nil },
			middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	})
	t.Run("dynamic value is a call error", func(t *testing.T) {
		for _, s := range scopes {
			var runs atomic.Int64
			step := middleware.Wrap("f", func(context.Context, withAny) (int, error) { runs.Add(1); return 1, nil },
				middleware.WithPersistence(memory.New(10), s, time.Hour))
			ctx, _ := inExecution(t, s, "e")
			_, err := step(ctx, withAny{Name: "x", Extra: func() {}})
			if !errors.Is(err, keyer.ErrUnkeyable) {
				t.Fatalf("%v: err = %v, want keyer.ErrUnkeyable", s, err)
			}
			var ue *keyer.UnkeyableError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "Extra") {
				t.Fatalf("%v: err = %v, want an UnkeyableError naming field Extra", s, err)
			}
			if runs.Load() != 0 {
				t.Fatalf("%v: step ran for an unkeyable input", s)
			}
			if _, err := step(ctx, withAny{Name: "x", Extra: 3}); err != nil {
				t.Fatalf("%v: keyable dynamic value: %v", s, err)
			}
		}
	})
}

func TestConstructionPanics(t *testing.T) {
	step := func(context.Context, int) (int, error) { return 0, nil }
	tests := []struct {
		name string
		step string
		opts []middleware.Option
		want string
	}{
		{"no name", "", []middleware.Option{middleware.WithPersistence(memory.New(1), scope.Global, 0)}, "needs a step name"},
		{"no persistence", "s", nil, "needs WithPersistence"},
		{"nil store", "s", []middleware.Option{middleware.WithPersistence(nil, scope.Global, 0)}, "needs WithPersistence"},
		{"bad scope", "s", []middleware.Option{middleware.WithPersistence(memory.New(1), scope.Scope(0), 0)}, "invalid scope"},
		{"clone without Clone", "s", []middleware.Option{middleware.WithPersistence(memory.New(1), scope.Global, 0), middleware.WithClone()}, "WithClone needs a method Clone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Fatalf("recovered %v, want panic containing %q", r, tt.want)
				}
			}()
			middleware.Wrap(tt.step, step, tt.opts...)
		})
	}
}

func TestConcurrentCallersRunOnce(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			var runs atomic.Int64
			release := make(chan struct{})
			step := middleware.Wrap("slow", func(_ context.Context, q query) (string, error) {
				runs.Add(1)
				<-release
				return q.User, nil
			}, middleware.WithPersistence(memory.New(100), s, time.Hour))
			ctx, _ := inExecution(t, s, "e")
			const callers = 1000
			var wg sync.WaitGroup
			var started sync.WaitGroup
			errs := make(chan error, callers)
			for i := 0; i < callers; i++ {
				wg.Add(1)
				started.Add(1)
				go func() {
					defer wg.Done()
					started.Done()
					got, err := step(ctx, query{"alice", 1})
					if err == nil && got != "alice" {
						err = fmt.Errorf("got %q", got)
					}
					errs <- err
				}()
			}
			started.Wait()
			time.Sleep(20 * time.Millisecond) // let the callers pile onto the flight
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := runs.Load(); n != 1 {
				t.Fatalf("step ran %d times for %d concurrent callers, want 1", n, callers)
			}
		})
	}
}

type ctxKeyT struct{}

func TestCancellationIsPerCaller(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			var runs atomic.Int64
			entered := make(chan struct{})
			release := make(chan struct{})
			stepCtxErr := make(chan error, 1)
			sawValue := make(chan any, 1)
			step := middleware.Wrap("slow", func(ctx context.Context, q query) (string, error) {
				runs.Add(1)
				sawValue <- ctx.Value(ctxKeyT{})
				close(entered)
				<-release
				stepCtxErr <- ctx.Err()
				return q.User, nil
			}, middleware.WithPersistence(memory.New(100), s, time.Hour))
			base, _ := inExecution(t, s, "e")
			first, cancelFirst := context.WithCancel(context.WithValue(base, ctxKeyT{}, "first"))
			firstErr := make(chan error, 1)
			go func() { _, err := step(first, query{"alice", 1}); firstErr <- err }()
			<-entered
			secondDone := make(chan error, 1)
			go func() {
				got, err := step(base, query{"alice", 1})
				if err == nil && got != "alice" {
					err = fmt.Errorf("got %q", got)
				}
				secondDone <- err
			}()
			// Wait until the second caller has joined the flight.
			time.Sleep(20 * time.Millisecond)
			cancelFirst()
			if err := <-firstErr; !errors.Is(err, context.Canceled) {
				t.Fatalf("first caller: err = %v, want context.Canceled at once", err)
			}
			close(release)
			if err := <-secondDone; err != nil {
				t.Fatalf("second caller: %v", err)
			}
			if err := <-stepCtxErr; err != nil {
				t.Fatalf("step context was cancelled while a caller still waited: %v", err)
			}
			if v := <-sawValue; v != "first" {
				t.Fatalf("step context value = %v, want the starting caller's", v)
			}
			if runs.Load() != 1 {
				t.Fatalf("runs = %d, want 1", runs.Load())
			}
		})
	}
}

func TestStepContextCancelledWhenAllCallersLeave(t *testing.T) {
	entered := make(chan struct{})
	stepCtxDone := make(chan struct{})
	var runs atomic.Int64
	step := middleware.Wrap("slow", func(ctx context.Context, q query) (string, error) {
		if runs.Add(1) == 1 {
			close(entered)
			<-ctx.Done()
			close(stepCtxDone)
			return "", ctx.Err()
		}
		return q.User, nil
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour))
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := step(ctx1, query{"a", 1}); errs <- err }()
	<-entered
	go func() { _, err := step(ctx2, query{"a", 1}); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-stepCtxDone:
		t.Fatal("step context cancelled while a caller was still waiting")
	case <-time.After(20 * time.Millisecond):
	}
	cancel2()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	<-stepCtxDone // the last caller left: the step is told to stop
	// The abandoned flight does not hold the key: the next call runs anew.
	got, err := step(context.Background(), query{"a", 1})
	if err != nil || got != "a" {
		t.Fatalf("after abandonment: %q, %v", got, err)
	}
}

func TestFailuresAreNotStored(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			var runs atomic.Int64
			fail := atomic.Bool{}
			fail.Store(true)
			boom := errors.New("boom")
			release := make(chan struct{})
			step := middleware.Wrap("flaky", func(_ context.Context, q query) (string, error) {
				runs.Add(1)
				<-release
				if fail.Load() {
					return "", boom
				}
				return q.User, nil
			}, middleware.WithPersistence(memory.New(100), s, time.Hour))
			ctx, _ := inExecution(t, s, "e")
			const callers = 10
			errs := make(chan error, callers)
			for i := 0; i < callers; i++ {
				go func() { _, err := step(ctx, query{"a", 1}); errs <- err }()
			}
			time.Sleep(20 * time.Millisecond)
			close(release)
			for i := 0; i < callers; i++ {
				if err := <-errs; !errors.Is(err, boom) {
					t.Fatalf("caller %d: err = %v, want the shared step error", i, err)
				}
			}
			if runs.Load() != 1 {
				t.Fatalf("failing flight ran %d times, want 1", runs.Load())
			}
			fail.Store(false)
			if got, err := step(ctx, query{"a", 1}); err != nil || got != "a" {
				t.Fatalf("retry after failure: %q, %v", got, err)
			}
			if runs.Load() != 2 {
				t.Fatalf("runs = %d, want 2 (failure not stored)", runs.Load())
			}
			// A later failure never replaces the stored success.
			fail.Store(true)
			if got, err := step(ctx, query{"a", 1}); err != nil || got != "a" {
				t.Fatalf("stored success: %q, %v", got, err)
			}
		})
	}
}

func TestPanicReachesCallersAndFreesKey(t *testing.T) {
	var runs atomic.Int64
	step := middleware.Wrap("panicky", func(_ context.Context, q query) (string, error) {
		if runs.Add(1) == 1 {
			panic("kaboom")
		}
		return q.User, nil
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour))
	func() {
		defer func() {
			r := recover()
			pe, ok := r.(*middleware.PanicError)
			if !ok || pe.Value != "kaboom" || !strings.Contains(string(pe.Stack), "persist_test.go") {
				t.Fatalf("recovered %#v, want *PanicError with value and stack", r)
			}
		}()
		step(context.Background(), query{"a", 1})
	}()
	if got, err := step(context.Background(), query{"a", 1}); err != nil || got != "a" {
		t.Fatalf("after panic: %q, %v", got, err)
	}
}

func TestGoexitDoesNotHangWaiters(t *testing.T) {
	// A caller whose context can never end runs the step in its own
	// goroutine, which Goexit then ends, as a direct call would; every
	// other caller gets ErrGoexit.
	for _, leaderCancellable := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancellable=%v", leaderCancellable), func(t *testing.T) {
			var runs atomic.Int64
			entered := make(chan struct{})
			release := make(chan struct{})
			step := middleware.Wrap("exits", func(_ context.Context, q query) (string, error) {
				if runs.Add(1) == 1 {
					close(entered)
					<-release
					runtime.Goexit()
				}
				return q.User, nil
			}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour))
			leaderCtx := context.Background()
			if leaderCancellable {
				var cancel context.CancelFunc
				leaderCtx, cancel = context.WithCancel(leaderCtx)
				defer cancel()
			}
			leader := make(chan error, 1)
			leaderExited := make(chan struct{})
			go func() {
				defer close(leaderExited)
				_, err := step(leaderCtx, query{"a", 1})
				leader <- err
			}()
			<-entered
			waiterCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			waiter := make(chan error, 1)
			go func() { _, err := step(waiterCtx, query{"a", 1}); waiter <- err }()
			time.Sleep(20 * time.Millisecond)
			close(release)
			select {
			case err := <-waiter:
				if !errors.Is(err, middleware.ErrGoexit) {
					t.Fatalf("waiter: err = %v, want ErrGoexit", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("waiter hangs after the step called runtime.Goexit")
			}
			<-leaderExited
			select {
			case err := <-leader:
				if !leaderCancellable || !errors.Is(err, middleware.ErrGoexit) {
					t.Fatalf("leader returned %v", err)
				}
			default:
				if leaderCancellable {
					t.Fatal("a leader with a cancellable context should get ErrGoexit, not exit")
				}
			}
			if got, err := step(context.Background(), query{"a", 1}); err != nil || got != "a" {
				t.Fatalf("after Goexit: %q, %v", got, err)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			var runs atomic.Int64
			store := memory.New(100)
			step := middleware.Wrap("ttl", counted(&runs), middleware.WithPersistence(store, s, 30*time.Millisecond))
			ctx, _ := inExecution(t, s, "e")
			step(ctx, query{"a", 1})
			step(ctx, query{"a", 1})
			if runs.Load() != 1 {
				t.Fatalf("runs = %d before expiry, want 1", runs.Load())
			}
			time.Sleep(60 * time.Millisecond)
			step(ctx, query{"a", 1})
			if runs.Load() != 2 {
				t.Fatalf("runs = %d after expiry, want 2 (expired entry served)", runs.Load())
			}
			if store.Len() != 1 {
				t.Fatalf("store holds %d entries, want 1 (expired one replaced)", store.Len())
			}
		})
	}
}

func TestKeyFrom(t *testing.T) {
	for _, s := range scopes {
		t.Run(s.String(), func(t *testing.T) {
			var keys []string
			var mu sync.Mutex
			store := memory.New(100)
			mk := func() middleware.Step[query, string] {
				return middleware.Wrap("pay", func(ctx context.Context, q query) (string, error) {
					k, ok := middleware.KeyFrom(ctx)
					if !ok {
						return "", errors.New("no key in step context")
					}
					mu.Lock()
					keys = append(keys, k)
					mu.Unlock()
					return k, nil
				}, middleware.WithPersistence(store, s, time.Hour))
			}
			ctx, exec := inExecution(t, s, "exec_12345")
			if _, err := mk()(ctx, query{"a", 1}); err != nil {
				t.Fatal(err)
			}
			exec.End(nil)
			// A fresh store, same call: the same key.
			store = memory.New(100)
			ctx, _ = inExecution(t, s, "exec_12345")
			if _, err := mk()(ctx, query{"a", 1}); err != nil {
				t.Fatal(err)
			}
			if len(keys) != 2 || keys[0] != keys[1] {
				t.Fatalf("keys %q: want the same key for the same call", keys)
			}
			prefix := s.String() + "/"
			if s == scope.Workflow {
				prefix += "exec_12345/"
			}
			if !strings.HasPrefix(keys[0], prefix+"pay/") {
				t.Fatalf("key %q, want prefix %q", keys[0], prefix+"pay/")
			}
			if _, ok := middleware.KeyFrom(context.Background()); ok {
				t.Fatal("KeyFrom outside a step reported a key")
			}
		})
	}
}

func TestStoreFaultsAreMisses(t *testing.T) {
	tests := []struct {
		name           string
		getErr, setErr error
		strict         bool
		wantErr        error
		wantRuns       int64
	}{
		{"read fault", errDisk, nil, false, nil, 1},
		{"corrupt entry", backends.ErrCorrupt, nil, false, nil, 1},
		{"write fault", nil, errDisk, false, nil, 1},
		{"strict read fault", errDisk, nil, true, middleware.ErrStore, 0},
		{"strict corrupt entry", backends.ErrCorrupt, nil, true, backends.ErrCorrupt, 0},
		{"strict write fault", nil, errDisk, true, errDisk, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &faultyStore{Store: memory.New(10), getErr: tt.getErr, setErr: tt.setErr}
			var runs atomic.Int64
			opts := []middleware.Option{middleware.WithPersistence(store, scope.Global, time.Hour), middleware.WithLogger(nil)}
			if tt.strict {
				opts = append(opts, middleware.WithStrict())
			}
			step := middleware.Wrap("s", counted(&runs), opts...)
			got, err := step(context.Background(), query{"a", 1})
			if tt.wantErr == nil {
				if err != nil || got != "a:1" {
					t.Fatalf("got %q, %v; want the result", got, err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if runs.Load() != tt.wantRuns {
				t.Fatalf("runs = %d, want %d", runs.Load(), tt.wantRuns)
			}
		})
	}
}

func TestWrongTypedEntryIsOverwritten(t *testing.T) {
	store := memory.New(10)
	var runs atomic.Int64
	// Two steps with one name but different result types share a store: the
	// second sees a value of the wrong type, treats it as corrupt and runs.
	a := middleware.Wrap("same", func(context.Context, query) (int, error) { runs.Add(1); return 7, nil },
		middleware.WithPersistence(store, scope.Global, time.Hour))
	b := middleware.Wrap("same", counted(&runs), middleware.WithPersistence(store, scope.Global, time.Hour), middleware.WithLogger(nil))
	a(context.Background(), query{"a", 1})
	if got, err := b(context.Background(), query{"a", 1}); err != nil || got != "a:1" {
		t.Fatalf("got %q, %v", got, err)
	}
	if got, err := b(context.Background(), query{"a", 1}); err != nil || got != "a:1" || runs.Load() != 2 {
		t.Fatalf("got %q, %v after overwrite, runs %d", got, err, runs.Load())
	}
}

type profile struct{ Tags []string }

func (p *profile) Clone() *profile {
	return &profile{Tags: append([]string(nil), p.Tags...)}
}

func TestSharedResultsAndClone(t *testing.T) {
	mk := func(opts ...middleware.Option) middleware.Step[string, *profile] {
		return middleware.Wrap("profile", func(context.Context, string) (*profile, error) {
			return &profile{Tags: []string{"a"}}, nil
		}, append(opts, middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))...)
	}
	shared := mk()
	p1, _ := shared(context.Background(), "u")
	p2, _ := shared(context.Background(), "u")
	if p1 != p2 {
		t.Fatal("without WithClone callers should share one value")
	}
	cloned := mk(middleware.WithClone())
	c1, _ := cloned(context.Background(), "u")
	c1.Tags[0] = "mutated"
	c2, _ := cloned(context.Background(), "u")
	if c1 == c2 || c2.Tags[0] != "a" {
		t.Fatalf("WithClone: got %v, want a fresh copy of the stored value", c2.Tags)
	}
}

func TestCustomKeyer(t *testing.T) {
	type tenantKey struct{}
	perTenant := keyer.Func(func(ctx context.Context, step keyer.StepInfo, in any) (keyer.Key, error) {
		sum, err := keyer.Hash(step, struct {
			Tenant any
			In     any
		}{ctx.Value(tenantKey{}), in})
		if err != nil {
			return keyer.Key{}, err
		}
		return keyer.Make(ctx, step, sum)
	})
	var runs atomic.Int64
	step := middleware.Wrap("s", counted(&runs), middleware.WithPersistence(memory.New(10), scope.Global, time.Hour), middleware.WithKeyer(perTenant))
	for _, tenant := range []string{"acme", "acme", "globex"} {
		ctx := context.WithValue(context.Background(), tenantKey{}, tenant)
		if _, err := step(ctx, query{"a", 1}); err != nil {
			t.Fatal(err)
		}
	}
	if runs.Load() != 2 {
		t.Fatalf("runs = %d, want 2 (one per tenant)", runs.Load())
	}
}

func TestAllocsOnHit(t *testing.T) {
	step := middleware.Wrap("s", func(_ context.Context, q query) (string, error) { return q.User, nil },
		middleware.WithPersistence(memory.New(10), scope.Global, time.Hour))
	ctx := context.Background()
	step(ctx, query{"a", 1})
	if n := testing.AllocsPerRun(100, func() { step(ctx, query{"a", 1}) }); n != 0 {
		t.Fatalf("front-tier hit allocates %v times, want 0", n)
	}
}
