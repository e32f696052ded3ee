// Command crash_recovery crashes for real and recovers. It runs a three-step
// Workflow pipeline in a child process (itself, re-executed) that kills
// itself with SIGKILL inside step 2, then runs the same execution ID in a
// new child process: step 1's result is restored from Badger instead of being
// computed again, steps 2 and 3 run, and End(nil) removes the checkpoints.
// See README.md beside this file.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// The parent tells a child what to do through its environment: a child is
// the same program (or, under go test, the same test binary) started with
// childEnv set to one of the modes below.
const (
	childEnv = "DOCKET_CRASH_RECOVERY_CHILD"
	dirEnv   = "DOCKET_CRASH_RECOVERY_DIR"

	modeCrash  = "crash"  // run the pipeline, die inside step 2
	modeResume = "resume" // run the pipeline to the end
)

// execID is the execution both children run. The second reuses it, which is
// what makes it a resume rather than a new run.
const execID = "exec_crash_demo"

func main() {
	if mode, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(mode))
	}
	dir := flag.String("dir", "", "working directory for Badger and runs.log (default: a fresh temporary directory, removed at exit)")
	flag.Parse()
	if err := mainErr(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "crash_recovery:", err)
		os.Exit(1)
	}
}

func mainErr(dir string) (err error) {
	if dir == "" {
		if dir, err = os.MkdirTemp("", "docket-crash-recovery-"); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
		fmt.Printf("working directory: %s (temporary, removed at exit)\n\n", dir)
	} else {
		fmt.Printf("working directory: %s\n\n", dir)
	}
	return run(os.Stdout, dir)
}

// ---- The pipeline, the same in every process ----

// Batch is the input of step 1: which file of orders to process.
type Batch struct {
	Source string
}

// Order is one line of the batch.
type Order struct {
	ID    string
	Cents int64
}

// Extracted is step 1's result.
type Extracted struct {
	Orders []Order
	PID    int // the process that ran the step
}

// Totals is step 2's result.
type Totals struct {
	Count int
	Cents int64
	PID   int
}

// Loaded is step 3's result.
type Loaded struct {
	Table string
	Rows  int
	PID   int
}

// pipeline is the three persisted steps. Every process builds it the same
// way, so the same call has the same key in each of them. Each is a handle
// (middleware.New): Call runs it as a Wrap'd step would, Peek reads its
// checkpoint without running it.
type pipeline struct {
	extract   *middleware.Persisted[Batch, Extracted]
	transform *middleware.Persisted[[]Order, Totals]
	load      *middleware.Persisted[Totals, Loaded]
}

// steps are the step functions a pipeline persists.
type steps struct {
	extract   func(context.Context, Batch) (Extracted, error)
	transform func(context.Context, []Order) (Totals, error)
	load      func(context.Context, Totals) (Loaded, error)
}

func newPipeline(store backends.Store, s steps) pipeline {
	// Each step's result is a checkpoint of this execution: kept in Badger
	// until the execution ends with End(nil), or for an hour.
	opt := middleware.WithPersistence(store, scope.Workflow, time.Hour)
	return pipeline{
		extract:   middleware.New("extract", s.extract, opt),
		transform: middleware.New("transform", s.transform, opt),
		load:      middleware.New("load", s.load, opt),
	}
}

var batch = Batch{Source: "orders-2024-06-01.csv"}

// openStore opens the tiered store of the example: a new memory tier in
// front of Badger in dir.
func openStore(dir string) (*badger.Store, backends.Store, error) {
	db, err := badger.Open(filepath.Join(dir, "badger"))
	if err != nil {
		return nil, nil, err
	}
	return db, backends.Tiered(memory.New(1_000), db), nil
}

// ---- The child ----

func childMain(mode string) int {
	if err := child(os.Stdout, os.Getenv(dirEnv), mode == modeCrash); err != nil {
		fmt.Fprintf(os.Stderr, "crash_recovery child (pid %d): %v\n", os.Getpid(), err)
		return 1
	}
	return 0
}

