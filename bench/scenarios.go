package bench

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/scope"
)

// Scenario is one workload of the suite.
type Scenario struct {
	// Name names the scenario in benchmark names and the report.
	Name string
	// Title says in a line what it does, for the report.
	Title string
	// Op is what one benchmark op is: "call" or "execution".
	Op string
	// CallsPerOp is how many step calls one op makes.
	CallsPerOp int
	// Ops and QuickOps are how many ops the report harness runs per
	// benchmark, in a full and in a quick run: the same number for every
	// system, so that each gets the same inputs.
	Ops, QuickOps int
	// WorkflowOnly limits Docket to Workflow scope.
	WorkflowOnly bool
	// Hits marks the scenarios that measure hits alone: they run the
	// memory tier only, and peer (f) beside the others.
	Hits bool

	run func(b *testing.B, s System)
}

// Systems returns the systems the scenario runs: [Systems], with peer (e)
// in the executions scenarios, and in the hits scenarios the caches (no
// direct calls), memory tier only, with peer (f).
func (sc Scenario) Systems() []System {
	var sys []System
	for _, s := range Systems(sc.WorkflowOnly) {
		if sc.Hits && (s.Kind == Direct || s.Tier != "memory") {
			continue
		}
		sys = append(sys, s)
		switch {
		case s.Kind == HandRolled && sc.WorkflowOnly:
			sys = append(sys, execMapSystem)
		case s.Kind == Otter && sc.Hits:
			sys = append(sys, otterBinarySystem)
		}
	}
	return sys
}

// Run runs the scenario for system s as a benchmark.
func (sc Scenario) Run(b *testing.B, s System) {
	b.ReportAllocs()
	sc.run(b, s)
}

// Scenario parameters, as the issue asks for them.
const (
	hotCallers = 256
	hotCost    = time.Millisecond

	zipfKeys    = 10_000
	zipfS       = 1.1
	zipfCallers = 64
	zipfCost    = 100 * time.Microsecond

	execSteps   = 5
	execRepeats = 3
	execWorkers = 64
	execCost    = 100 * time.Microsecond

	hitKeys = 10_000

	// capacity is every store's bound. Zipf and hits get twice their key
	// count: a sharded LRU fills its shards unevenly, and no system should
	// measure evictions of a working set that fits.
	capacity     = 10_000
	zipfCapacity = 2 * zipfKeys
	hitCapacity  = 2 * hitKeys
)

// Scenarios returns the suite.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name:  "hot-key",
			Title: "1 key at a time, 256 concurrent callers, step 1 ms; each round a new key",
			Op:    "call", CallsPerOp: 1, Ops: 256 * 1000, QuickOps: 256 * 400,
			run: runHotKey,
		},
		{
			Name:  "zipf",
			Title: "10,000 keys drawn with Zipf s = 1.1, 64 concurrent callers, step 100 µs",
			Op:    "call", CallsPerOp: 1, Ops: 1_000_000, QuickOps: 400_000,
			run: runZipf,
		},
		{
			Name:  "unique",
			Title: "every call a new key, 1 caller, step costs nothing: the miss path",
			Op:    "call", CallsPerOp: 1, Ops: 200_000, QuickOps: 80_000,
			run: runUnique,
		},
		{
			Name:  "hits",
			Title: "10,000 keys stored beforehand, called in random order by 1 caller: hits alone",
			Op:    "call", CallsPerOp: 1, Ops: 2_000_000, QuickOps: 400_000,
			Hits: true,
			run: func(b *testing.B, s System) {
				runHits(b, s, 1)
			},
		},
		{
			Name:  "hits-parallel",
			Title: "as hits, with one caller per core (GOMAXPROCS)",
			Op:    "call", CallsPerOp: 1, Ops: 2_000_000, QuickOps: 400_000,
			Hits: true,
			run: func(b *testing.B, s System) {
				runHits(b, s, runtime.GOMAXPROCS(0))
			},
		},
		{
			Name:  "executions",
			Title: "64 workers; per op one execution: Begin, 5 steps called 3 times each, End; step 100 µs",
			Op:    "execution", CallsPerOp: execSteps * execRepeats, Ops: 10_000, QuickOps: 4_000,
			WorkflowOnly: true,
			run: func(b *testing.B, s System) {
				runExecutions(b, s, execWorkers, execCost)
			},
		},
		{
			Name:  "execution-overhead",
			Title: "as executions, 1 worker, step costs nothing: the overhead of Begin, End and 15 calls",
			Op:    "execution", CallsPerOp: execSteps * execRepeats, Ops: 10_000, QuickOps: 4_000,
			WorkflowOnly: true,
			run: func(b *testing.B, s System) {
				runExecutions(b, s, 1, 0)
			},
		},
	}
}

