package badger_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
)

// openAllocBudget is the most Open may allocate with the Store's defaults
// (Badger's own defaults allocate about 85 MiB, most of it a 64 MiB memtable
// arena).
const openAllocBudget = 32 << 20

func TestOpenAllocation(t *testing.T) {
	runtime.GC()
	n := openAlloc(t, t.TempDir())
	t.Logf("Open allocated %.1f MiB", float64(n)/(1<<20))
	if n > openAllocBudget {
		t.Errorf("Open allocated %.1f MiB, budget %d MiB", float64(n)/(1<<20), openAllocBudget>>20)
	}
}

// raceEnabled is set by race_test.go.
var raceEnabled bool

// TestPeakRSS measures, in a fresh process each, the peak resident set size
// (VmHWM) of a process that opens a Store with the defaults, writes n small
// entries and reads them back, for the package documentation. It fails only
// on gross regressions, since RSS depends on the kernel and the Go runtime.
func TestPeakRSS(t *testing.T) {
	if raceEnabled {
		t.Skip("memory use under the race detector is not representative")
	}
	if testing.Short() {
		t.Skip("writes 100k entries in a helper process")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc/self/status")
	}
	for _, tc := range []struct {
		entries int
		maxMiB  int
	}{
		{0, 64},
		{100_000, 160},
	} {
		t.Run(fmt.Sprintf("entries=%d", tc.entries), func(t *testing.T) {
			cmd := helper(t, "TestPeakRSSHelper", helperEnv+"=rss", "DOCKET_BADGER_DIR="+t.TempDir(),
				"DOCKET_BADGER_ENTRIES="+strconv.Itoa(tc.entries))
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			var before, peak int
			for line := range strings.Lines(string(out)) {
				if _, err := fmt.Sscanf(line, "rss before=%d peak=%d", &before, &peak); err == nil {
					break
				}
			}
			if peak == 0 {
				t.Fatalf("helper printed no measurement:\n%s", out)
			}
			t.Logf("%d entries: peak RSS %.1f MiB (process before Open: %.1f MiB)", tc.entries, float64(peak)/1024, float64(before)/1024)
			if peak > tc.maxMiB<<10 {
				t.Errorf("peak RSS %.1f MiB, want at most %d MiB", float64(peak)/1024, tc.maxMiB)
			}
		})
	}
}

func TestPeakRSSHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "rss" {
		t.Skip("helper process of TestPeakRSS")
	}
	n, _ := strconv.Atoi(os.Getenv("DOCKET_BADGER_ENTRIES"))
	before := vmHWM(t)
	s, err := badger.Open(os.Getenv("DOCKET_BADGER_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := g; i < n; i += writers {
				k := globalKey(i)
				if i%2 == 1 {
					k = workflowKey("exec_12345", i)
				}
				e := backends.Entry{Value: newUser(i), Created: time.Now(), Expires: time.Now().Add(time.Hour)}
				if err := s.Set(ctx, k, e, userCodec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := 0; i < n; i += 10 {
		k := globalKey(i)
		if i%2 == 1 {
			k = workflowKey("exec_12345", i)
		}
		if _, err := s.Get(ctx, k, userCodec); err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
	}
	peak := vmHWM(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("rss before=%d peak=%d\n", before, peak)
}

// vmHWM returns the process's peak resident set size in KiB.
func vmHWM(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
