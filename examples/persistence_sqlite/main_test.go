package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRun checks what the example is about: the rows each query finds, the
// trace an entry points at, and the resume served from the file.
func TestRun(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, filepath.Join(t.TempDir(), "docket.db")); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, buf.String())
	}
	out := buf.String()
	want := []string{
		"exec_a: 3 invoices converted, ended with payment gateway down",
		"exec_b: 2 invoices converted, ended with <nil>",
		"exec_c: 2 invoices converted, ended with payment gateway down",
		"step runs: fetch_rate 1, convert_invoice 7, quote 1",
		"=== 2. Entries per step",
		"convert_invoice | workflow | 5", // exec_b's two were removed by End(nil)
		"fetch_rate | global | 1",
		"quote | global | 1",
		"=== 2. Oldest checkpoint per execution",
		"exec_a | 3 | ",
		"exec_c | 2 | ",
		"=== 2. Expired rows, not yet swept",
		"quote | 1",
		"=== 2. The trace that produced an entry",
		"fetch_rate | ",
		`the span that ran it: "fetch_rate", in the trace of "convert_invoice"`,
		"=== 3. Second process",
		"exec_a: 3 invoices converted, ended with <nil>",
		"convert_invoice ran 0 times",
	}
	i := 0
	lines := strings.Split(out, "\n")
	for _, w := range want {
		for i < len(lines) && !strings.Contains(lines[i], w) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("line containing %q missing or out of order\noutput:\n%s", w, out)
		}
		i++
	}
	if !regexp.MustCompile(`fetch_rate \| [0-9a-f]{32} \| [0-9a-f]{16}`).MatchString(out) {
		t.Errorf("no trace and span ID in the fetch_rate row\noutput:\n%s", out)
	}
}