// work is the step every system runs: it counts its runs and takes cost.
// It sleeps rather than spins, as a step that waits on a database or
// another service does, so that on a machine with few cores the cost does
// not compete with the callers for CPU.
//
// A sleep lasts at least its duration, and often longer: Go wakes sleepers
// with a timer resolution that, on an idle processor, is as coarse as a
// millisecond. The step therefore also measures how long it actually took,
// reported as step-us (µs per run).
type work struct {
	cost  time.Duration
	runs  atomic.Int64
	slept atomic.Int64 // ns
}

func (w *work) step(_ context.Context, in Input) (Output, error) {
	w.runs.Add(1)
	if w.cost > 0 {
		t := time.Now()
		time.Sleep(w.cost)
		w.slept.Add(int64(time.Since(t)))
	}
	return Output{ID: in.ID, Name: in.Tenant, Score: float64(in.Page)}, nil
}

// report reports the metrics every scenario has; the timer must be stopped.
func report(b *testing.B, calls int, w *work) {
	runs := w.runs.Load()
	b.ReportMetric(float64(calls)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(1000*float64(runs)/float64(calls), "runs/1k-calls")
	b.ReportMetric(1-float64(runs)/float64(calls), "hit-ratio")
	if w.cost > 0 && runs > 0 {
		b.ReportMetric(float64(w.slept.Load())/float64(runs)/1000, "step-us")
	}
}

// errs keeps the first error of a run's callers, which cannot call b.Fatal.
type errs struct {
	once sync.Once
	err  error
}

func (e *errs) set(err error) {
	if err != nil {
		e.once.Do(func() { e.err = err })
	}
}

func (e *errs) check(b *testing.B) {
	if e.err != nil {
		b.Fatal(e.err)
	}
}

// requestContext returns the context every call of a run descends from: one
// that can be cancelled, as a server request's is (http.Request.Context()
// never has a nil Done), so that every system takes the path real callers
// take. It is cancelled when b ends.
func requestContext(b testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// scopedContext returns the context the calls of scenarios without their
// own executions run in: a request context, in which for Docket's Workflow
// scope one execution spans the run. It is not ended; its store is
// discarded with the run.
func scopedContext(b testing.TB, s System, inst *instance) context.Context {
	ctx := requestContext(b)
	if s.Kind == Docket && s.Scope == scope.Workflow {
		ctx, _ = inst.begin(ctx, "bench-run")
	}
	return ctx
}

// parallel makes calls 0..n-1 of fn from callers goroutines, caller g
// making calls g, g+callers, g+2·callers, ..., and returns when all are
// done. Every system gets exactly the same calls.
func parallel(callers, n int, fn func(i int)) {
	var wg sync.WaitGroup
	for g := range min(callers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += callers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// runHotKey releases rounds of hotCallers concurrent calls of one key, a new
// key per round, each round after the previous has returned: b.N calls in
// all. The callers are started before the timer and wait for their rounds.
func runHotKey(b *testing.B, s System) {
	w := &work{cost: hotCost}
	inst := s.build(b, capacity)
	call := inst.wrap("fetch", w.step)
	ctx := scopedContext(b, s, inst)

	var wg sync.WaitGroup
	var e errs
	rounds := make([]chan int, hotCallers)
	for c := range rounds {
		rounds[c] = make(chan int, 1)
		go func() {
			for r := range rounds[c] {
				_, err := call(ctx, Input{Tenant: "hot", ID: r})
				e.set(err)
				wg.Done()
			}
		}()
	}
	b.Cleanup(func() {
		for _, ch := range rounds {
			close(ch)
		}
	})

	b.ResetTimer()
	for done, r := 0, 0; done < b.N; r++ {
		k := min(hotCallers, b.N-done)
		wg.Add(k)
		for c := range k {
			rounds[c] <- r
		}
		wg.Wait()
		done += k
	}
	b.StopTimer()
	e.check(b)
	report(b, b.N, w)
	spans := float64(b.Elapsed()) / float64(hotCost)
	b.ReportMetric(1000*spans/float64(b.N), "spans/1k-calls")
}

var (
	zipfOnce   sync.Once
	zipfTrace  []uint16
	zipfInputs []Input
)

// zipfWorkload returns the trace every system replays, drawn once from a
// fixed seed, and the inputs its indexes name.
func zipfWorkload() ([]uint16, []Input) {
	zipfOnce.Do(func() {
		z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), zipfS, 1, zipfKeys-1)
		zipfTrace = make([]uint16, 1<<20)
		for i := range zipfTrace {
			zipfTrace[i] = uint16(z.Uint64())
		}
		zipfInputs = make([]Input, zipfKeys)
		for i := range zipfInputs {
			zipfInputs[i] = Input{Tenant: "acme", ID: i, Page: i % 7}
		}
	})
	return zipfTrace, zipfInputs
}

// runZipf makes b.N calls from zipfCallers goroutines; call i has the input
// at position i of the Zipf trace.
func runZipf(b *testing.B, s System) {
	trace, inputs := zipfWorkload()
	w := &work{cost: zipfCost}
	inst := s.build(b, zipfCapacity)
	call := inst.wrap("fetch", w.step)
	ctx := scopedContext(b, s, inst)
	var e errs

	b.ResetTimer()
	parallel(zipfCallers, b.N, func(i int) {
		_, err := call(ctx, inputs[trace[i%len(trace)]])
		e.set(err)
	})
	b.StopTimer()
	e.check(b)
	report(b, b.N, w)
}

// runUnique makes b.N calls from one goroutine, each with a new key.
func runUnique(b *testing.B, s System) {
	w := &work{}
	inst := s.build(b, capacity)
	call := inst.wrap("fetch", w.step)
	ctx := scopedContext(b, s, inst)

	b.ResetTimer()
	for i := range b.N {
		if _, err := call(ctx, Input{Tenant: "acme", ID: i}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	report(b, b.N, w)
}

var (
	hitOnce   sync.Once
	hitTrace  []uint16
	hitInputs []Input
)

// hitWorkload returns the keys of the hits scenarios and the order they are
// called in: uniformly random, drawn once from a fixed seed, so that no
// cache gains from walking its entries in the order it stored them.
func hitWorkload() ([]uint16, []Input) {
	hitOnce.Do(func() {
		r := rand.New(rand.NewPCG(3, 4))
		hitTrace = make([]uint16, 1<<16)
		for i := range hitTrace {
			hitTrace[i] = uint16(r.IntN(hitKeys))
		}
		hitInputs = make([]Input, hitKeys)
		for i := range hitInputs {
			hitInputs[i] = Input{Tenant: "acme", ID: i, Page: i % 7}
		}
	})
	return hitTrace, hitInputs
}

// runHits stores hitKeys results, then makes b.N calls of them from callers
// goroutines: hits alone, the step never runs while the timer does.
func runHits(b *testing.B, s System, callers int) {
	trace, inputs := hitWorkload()
	w := &work{}
	inst := s.build(b, hitCapacity)
	call := inst.wrap("fetch", w.step)
	ctx := scopedContext(b, s, inst)
	for _, in := range inputs {
		if _, err := call(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	w.runs.Store(0)
	var e errs

	b.ResetTimer()
	parallel(callers, b.N, func(i int) {
		_, err := call(ctx, inputs[trace[i%len(trace)]])
		e.set(err)
	})
	b.StopTimer()
	e.check(b)
	report(b, b.N, w)
}

// runExecutions runs b.N executions from workers goroutines. An execution
// calls each of execSteps steps execRepeats times in a row, the input of a
// step made from the result of the one before, and then ends.
func runExecutions(b *testing.B, s System, workers int, cost time.Duration) {
	w := &work{cost: cost}
	inst := s.build(b, capacity)
	steps := make([]StepFunc, execSteps)
	for i := range steps {
		steps[i] = inst.wrap("stage"+strconv.Itoa(i+1), w.step)
	}
	var e errs
	base := requestContext(b)

	b.ResetTimer()
	parallel(workers, b.N, func(i int) {
		ctx, end := inst.begin(base, "exec-"+strconv.Itoa(i))
		in := Input{Tenant: "acme", ID: 42}
		for k, step := range steps {
			var out Output
			for range execRepeats {
				var err error
				if out, err = step(ctx, in); err != nil {
					e.set(err)
					return
				}
			}
			in = Input{Tenant: out.Name, ID: out.ID, Page: k + 1}
		}
		e.set(end())
	})
	b.StopTimer()
	e.check(b)
	report(b, b.N*execSteps*execRepeats, w)
}
