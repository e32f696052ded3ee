package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// golden is a verbatim copy of the "Expected Output" and "Comparison Table"
// sections of the specification this example was written from. The
// specification lives outside the repository, so the test keeps its own copy.
const golden = "testdata/expected.txt"

// specBlocks returns the lines of the fenced code blocks of the markdown
// text md, grouped by the "## " section they appear in.
func specBlocks(t *testing.T, md string) map[string][][]string {
	t.Helper()
	blocks := map[string][][]string{}
	section := ""
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			if in {
				blocks[section] = append(blocks[section], cur)
				cur = nil
			}
			in = !in
		case in:
			cur = append(cur, line)
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	if in {
		t.Fatalf("%s: unterminated code block in section %q", golden, section)
	}
	return blocks
}

func readGolden(t *testing.T) (expected [][]string, table []string) {
	t.Helper()
	md, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	blocks := specBlocks(t, string(md))
	expected = blocks["Expected Output"]
	if len(expected) != 2 {
		t.Fatalf("%s: found %d Expected Output blocks, want 2 (Part 1 and Part 2)", golden, len(expected))
	}
	if tb := blocks["Comparison Table"]; len(tb) != 1 || len(tb[0]) == 0 {
		t.Fatalf("%s: want one non-empty Comparison Table block, found %d", golden, len(tb))
	} else {
		table = tb[0]
	}
	return expected, table
}

// deviations are the lines of the specification's comparison table that the
// program prints differently, each with the lines it prints instead. The
// specification's "step_name only" for Global contradicts its own "Key
// Differences" section (and Docket's keys): both scopes key on the step
// name, its version and the input's hash, and Workflow on the execution ID
// as well.
var deviations = map[string][]string{
	"│ Cache key includes  │ execution_id     │ step_name only   │": {
		"│ Cache key includes  │ execution_id,    │ step_name,       │",
		"│                     │ step_name,       │ version and      │",
		"│                     │ version and      │ input hash       │",
		"│                     │ input hash       │                  │",
	},
}

// applyDeviations returns the table with each deviating line replaced; it
// fails if a deviation no longer matches a line of the specification.
func applyDeviations(table []string) []string {
	var out []string
	used := 0
	for _, line := range table {
		if repl, ok := deviations[line]; ok {
			out = append(out, repl...)
			used++
			continue
		}
		out = append(out, line)
	}
	if used != len(deviations) {
		panic("a deviation matches no line of the specification's table")
	}
	return out
}

// TestOutputMatchesSpec checks that every line of both expected blocks
// appears in the program's output, in order (headers may come between),
// and that the output ends with the comparison table.
func TestOutputMatchesSpec(t *testing.T) {
	expected, table := readGolden(t)

	var buf bytes.Buffer
	if err := run(&buf); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, buf.String())
	}
	out := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")

	i := 0
	for b, block := range expected {
		for _, want := range block {
			for i < len(out) && out[i] != want {
				i++
			}
			if i == len(out) {
				t.Fatalf("expected block %d: line %q missing (or out of order)\noutput:\n%s", b+1, want, buf.String())
			}
			i++
		}
	}

	table = applyDeviations(table)
	if len(out) < len(table) {
		t.Fatalf("output has %d lines, fewer than the table's %d", len(out), len(table))
	}
	tail := out[len(out)-len(table):]
	for j := range table {
		if tail[j] != table[j] {
			t.Errorf("table line %d:\n got %q\nwant %q", j+1, tail[j], table[j])
		}
	}
}

// TestRunIsRepeatable checks that run keeps no state between calls: each run
// has its own store, so a second run prints the same.
func TestRunIsRepeatable(t *testing.T) {
	var first, second bytes.Buffer
	if err := run(&first); err != nil {
		t.Fatal(err)
	}
	if err := run(&second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("second run differs:\nfirst:\n%s\nsecond:\n%s", first.String(), second.String())
	}
}
