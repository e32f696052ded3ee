package bench

import (
	"context"
	"math/rand/v2"
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

	run func(b *testing.B, s System)
}

// Systems returns the systems the scenario runs.
func (sc Scenario) Systems() []System { return Systems(sc.WorkflowOnly) }

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

	// capacity is every store's bound. Zipf gets twice its key count: a
	// sharded LRU fills its shards unevenly, and no system should measure
	// evictions of a working set that fits.
	capacity     = 10_000
	zipfCapacity = 2 * zipfKeys
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

// scopedContext returns the context the calls of scenarios without their
// own executions run in: for Docket's Workflow scope one execution spans
// the run. It is not ended; its store is discarded with the run.
func scopedContext(s System, inst *instance) context.Context {
	ctx := context.Background()
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
	ctx := scopedContext(s, inst)

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
	ctx := scopedContext(s, inst)
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
	ctx := scopedContext(s, inst)

	b.ResetTimer()
	for i := range b.N {
		if _, err := call(ctx, Input{Tenant: "acme", ID: i}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
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

	b.ResetTimer()
	parallel(workers, b.N, func(i int) {
		ctx, end := inst.begin(context.Background(), "exec-"+strconv.Itoa(i))
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