// child runs the pipeline in execution execID. With crash set it kills its
// own process inside step 2, after step 1's result has been written.
func child(w io.Writer, dir string, crash bool) (err error) {
	if dir == "" {
		return fmt.Errorf("%s is not set", dirEnv)
	}
	pid := os.Getpid()
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "  [child pid %d] "+format+"\n", append([]any{pid}, args...)...)
	}
	db, store, err := openStore(dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()

	var ran [3]atomic.Bool // which steps ran in this process
	p := newPipeline(store, steps{
		extract: func(ctx context.Context, b Batch) (Extracted, error) {
			ran[0].Store(true)
			if err := record(dir, 1, "started"); err != nil {
				return Extracted{}, err
			}
			out := Extracted{PID: pid, Orders: []Order{{"A-1001", 4999}, {"A-1002", 1500}, {"A-1003", 12000}}}
			return out, record(dir, 1, "finished")
		},
		transform: func(ctx context.Context, orders []Order) (Totals, error) {
			ran[1].Store(true)
			if err := record(dir, 2, "started"); err != nil {
				return Totals{}, err
			}
			if crash {
				say("step 2 transform: started; the process now kills itself with SIGKILL")
				return Totals{}, killSelf()
			}
			out := Totals{Count: len(orders), PID: pid}
			for _, o := range orders {
				out.Cents += o.Cents
			}
			return out, record(dir, 2, "finished")
		},
		load: func(ctx context.Context, t Totals) (Loaded, error) {
			ran[2].Store(true)
			if err := record(dir, 3, "started"); err != nil {
				return Loaded{}, err
			}
			return Loaded{Table: "daily_totals", Rows: 1, PID: pid}, record(dir, 3, "finished")
		},
	})
	how := func(i int, producer int) string {
		if ran[i].Load() {
			return "ran"
		}
		return fmt.Sprintf("restored from its checkpoint in Badger, did not run (result of pid %d)", producer)
	}

	ctx, exec := scope.Begin(context.Background(), execID)
	say("Begin(%q)", execID)
	// End with the pipeline's error: nil removes the checkpoints, an error
	// keeps them for the next attempt. A killed process never gets here,
	// and its checkpoints stay just the same.
	defer func() {
		if endErr := exec.End(err); endErr != nil {
			err = errors.Join(err, endErr)
		} else if err == nil {
			say("End(nil): the execution is complete; its checkpoints are removed")
		}
	}()

	ex, err := p.extract.Call(ctx, batch)
	if err != nil {
		return err
	}
	say("step 1 extract: %s: %d orders from %s", how(0, ex.PID), len(ex.Orders), batch.Source)
	tot, err := p.transform.Call(ctx, ex.Orders)
	if err != nil {
		return err
	}
	say("step 2 transform: %s: %d orders, %d.%02d EUR", how(1, tot.PID), tot.Count, tot.Cents/100, tot.Cents%100)
	ld, err := p.load.Call(ctx, tot)
	if err != nil {
		return err
	}
	say("step 3 load: %s: %d row into %s", how(2, ld.PID), ld.Rows, ld.Table)
	return nil
}

// killSelf ends this process as abruptly as an OOM kill or a power cut to
// the process would: SIGKILL cannot be caught, so no deferred call runs,
// Badger is not closed, nothing is flushed.
func killSelf() error {
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = p.Signal(syscall.SIGKILL) // kill(getpid(), SIGKILL) on Unix
	}
	if err != nil {
		return fmt.Errorf("kill self: %w", err)
	}
	time.Sleep(time.Minute) // the signal is on its way
	return errors.New("still alive a minute after SIGKILL")
}

// ---- The runs log: what ran, on disk ----

const runsLog = "runs.log"

