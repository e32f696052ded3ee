package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestRun checks the run counts the example prints: one run per order, in
// sequence, under 100 concurrent callers, and after a restart.
func TestRun(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, t.TempDir()); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, buf.String())
	}
	out := buf.String()

	for _, want := range []string{
		"charge_card ran 1 time for A-1001\n",
		"charge_card ran 1 time for A-1002\n",
		"charge_card ran 1 time for A-1003; 100 callers got a receipt, 1 distinct: [ch_0003]\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q\noutput:\n%s", want, out)
		}
	}
	// One run, so one request to the payment API, per order; the key it
	// got is the step's Global key.
	if got := strings.Count(out, "charge_card runs: POST /charges"); got != 3 {
		t.Errorf("the step ran %d times in all, want 3\noutput:\n%s", got, out)
	}
	keys := regexp.MustCompile(`Idempotency-Key: (global/charge_card/[0-9a-f]{64})\n`).FindAllStringSubmatch(out, -1)
	if len(keys) != 3 || keys[0][1] == keys[1][1] || keys[1][1] == keys[2][1] || keys[0][1] == keys[2][1] {
		t.Errorf("want 3 distinct idempotency keys of the form global/charge_card/<sha256>, got %q", keys)
	}
	// Executions 2 and 3 of part 1 and all three of part 4 got stored
	// receipts.
	if got := strings.Count(out, "(stored result, the step did not run)"); got != 5 {
		t.Errorf("%d stored results served, want 5\noutput:\n%s", got, out)
	}
	summary := out[strings.Index(out, "=== Summary ==="):]
	for _, order := range []string{"A-1001", "A-1002", "A-1003"} {
		if !regexp.MustCompile(`\n  ` + order + ` +1 +1 +1\n`).MatchString(summary) {
			t.Errorf("summary: want %s with 1 run, 1 request, 1 charge\n%s", order, summary)
		}
	}
}

// TestRunReusedDir runs the example a second time on the same directory:
// every charge is then already in Badger, and the step never runs.
func TestRunReusedDir(t *testing.T) {
	dir := t.TempDir()
	var first, second bytes.Buffer
	if err := run(&first, dir); err != nil {
		t.Fatalf("first run: %v\noutput:\n%s", err, first.String())
	}
	if err := run(&second, dir); err != nil {
		t.Fatalf("second run: %v\noutput:\n%s", err, second.String())
	}
	if got := strings.Count(second.String(), "charge_card runs:"); got != 0 {
		t.Errorf("second run: the step ran %d times, want 0\noutput:\n%s", got, second.String())
	}
}
