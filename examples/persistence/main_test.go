package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestRun checks what the example is about: which tier answers each call,
// and which tiers hold each key after each phase.
func TestRun(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, t.TempDir()); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, buf.String())
	}
	out := buf.String()

	// Lines in the order they must appear; spaces collapse, so that column
	// widths may change.
	want := []string{
		"=== 1. First process",
		"fetch_rate(EUR/USD) = 1.0842 step ran",
		"convert_invoice(INV-1001) in exec_persist_1 = 271.05 USD step ran",
		"fetch_rate(EUR/USD) = 1.0842 from memory, step did not run",
		"convert_invoice(INV-1001) in exec_persist_1 = 271.05 USD from memory, step did not run",
		"fetch_rate(EUR/USD) (Global) yes yes",
		"convert_invoice(INV-1001) in exec_persist_1 (Workflow) yes yes",
		"memory.Len() = 2",

		"=== 2. Second process",
		"memory.Len() = 0",
		"fetch_rate(EUR/USD) = 1.0842 from badger, step did not run",
		"convert_invoice(INV-1001) in exec_persist_1 = 271.05 USD from badger, step did not run",
		"fetch_rate(EUR/USD) (Global) yes yes",
		"convert_invoice(INV-1001) in exec_persist_1 (Workflow) yes yes",
		"memory.Len() = 2",
		"End(nil)",
		"fetch_rate(EUR/USD) (Global) yes yes",
		"convert_invoice(INV-1001) in exec_persist_1 (Workflow) no no",
		"memory.Len() = 1",

		"=== 3. Third process",
		"fetch_rate(EUR/USD) = 1.0842 from badger, step did not run",
		"convert_invoice(INV-1001) in exec_persist_1 = 271.05 USD step ran",

		"fetch_rate 1 ",
		"convert_invoice 2 ",
	}
	lines := normalize(out)
	i := 0
	for _, w := range want {
		for i < len(lines) && !strings.Contains(lines[i], w) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("line containing %q missing or out of order\noutput:\n%s", w, out)
		}
		i++
	}
}

// TestRunReusedDir runs the example twice on one directory: the second time
// the Global result is already in Badger when the first process starts, and
// the Workflow one is not (the first run ended its execution with End(nil)).
func TestRunReusedDir(t *testing.T) {
	dir := t.TempDir()
	var first, second bytes.Buffer
	if err := run(&first, dir); err != nil {
		t.Fatalf("first run: %v\noutput:\n%s", err, first.String())
	}
	if err := run(&second, dir); err != nil {
		t.Fatalf("second run: %v\noutput:\n%s", err, second.String())
	}
	out := strings.Join(normalize(second.String()), "\n")
	for _, w := range []string{
		"fetch_rate(EUR/USD) = 1.0842 from badger, step did not run\nconvert_invoice(INV-1001) in exec_persist_1 = 271.05 USD step ran\nagain",
		"fetch_rate 0 ",
		"convert_invoice 2 ",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("second run: missing %q\noutput:\n%s", w, second.String())
		}
	}
}

var spaces = regexp.MustCompile(`\s+`)

// normalize collapses runs of spaces, so that column widths may change.
func normalize(out string) []string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(spaces.ReplaceAllString(l, " "))
	}
	return lines
}
