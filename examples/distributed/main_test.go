package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/docket-go/docket/internal/redistest"
)

// TestMain makes the test binary serve as the workers too: run re-executes
// os.Executable(), which under go test is this binary, with workerEnv set.
func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(workerEnv); ok {
		os.Exit(workerMain(mode))
	}
	os.Exit(m.Run())
}

// TestRun runs the demo with 3 workers and 10 keys. run itself fails unless
// each key ran once in all and the takeover's token is greater; the test
// checks the output says so.
func TestRun(t *testing.T) {
	if _, err := exec.LookPath(redistest.Binary); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("skipping: %v", redistest.ErrNotInstalled)
	}
	t.Setenv("REDIS_URL", "")
	var buf bytes.Buffer
	if err := run(&buf, 3, 10); err != nil {
		if errors.Is(err, redistest.ErrNotInstalled) {
			t.Fatal(err)
		}
		t.Fatalf("run: %v\noutput:\n%s", err, buf.String())
	}
	out := buf.String()
	for _, re := range []string{
		`(?m)^  worker 1 \(pid \d+\): ran the step for \d+ keys, got all 10 results$`,
		`(?m)^  total: 10 runs for 10 keys$`,
		`every caller in every worker got the same result per key`,
		`(?m)^  worker A \(pid \d+\): step for "quarterly-report" started, fencing token \d+$`,
		`(?m)^  worker A: killed with SIGKILL mid-step \(signal: killed\)$`,
		`(?m)^  worker B \(pid \d+\): took the key over and ran its step, fencing token \d+, .* after the kill$`,
		`(?m)^  worker B: result "quarterly-report by pid \d+"$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s\noutput:\n%s", re, out)
		}
	}
}
