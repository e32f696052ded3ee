package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMain makes the test binary serve as the child too: run re-executes
// os.Executable(), which under go test is this binary, with childEnv set.
func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

// TestRun crashes a real child process and resumes in another. run itself
// fails if the counts in runs.log or the checkpoints in Badger are not those
// of a correct resume; the test checks the output says so too.
func TestRun(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, t.TempDir()); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, buf.String())
	}
	out := buf.String()

	pid := `\[child pid (\d+)\] `
	for _, re := range []string{
		// First child: step 1 runs, step 2 starts, SIGKILL.
		`(?s)=== 1\. First child.*?` + pid + `step 1 extract: ran: 3 orders` +
			`.*?` + pid + `step 2 transform: started; the process now kills itself with SIGKILL\n` +
			`  parent: child exited: signal: killed\n`,
		`\n    1 extract +1 +1\n    2 transform +1 +0\n    3 load +0 +0\n` +
			`  parent: checkpoints of exec_crash_demo in Badger: step 1 extract \(in badger, expires in 1h0m0s\)\n`,
		// Second child: step 1 restored, steps 2 and 3 run, End(nil).
		`(?s)=== 2\. Second child.*?` +
			pid + `step 1 extract: restored from its checkpoint in Badger, did not run \(result of pid (\d+)\): 3 orders.*?` +
			pid + `step 2 transform: ran: 3 orders, 184\.99 EUR\n.*?` +
			pid + `step 3 load: ran: 1 row into daily_totals\n.*?` +
			pid + `End\(nil\)`,
		`\n    1 extract +1 +1\n    2 transform +2 +1\n    3 load +1 +1\n`,
		`parent: checkpoints of exec_crash_demo in Badger: none\n`,
		`finds 0 entries to remove\n`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s\noutput:\n%s", re, out)
		}
	}

	// Step 1's restored result was produced by the killed process, not by
	// the one that resumed.
	pids := regexp.MustCompile(`\[child pid (\d+)\] step 1 extract: (?:ran|.*result of pid (\d+))`).FindAllStringSubmatch(out, -1)
	if len(pids) != 2 {
		t.Fatalf("want two step 1 lines, got %q", pids)
	}
	first, resumer, producer := pids[0][1], pids[1][1], pids[1][2]
	if producer != first || resumer == first {
		t.Errorf("step 1 in pid %s restored a result of pid %s, want one of the killed pid %s", resumer, producer, first)
	}
}

// TestRunReusedDir runs the demonstration twice in one directory: the first
// run leaves no checkpoints behind and the second starts with an empty
// runs.log, so it goes exactly like the first.
func TestRunReusedDir(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		var buf bytes.Buffer
		if err := run(&buf, dir); err != nil {
			t.Fatalf("run %d: %v\noutput:\n%s", i+1, err, buf.String())
		}
		if strings.Contains(buf.String(), "left by an earlier run") {
			t.Errorf("run %d found leftovers\noutput:\n%s", i+1, buf.String())
		}
	}
}
