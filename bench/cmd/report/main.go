// Command report runs the benchmark suite of package bench, every scenario
// for every implementation, and writes REPORT.md and report.svg: medians of
// -count passes, the ratios of Docket to the hand-rolled baseline taken
// within each pass, and whether the targets are met.
//
// Run it inside bench/:
//
//	go run ./cmd/report -count 5
//
// Each pass runs every scenario × implementation once, in a fixed order, so
// that a disturbance of the machine hits every implementation of a pass
// alike. Every implementation of a scenario runs the same number of ops
// (Scenario.Ops; -quick uses Scenario.QuickOps, -scale multiplies), and so
// the same inputs.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/bench"
)

func main() {
	quick := flag.Bool("quick", false, "a short run (under a minute): fewer ops per benchmark and, unless -count is given, one pass")
	count := flag.Int("count", 5, "passes over the matrix; the report gives medians")
	out := flag.String("out", ".", "directory to write REPORT.md and report.svg to")
	scale := flag.Float64("scale", 1, "multiply every scenario's op count by this (to shorten or lengthen each benchmark)")
	only := flag.String("run", "", "run only benchmarks whose scenario/implementation name matches this regexp")
	note := flag.String("note", "", "a note on the conditions of the run, quoted in REPORT.md")
	flag.Parse()
	if *quick && !flagGiven("count") {
		*count = 1
	}
	if *count < 1 || *scale <= 0 {
		fail(fmt.Errorf("need -count ≥ 1 and -scale > 0"))
	}
	var filter *regexp.Regexp
	if *only != "" {
		var err error
		if filter, err = regexp.Compile(*only); err != nil {
			fail(err)
		}
	}
	cmd := command()
	testing.Init()

	cases := matrix(*quick, *scale, filter)
	if len(cases) == 0 {
		fail(fmt.Errorf("no benchmark matches -run %q", *only))
	}
	env := readEnv()
	runs, err := runAll(cases, *count)
	if err != nil {
		fail(err)
	}
	env.loadEnd = loadAvg()
	env.finished = time.Now()

	rep := summarize(cases, runs, *count)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	var md bytes.Buffer
	writeMarkdown(&md, rep, env, cmd, *note)
	if err := os.WriteFile(filepath.Join(*out, "REPORT.md"), md.Bytes(), 0o644); err != nil {
		fail(err)
	}
	if err := writeChart(filepath.Join(*out, "report.svg"), rep, env); err != nil {
		fail(err)
	}
	writeSummary(os.Stdout, rep)
	fmt.Printf("wrote %s and %s\n", filepath.Join(*out, "REPORT.md"), filepath.Join(*out, "report.svg"))
}

// command is the command line that ran the report, without the note (the
// report quotes it on its own).
func command() string {
	args := []string{"go run ./cmd/report"}
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "note" || strings.HasPrefix(f.Name, "test.") {
			return
		}
		v := f.Value.String()
		switch {
		case v == "true":
			args = append(args, "-"+f.Name)
		case strings.ContainsAny(v, " '\"$*?()[]{}|&;<>`\\"):
			args = append(args, "-"+f.Name, "'"+strings.ReplaceAll(v, "'", `'\''`)+"'")
		default:
			args = append(args, "-"+f.Name, v)
		}
	})
	if flagGiven("note") {
		args = append(args, "-note '…'")
	}
	return strings.Join(args, " ")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	return given
}

// benchCase is one scenario × implementation.
type benchCase struct {
	scenario bench.Scenario
	system   bench.System
	ops      int
}

func (c benchCase) name() string { return c.scenario.Name + "/" + c.system.Name }

func matrix(quick bool, scale float64, filter *regexp.Regexp) []benchCase {
	var cases []benchCase
	for _, sc := range bench.Scenarios() {
		ops := sc.Ops
		if quick {
			ops = sc.QuickOps
		}
		ops = max(1, int(float64(ops)*scale))
		for _, s := range sc.Systems() {
			c := benchCase{scenario: sc, system: s, ops: ops}
			if filter == nil || filter.MatchString(c.name()) {
				cases = append(cases, c)
			}
		}
	}
	return cases
}

