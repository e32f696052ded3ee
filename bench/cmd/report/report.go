package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/docket-go/docket/bench"
	"github.com/docket-go/docket/scope"
)

// row is one scenario × implementation of the report: medians over passes.
type row struct {
	benchCase
	med measurement
	// spread is the range of calls/s over the passes, relative to the
	// median.
	spread float64
	// vsB is the median over passes of calls/s divided by the hand-rolled
	// baseline's calls/s in the same pass and scenario; NaN where it does
	// not apply.
	vsB float64
}

// target is one of the targets, checked against one row.
type target struct {
	goal, row, measured string
	met                 bool
}

type summary struct {
	rows    []row
	targets []target
	count   int
}

func summarize(cases []benchCase, runs [][]measurement, count int) summary {
	find := func(scenario string, k bench.Kind) int {
		for i, c := range cases {
			if c.scenario.Name == scenario && c.system.Kind == k {
				return i
			}
		}
		return -1
	}
	findSystem := func(scenario, system string) int {
		for i, c := range cases {
			if c.scenario.Name == scenario && c.system.Name == system {
				return i
			}
		}
		return -1
	}
	// perPass returns the median over passes of f(pass of case i, pass of
	// case j): ratios and differences are taken within a pass.
	perPass := func(i, j int, f func(a, b measurement) float64) float64 {
		if i < 0 || j < 0 {
			return math.NaN()
		}
		xs := make([]float64, count)
		for p := range count {
			xs[p] = f(runs[i][p], runs[j][p])
		}
		return median(xs)
	}
	callsRatio := func(a, b measurement) float64 { return a.callsPerSec / b.callsPerSec }
	nsRatio := func(a, b measurement) float64 { return a.nsPerOp / b.nsPerOp }

	s := summary{count: count}
	for i, c := range cases {
		r := row{benchCase: c, vsB: math.NaN()}
		pick := func(f func(m measurement) float64) float64 {
			xs := make([]float64, count)
			for p := range count {
				xs[p] = f(runs[i][p])
			}
			return median(xs)
		}
		r.med = measurement{
			callsPerSec: pick(func(m measurement) float64 { return m.callsPerSec }),
			runsPer1k:   pick(func(m measurement) float64 { return m.runsPer1k }),
			hitRatio:    pick(func(m measurement) float64 { return m.hitRatio }),
			spansPer1k:  pick(func(m measurement) float64 { return m.spansPer1k }),
			stepMicros:  pick(func(m measurement) float64 { return m.stepMicros }),
			nsPerOp:     pick(func(m measurement) float64 { return m.nsPerOp }),
			allocsPerOp: pick(func(m measurement) float64 { return m.allocsPerOp }),
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, m := range runs[i] {
			lo, hi = min(lo, m.callsPerSec), max(hi, m.callsPerSec)
		}
		r.spread = (hi - lo) / r.med.callsPerSec
		if c.system.Kind == bench.Docket {
			r.vsB = perPass(i, find(c.scenario.Name, bench.HandRolled), callsRatio)
		}
		s.rows = append(s.rows, r)
	}

	for i, c := range cases {
		if c.system.Kind != bench.Docket {
			continue
		}
		r := s.rows[i]
		name := label(c.system)
		memory := c.system.Tier == "memory"
		switch c.scenario.Name {
		case "hot-key":
			s.targets = append(s.targets, target{
				goal:     "hot-key: runs/1k calls ≤ step durations spanned per 1k calls",
				row:      name,
				measured: fmt.Sprintf("%s ≤ %s", num(r.med.runsPer1k), num(r.med.spansPer1k)),
				met:      r.med.runsPer1k <= r.med.spansPer1k,
			})
			if b := find(c.scenario.Name, bench.HandRolled); b >= 0 {
				s.targets = append(s.targets, target{
					goal: "hot-key: calls/s ≥ 0.9× (b)", row: name,
					measured: ratio(r.vsB), met: r.vsB >= 0.9,
				})
			}
		case "zipf":
			if !memory {
				continue
			}
			if o := find(c.scenario.Name, bench.Otter); o >= 0 {
				v := perPass(i, o, callsRatio)
				s.targets = append(s.targets, target{
					goal: "zipf, memory: calls/s ≥ 1.0× (c) otter", row: name,
					measured: ratio(v), met: v >= 1.0,
				})
			}
			if find(c.scenario.Name, bench.HandRolled) >= 0 {
				s.targets = append(s.targets, target{
					goal: "zipf, memory: calls/s ≥ 1.5× (b)", row: name,
					measured: ratio(r.vsB), met: r.vsB >= 1.5,
				})
			}
		case "unique":
			if !memory {
				continue
			}
			if b := find(c.scenario.Name, bench.HandRolled); b >= 0 {
				v := perPass(i, b, nsRatio)
				s.targets = append(s.targets, target{
					goal: "unique (the miss path), memory: ns/op ≤ 1.0× (b)", row: name,
					measured: ratio(v), met: v <= 1.0,
				})
			}
			s.targets = append(s.targets, target{
				goal: "unique (the miss path), memory: allocs/op ≤ 8", row: name,
				measured: allocs(r.med.allocsPerOp), met: r.med.allocsPerOp <= 8,
			})
		case "hits-parallel":
			if one := findSystem("hits", c.system.Name); one >= 0 {
				v := perPass(i, one, callsRatio)
				s.targets = append(s.targets, target{
					goal: fmt.Sprintf("hits-parallel: calls/s ≥ 1.8× the same row in hits (%d callers vs 1)", runtime.GOMAXPROCS(0)), row: name,
					measured: ratio(v), met: v >= 1.8,
				})
			}
			if f := find(c.scenario.Name, bench.OtterBinary); f >= 0 {
				v := perPass(i, f, callsRatio)
				s.targets = append(s.targets, target{
					goal: "hits-parallel: calls/s ≥ 1.0× (f) binary key + otter", row: name,
					measured: ratio(v), met: v >= 1.0,
				})
			}
		case "execution-overhead":
			if e := find(c.scenario.Name, bench.ExecMap); e >= 0 && memory {
				v := perPass(i, e, nsRatio)
				s.targets = append(s.targets, target{
					goal: "one execution (execution-overhead), memory: ns/op ≤ 0.8× (e) per-execution map", row: name,
					measured: ratio(v), met: v <= 0.8,
				})
			}
			d := find(c.scenario.Name, bench.Direct)
			if d < 0 {
				continue
			}
			// The direct row runs the step 15 times, Docket 5 times: what
			// Docket adds is its time less a third of the direct row's.
			v := perPass(i, d, func(a, b measurement) float64 { return a.nsPerOp - b.nsPerOp/3 })
			s.targets = append(s.targets, target{
				goal: "executions: Begin + End + 15 calls ≤ 10 µs beyond the 5 step runs", row: name,
				measured: fmt.Sprintf("%s µs", num(v/1000)), met: v <= 10_000,
			})
		}
	}
	return s
}

// label names a system in the report.
func label(s bench.System) string {
	switch s.Kind {
	case bench.Direct:
		return "(a) direct"
	case bench.HandRolled:
		return "(b) hand-rolled"
	case bench.Otter:
		return "(c) otter"
	case bench.Sturdyc:
		return "(d) sturdyc"
	case bench.ExecMap:
		return "(e) per-execution map"
	case bench.OtterBinary:
		return "(f) binary key + otter"
	}
	sc := "Global"
	if s.Scope == scope.Workflow {
		sc = "Workflow"
	}
	return "Docket " + sc + ", " + s.Tier
}

// num formats x with three significant digits and thousands separators.
func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case x == 0:
		return "0"
	case math.Abs(x) >= 1000:
		return group(strconv.FormatFloat(math.Round(x), 'f', 0, 64))
	}
	digits := max(0, 2-int(math.Floor(math.Log10(math.Abs(x)))))
	return strconv.FormatFloat(x, 'f', digits, 64)
}