// record appends "step N started|finished (pid P)" to runs.log and syncs it
// to disk before returning, so that the line outlives a kill that follows.
func record(dir string, step int, what string) error {
	f, err := os.OpenFile(filepath.Join(dir, runsLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "step %d %s (pid %d)\n", step, what, os.Getpid())
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// counts reads runs.log: how often each step started and finished.
func counts(dir string) (started, finished [3]int, err error) {
	f, err := os.Open(filepath.Join(dir, runsLog))
	if err != nil {
		return started, finished, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var step, pid int
		var what string
		if _, err := fmt.Sscanf(sc.Text(), "step %d %s (pid %d)", &step, &what, &pid); err != nil || step < 1 || step > 3 {
			return started, finished, fmt.Errorf("%s: bad line %q", runsLog, sc.Text())
		}
		switch what {
		case "started":
			started[step-1]++
		case "finished":
			finished[step-1]++
		}
	}
	return started, finished, sc.Err()
}

// ---- The parent ----

var stepNames = [3]string{"extract", "transform", "load"}

// run drives the demonstration: a child that crashes, a child that resumes,
// and what runs.log and Badger say after each. It returns an error if a
// child did not end as planned or the counts differ from what a correct
// resume gives.
func run(w io.Writer, dir string) error {
	if err := prepare(w, dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "pipeline: 1 extract → 2 transform → 3 load, each scope.Workflow on memory+badger, execution %q\n\n", execID)

	fmt.Fprintln(w, "=== 1. First child process: runs the pipeline, is killed inside step 2 ===")
	err := spawn(w, dir, modeCrash)
	fmt.Fprintf(w, "  parent: child exited: %v\n", err)
	if !killed(err) {
		return fmt.Errorf("first child: want death by SIGKILL, got %v", err)
	}
	if err := report(w, dir, [3]int{1, 1, 0}, [3]int{1, 0, 0}); err != nil {
		return err
	}
	if n, err := checkpoints(w, dir); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("after the crash: %d checkpoints in Badger, want 1 (step 1's)", n)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "=== 2. Second child process: the same execution ID again ===")
	err = spawn(w, dir, modeResume)
	fmt.Fprintf(w, "  parent: child exited: %v\n", exitText(err))
	if err != nil {
		return fmt.Errorf("second child: %w", err)
	}
	if err := report(w, dir, [3]int{1, 2, 1}, [3]int{1, 1, 1}); err != nil {
		return err
	}
	fmt.Fprintln(w, "  (step 2 started twice: once in the killed process, once to completion)")
	n, err := checkpoints(w, dir)
	if err != nil {
		return err
	}
	purged, err := purge(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  parent: PurgeExecution(%q) on a fresh open of Badger finds %d entries to remove\n", execID, purged)
	if n != 0 || purged != 0 {
		return fmt.Errorf("after End(nil): %d checkpoints found, %d purged; want none", n, purged)
	}
	return nil
}

// prepare empties runs.log and removes what an earlier, interrupted run in
// the same directory may have left of the execution.
func prepare(w io.Writer, dir string) error {
	if err := os.WriteFile(filepath.Join(dir, runsLog), nil, 0o644); err != nil {
		return err
	}
	n, err := purge(dir)
	if n > 0 {
		fmt.Fprintf(w, "removed %d checkpoints of %s left by an earlier run\n", n, execID)
	}
	return err
}

// spawn runs this program again as a child in the given mode, with its
// output going to w, and returns what Wait returns.
func spawn(w io.Writer, dir, mode string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+mode, dirEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = w, w
	return cmd.Run()
}

// killed reports whether err is that of a child killed by SIGKILL.
func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// report prints the run counts in runs.log and compares them with the
// expected ones.
func report(w io.Writer, dir string, wantStarted, wantFinished [3]int) error {
	started, finished, err := counts(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  parent: runs.log says\n")
	fmt.Fprintf(w, "    %-13s %-8s %s\n", "step", "started", "finished")
	for i, name := range stepNames {
		fmt.Fprintf(w, "    %d %-11s %-8d %d\n", i+1, name, started[i], finished[i])
	}
	if started != wantStarted || finished != wantFinished {
		return fmt.Errorf("runs.log: started %v, finished %v; want %v, %v", started, finished, wantStarted, wantFinished)
	}
	return nil
}

// errInspecting ends the parent's inspection executions: ending one with an
// error keeps what is stored.
var errInspecting = errors.New("inspection only")

// checkpoints looks up, in a fresh open of Badger, which steps of execution
// execID have a stored result, and prints and returns how many. Peek reads
// a checkpoint without running the step or storing anything. Each step's
// input is the result of the step before, so the lookup stops at the first
// step without one.
func checkpoints(w io.Writer, dir string) (n int, err error) {
	db, store, err := openStore(dir)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	// Peek never runs a step: these are here because a handle needs one.
	unused := errors.New("the parent only peeks")
	p := newPipeline(store, steps{
		extract:   func(context.Context, Batch) (Extracted, error) { return Extracted{}, unused },
		transform: func(context.Context, []Order) (Totals, error) { return Totals{}, unused },
		load:      func(context.Context, Totals) (Loaded, error) { return Loaded{}, unused },
	})
	ctx, exec := scope.Begin(context.Background(), execID)
	defer func() { err = errors.Join(err, exec.End(errInspecting)) }()

	var found []string
	note := func(step, tier string, expires time.Time) {
		found = append(found, fmt.Sprintf("%s (in %s, expires in %v)", step, tier, time.Until(expires).Round(time.Minute)))
	}
	ex, ok, err := p.extract.Peek(ctx, batch)
	if ok && err == nil {
		note("1 extract", ex.Tier, ex.Expires)
		var tot middleware.Stored[Totals]
		if tot, ok, err = p.transform.Peek(ctx, ex.Value.Orders); ok && err == nil {
			note("2 transform", tot.Tier, tot.Expires)
			var ld middleware.Stored[Loaded]
			if ld, ok, err = p.load.Peek(ctx, tot.Value); ok && err == nil {
				note("3 load", ld.Tier, ld.Expires)
			}
		}
	}
	if err != nil {
		return 0, err
	}
	list := "none"
	if len(found) > 0 {
		list = "step " + strings.Join(found, ", step ")
	}
	fmt.Fprintf(w, "  parent: checkpoints of %s in Badger: %s\n", execID, list)
	return len(found), nil
}

// purge removes execution execID's Workflow entries from Badger and returns
// how many there were.
func purge(dir string) (n int, err error) {
	db, err := badger.Open(filepath.Join(dir, "badger"))
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	return db.PurgeExecution(context.Background(), execID)
}