// measurement is one benchmark run.
type measurement struct {
	callsPerSec, runsPer1k, hitRatio, spansPer1k float64
	stepMicros                                   float64 // 0: the step has no cost
	nsPerOp, allocsPerOp                         float64
}

// runAll runs count passes over cases, with a progress bar on stderr.
func runAll(cases []benchCase, count int) ([][]measurement, error) {
	runs := make([][]measurement, len(cases)) // [case][pass]
	total := len(cases) * count
	start := time.Now()
	bar := newProgress(os.Stderr, total)
	for pass := range count {
		for i, c := range cases {
			bar.show(pass*len(cases)+i, fmt.Sprintf("pass %d/%d %s", pass+1, count, c.name()), start)
			if err := flag.Set("test.benchtime", fmt.Sprintf("%dx", c.ops)); err != nil {
				return nil, err
			}
			failed := false
			res := testing.Benchmark(func(b *testing.B) {
				c.scenario.Run(b, c.system)
				failed = b.Failed()
			})
			if failed || res.N == 0 {
				bar.done()
				return nil, fmt.Errorf("%s failed; run go test -run '^$' -bench . in bench/ to see why", c.name())
			}
			runs[i] = append(runs[i], measurement{
				callsPerSec: res.Extra["calls/s"],
				runsPer1k:   res.Extra["runs/1k-calls"],
				hitRatio:    res.Extra["hit-ratio"],
				spansPer1k:  res.Extra["spans/1k-calls"],
				stepMicros:  res.Extra["step-us"],
				nsPerOp:     float64(res.T.Nanoseconds()) / float64(res.N),
				allocsPerOp: float64(res.MemAllocs) / float64(res.N),
			})
		}
	}
	bar.show(total, "done", start)
	bar.done()
	return runs, nil
}

// progress draws a progress bar on one line of w.
type progress struct {
	w     io.Writer
	total int
}

func newProgress(w io.Writer, total int) *progress { return &progress{w: w, total: total} }

func (p *progress) show(done int, what string, start time.Time) {
	const width = 30
	filled := width * done / p.total
	eta := "?"
	if done > 0 {
		left := time.Duration(float64(time.Since(start)) / float64(done) * float64(p.total-done))
		eta = left.Round(time.Second).String()
	}
	line := fmt.Sprintf("[%s%s] %3d/%d  %s  elapsed %s, left ~%s",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, p.total,
		what, time.Since(start).Round(time.Second), eta)
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

func (p *progress) done() { fmt.Fprintln(p.w) }

// env describes the machine and the run.
type env struct {
	cpu, goVersion, platform, docket string
	modules                          string // the versions of the libraries compared
	cores, procs                     int
	started, finished                time.Time
	loadStart, loadEnd               string
}

func readEnv() env {
	return env{
		cpu:       cpuModel(),
		cores:     runtime.NumCPU(),
		procs:     runtime.GOMAXPROCS(0),
		goVersion: runtime.Version(),
		platform:  runtime.GOOS + "/" + runtime.GOARCH,
		docket:    docketVersion(),
		started:   time.Now(),
		loadStart: loadAvg(),
		modules:   modules(),
	}
}

// modules lists the versions of the peers and of Docket's drivers that this
// binary was built with.
func modules() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var list []string
	for _, d := range info.Deps {
		switch d.Path {
		case "github.com/maypok86/otter/v2", "github.com/viccon/sturdyc", "golang.org/x/sync",
			"github.com/dgraph-io/badger/v4", "github.com/hashicorp/golang-lru/v2", "modernc.org/sqlite":
			list = append(list, d.Path+" "+d.Version)
		}
	}
	return strings.Join(list, ", ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadAvg returns the 1-, 5- and 15-minute load averages, if the system
// tells them.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// docketVersion names the commit of the Docket checkout measured, and says
// whether its working tree had changes.
func docketVersion() string {
	rev, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown commit"
	}
	v := "commit " + strings.TrimSpace(string(rev))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		v += " with uncommitted changes"
	}
	return v
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}