// group puts thousands separators into an integer.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// rate formats calls/s with three significant digits and a k or M suffix.
func rate(x float64) string {
	switch {
	case x >= 1e6:
		return num(x/1e6) + "M"
	case x >= 1e3:
		return num(x/1e3) + "k"
	}
	return num(x)
}

// allocs formats allocations per op: one decimal, enough to show what a
// few misses among many hits add.
func allocs(x float64) string {
	if x >= 100 {
		return num(x)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func ratio(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

func writeMarkdown(w io.Writer, s summary, e env, cmd, note string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Docket benchmark report\n\n")
	p("**Machine:** %s, %d cores (GOMAXPROCS %d), %s · **Go:** %s · **Date:** %s · **Docket:** %s\n\n",
		e.cpu, e.cores, e.procs, e.platform, e.goVersion, e.started.UTC().Format("2006-01-02 15:04 MST"), e.docket)
	if e.modules != "" {
		p("**Modules:** %s\n\n", e.modules)
	}
	if e.loadStart != "" {
		p("Load average (1, 5, 15 min) at the start: %s; at the end: %s.\n\n", e.loadStart, e.loadEnd)
	}
	if note != "" {
		p("> %s\n\n", strings.ReplaceAll(note, "\n", "\n> "))
	}
	p("Produced by `%s` in `bench/`, in %s. ", cmd, e.finished.Sub(e.started).Round(time.Second))
	if s.count > 1 {
		p("Each number is the median of %d passes; a pass runs every scenario for every implementation once, in the order of the table. ", s.count)
	} else {
		p("One pass: every scenario for every implementation once, in the order of the table. ")
	}
	p("Within a scenario every implementation makes the same calls with the same inputs. ")
	p("Ratios to (b) are taken within each pass, then the median is reported.\n\n")
	p("![calls/s per scenario and implementation](report.svg)\n\n")

	p("## Results\n\n")
	p("| scenario | implementation | calls/s | runs/1k calls | ns/op | allocs/op | calls/s vs (b) | calls/s spread |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range s.rows {
		p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.scenario.Name, label(r.system),
			rate(r.med.callsPerSec), num(r.med.runsPer1k), num(r.med.nsPerOp), allocs(r.med.allocsPerOp),
			ratio(r.vsB), fmt.Sprintf("%.0f%%", 100*r.spread))
	}
	p("\n")

	if len(s.targets) > 0 {
		p("## Targets\n\n")
		p("| target | row | measured | |\n| --- | --- | --- | --- |\n")
		for _, t := range s.targets {
			verdict := "met"
			if !t.met {
				verdict = "**missed**"
			}
			p("| %s | %s | %s | %s |\n", t.goal, t.row, t.measured, verdict)
		}
		p(`
hot-key's step durations spanned per 1k calls are the run's wall time in units of the
step's 1 ms, per 1,000 calls: one run per flight keeps runs/1k calls at or below them.
hits-parallel's scaling is a row's calls/s there divided by its calls/s in hits, within a pass.
The executions overhead is Docket's ns/op in execution-overhead less a third of (a)'s,
which runs the zero-cost step 15 times where Docket runs it 5 times.

`)
	}

	p("## Scenarios\n\n")
	seen := map[string]bool{}
	for _, r := range s.rows {
		sc := r.scenario
		if seen[sc.Name] {
			continue
		}
		seen[sc.Name] = true
		p("- **%s**: %s. %s %ss per benchmark", sc.Name, sc.Title, group(strconv.Itoa(r.ops)), sc.Op)
		if sc.CallsPerOp > 1 {
			p(", %d calls each", sc.CallsPerOp)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, q := range s.rows {
			if q.scenario.Name == sc.Name && q.med.stepMicros > 0 {
				lo, hi = min(lo, q.med.stepMicros), max(hi, q.med.stepMicros)
			}
		}
		if lo <= hi {
			p(". A run of the step actually took %s to %s µs (medians per implementation)", num(lo), num(hi))
		}
		p(".\n")
	}
	p(`
Docket's Workflow-scoped rows run in one execution per benchmark (per op in the
executions scenarios); its memory+badger rows put a Badger store, in a fresh
temporary directory, behind the memory tier (backends.Tiered), and its
memory+sqlite rows a SQLite file (synchronous=NORMAL) likewise. Every store holds
at most 10,000 entries (zipf: 20,000). The step sleeps for its cost, as a step
waiting on a database does.

## How to read it

- **calls/s**: step calls answered per second of wall time, by all callers together.
- **runs/1k calls**: how often the step ran per 1,000 calls; 1,000 means no call
  was saved. hot-key's lower bound is 1,000/256 = 3.9 (one run per round of 256
  callers); the executions scenarios' is 333 (each step runs once of its 3 calls).
- **ns/op**: wall time per op. An op is one call, except in the executions
  scenarios, where it is one execution (15 calls). With several callers it is the
  inverse of throughput, not the latency of one call.
- **allocs/op**: heap allocations per op, as ` + "`b.ReportAllocs`" + ` counts them.
- **calls/s vs (b)**: calls/s of a Docket row divided by that of the hand-rolled
  baseline (b) of the same scenario and pass; the median over passes.
- **step**: the step sleeps for its cost; a sleep lasts longer than asked, by up to
  the timer's resolution, and more on a busy machine. The scenarios list above gives
  how long a run of the step actually took.
- **calls/s spread**: (highest − lowest) / median of calls/s over the passes: how
  much the machine disturbed the row.
- The benchmarks also report hit-ratio, the share of calls answered without
  running the step (from the store or by joining a flight): 1 − runs/1k calls / 1,000.

## Where the implementations differ

- **(a) direct** calls the step every time: no cache, no dedup.
- **(b) hand-rolled** is what a Go program often does today: a ` + "`sync.Map`" + ` of
  results with an expiry time each, ` + "`golang.org/x/sync/singleflight`" + ` (` + "`Do`" + `) around
  misses, with a second look into the map inside the flight, and a key that is the
  hex SHA-256 of the step name and the input's ` + "`encoding/json`" + `. The map is
  unbounded: nothing is evicted.
- **(c) otter** (` + "`github.com/maypok86/otter/v2`" + `) is a bounded W-TinyLFU cache;
  ` + "`Cache.Get`" + ` with a loader deduplicates concurrent loads of a key. Same key as (b).
- **(d) sturdyc** (` + "`github.com/viccon/sturdyc`" + `) is a sharded cache with
  ` + "`GetOrFetch`" + `, which deduplicates concurrent fetches of a key. Same key as (b);
  64 shards, no background eviction goroutine.
- **(e) per-execution map** (executions scenarios only) is what a Go program writes
  to memoize the steps of one workflow run: a map of results carried in the
  execution's context and dropped at its end, a mutex, and singleflight around
  misses. Same key as (b), without the execution ID.
- **(f) binary key + otter** (hits scenarios only) is otter's ` + "`GetIfPresent`" + `
  (` + "`Get`" + ` with a loader on a miss) on a key written by hand: the input's fields
  in binary, length-delimited, and SHA-256 over them, the key work Docket's keyer
  does without reflection.
- **Contexts**: every call has a context that can be cancelled, as a server
  request's has; each execution's context descends from it.
- **Keys**: Docket keys on its canonical encoding of the input struct (step name,
  version, scope and, for Workflow, the execution ID, hashed with SHA-256); the peers
  on the same input through JSON.
- **Durable tier**: only Docket has one. Its memory+badger and memory+sqlite rows are compared with
  peers that keep results in memory only; the ratio shows what durability costs.
- **Shared tier**: the memory+redis rows write every result to a redis-server on loopback
  (started for the run) under a lease with a fencing token: the cost of recording one run per key
  across processes, measured here from one process.
- **Executions**: only Docket knows them. In the executions scenarios the peers put
  the execution ID into their keys and, when an execution ends, delete the keys it
  stored, which they track themselves; (a) does nothing. Outside those scenarios the
  peers run without executions, and Docket's Workflow rows are compared with them as
  they are (their keys hash no execution ID).
- **Cancellation**: (b) and (d) make every caller wait for the flight, whatever its
  context; (c) lets a waiting caller leave when its context ends, but the caller that
  runs the loader waits for it, and the loader gets that caller's context. Docket
  lets every caller leave at once and cancels the step only when all have gone.
- **Panics**: (d) turns a panic in the step into an error; the others re-raise it
  in the callers.

## Reproduce

`)
	p("```bash\ncd bench\n%s   # this report\ngo run ./cmd/report -quick            # under a minute, one pass\ngo test -run '^$' -bench . -benchmem   # the suite, with go test's own op counts\n```\n", cmd)
}

// writeSummary prints the results table and the targets to w.
func writeSummary(w io.Writer, s summary) {
	fmt.Fprintf(w, "%-20s %-30s %10s %8s %12s %9s %7s\n", "scenario", "implementation", "calls/s", "runs/1k", "ns/op", "allocs/op", "vs (b)")
	for _, r := range s.rows {
		fmt.Fprintf(w, "%-20s %-30s %10s %8s %12s %9s %7s\n", r.scenario.Name, label(r.system),
			rate(r.med.callsPerSec), num(r.med.runsPer1k), num(r.med.nsPerOp), allocs(r.med.allocsPerOp), ratio(r.vsB))
	}
	for _, t := range s.targets {
		verdict := "met"
		if !t.met {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "%-6s %s — %s: %s\n", verdict, t.goal, t.row, t.measured)
	}
}
