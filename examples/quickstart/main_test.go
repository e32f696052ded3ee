package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs the program itself when the test binary is re-executed by
// TestOutput.
func TestMain(m *testing.M) {
	if os.Getenv("DOCKET_QUICKSTART_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestOutput runs the program in a process of its own and checks what it
// prints against the README.
func TestOutput(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DOCKET_QUICKSTART_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), "<!-- output -->\n```text\n")
	want, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no output block")
	}
	if string(out) != want {
		t.Errorf("the program printed:\n%s\nREADME shows:\n%s", out, want)
	}
	if runs := strings.Count(string(out), "forecast runs"); runs != 1 {
		t.Errorf("the Global step ran %d times, want once for both executions", runs)
	}
	if runs := strings.Count(string(out), "plan runs"); runs != 2 {
		t.Errorf("the Workflow step ran %d times, want once per execution", runs)
	}
}

// TestShort keeps the quickstart a quick read.
func TestShort(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(src, []byte("\n")); n > 60 {
		t.Fatalf("main.go has %d lines, more than 60", n)
	}
}
