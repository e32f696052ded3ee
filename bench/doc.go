// Package bench measures Docket side by side with what Go programs use today
// to run a step once per key: the step called directly, a hand-rolled
// singleflight + sync.Map cache, otter and sturdyc.
//
// It is a module of its own (bench/go.mod, with a replace to the root), so
// that the libraries it compares against never become dependencies of
// Docket.
//
// # Scenarios
//
// Every implementation runs the same step on the same inputs (the same
// struct, the same Zipf trace, the same number of calls when run by the
// report harness) with the same step cost. The step sleeps for its cost,
// as a call to a database or another service waits, and counts its runs.
//
//   - hot-key: 256 callers call one key at once, round after round, each
//     round a new key; the step takes 1 ms.
//   - zipf: 64 callers draw from 10,000 keys with Zipf s = 1.1; the step
//     takes 100 µs.
//   - unique: one caller, every call a new key, a step that costs nothing:
//     the miss path alone (key, flight, store write).
//   - hits: 10,000 keys stored beforehand, then called in random order by
//     one caller: the hit path alone.
//   - hits-parallel: the same with one caller per core, to show how hits
//     scale: a hit that writes shared memory (a lock, a counter) makes the
//     cores wait on each other's caches.
//   - executions: 64 workers, each iteration one execution: Begin, a 5-step
//     pipeline that calls each step 3 times, End; the step takes 100 µs.
//   - execution-overhead: the same with one worker and a step that costs
//     nothing, so that what is measured is the overhead of Begin, End and
//     15 calls.
//
// Every call has a context that can be cancelled, as a server request's has
// (http.Request.Context never has a nil Done), so that every system takes
// the path real callers take.
//
// Docket runs each scenario in both scopes (the executions scenarios:
// Workflow only) and with the tiers memory, memory+badger, memory+sqlite
// and memory+redis (the hits scenarios: memory only; memory+redis starts a
// redis-server of its own on a free loopback port, and is left out with a
// message when none is installed). See [Systems] for the peers and where
// their semantics differ, and [Scenario.Systems] for the two peers only some
// scenarios run: a per-execution map in the executions scenarios, and otter
// on a key written by hand in the hits scenarios.
//
// # Metrics
//
// Each benchmark reports calls/s, runs/1k-calls (step runs per 1,000
// calls: the dedup ratio), hit-ratio (the share of calls answered without
// running the step, from the store or by sharing a flight) and, through
// b.ReportAllocs, allocs/op. An op is one call, except in the executions
// scenarios, where it is one execution of 15 calls. With several callers,
// ns/op is wall time divided by calls (the inverse of throughput), not the
// latency of one call. hot-key also reports spans/1k-calls, how many step
// durations the run spanned per 1,000 calls: with one run per flight,
// runs/1k-calls stays at or below it. Scenarios whose step has a cost also
// report step-us, how long a run of the step actually took: a sleep lasts
// longer than asked, by up to the timer resolution.
//
// With go test's own op counts (-benchtime as a duration) the zipf numbers
// depend on the count: the run starts with an empty cache, and the shorter
// the run, the larger the share of its calls that miss. The report harness
// gives every implementation the same count; do so with go test by passing
// -benchtime 1000000x.
//
// Run the suite with go test -bench . in this directory, and the report
// (REPORT.md and report.svg, medians of repeated runs) with
// go run ./cmd/report.
package bench
