package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/docket-go/docket/scope"
)

// benchScenario runs one scenario for every system, as sub-benchmarks.
func benchScenario(b *testing.B, name string) {
	for _, sc := range Scenarios() {
		if sc.Name != name {
			continue
		}
		for _, s := range sc.Systems() {
			b.Run(s.Name, func(b *testing.B) { sc.Run(b, s) })
		}
		return
	}
	b.Fatalf("no scenario %q", name)
}

func BenchmarkHotKey(b *testing.B)            { benchScenario(b, "hot-key") }
func BenchmarkZipf(b *testing.B)              { benchScenario(b, "zipf") }
func BenchmarkUnique(b *testing.B)            { benchScenario(b, "unique") }
func BenchmarkHits(b *testing.B)              { benchScenario(b, "hits") }
func BenchmarkHitsParallel(b *testing.B)      { benchScenario(b, "hits-parallel") }
func BenchmarkExecutions(b *testing.B)        { benchScenario(b, "executions") }
func BenchmarkExecutionOverhead(b *testing.B) { benchScenario(b, "execution-overhead") }

// TestSystems checks that every system does what the benchmarks count on:
// concurrent and repeated calls of a key run the step once, and an
// execution that ends successfully leaves nothing for the next one with the
// same ID.
func TestSystems(t *testing.T) {
	for _, s := range append(Systems(false), execMapSystem, otterBinarySystem) {
		t.Run(s.Name, func(t *testing.T) {
			w := &work{cost: time.Millisecond}
			inst := s.build(t, 100)
			step := inst.wrap("fetch", w.step)
			want := int64(1)
			if s.Kind == Direct {
				want = 8
			}

			ctx, end := inst.begin(context.Background(), "exec-1")
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					out, err := step(ctx, Input{Tenant: "acme", ID: 7})
					if err != nil || out.ID != 7 || out.Name != "acme" {
						t.Errorf("step = %+v, %v", out, err)
					}
				})
			}
			wg.Wait()
			if got := w.runs.Load(); got != want {
				t.Fatalf("8 concurrent calls ran the step %d times, want %d", got, want)
			}
			if err := end(); err != nil {
				t.Fatal(err)
			}

			// Global-scoped Docket keeps the result across executions; the
			// others key on the execution and deleted its entries at End.
			ctx, end = inst.begin(context.Background(), "exec-1")
			defer end()
			if _, err := step(ctx, Input{Tenant: "acme", ID: 7}); err != nil {
				t.Fatal(err)
			}
			if s.Kind != Docket || s.Scope != scope.Global {
				want++
			}
			if got := w.runs.Load(); got != want {
				t.Fatalf("after End, a call in a new execution with the same ID: %d runs, want %d", got, want)
			}
		})
	}
}
