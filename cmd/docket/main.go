package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/scope"
)

const usage = `usage: docket <command> [flags] STORE

STORE is a Badger directory, a SQLite file (a path or sqlite:///path), or a
Redis URL (redis://host:port/db).

commands:
  ls     list entries: step, scope, execution, version, age, TTL left,
         size, stored failure's code, producing trace ID and key
  stats  count entries, bytes, expired entries and stored failures per
         step and scope
  get    show one entry by its key (as ls prints it), its value as JSON
         where the codec allows, otherwise as hex, or its stored failure
  purge  delete the entries of one step (and version), of one execution,
         the expired ones, or the stored failures

Run docket <command> -h for its flags.
`

// env is what a run of the command sees of its process, so tests can run
// it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// stderrTTY says whether stderr is a terminal (the progress bar).
	stderrTTY bool
	// getenv reads the environment (DOCKET_NOW).
	getenv func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stderrTTY: isTerminal(os.Stderr), getenv: os.Getenv}
	os.Exit(run(ctx, os.Args[1:], e))
}

// errUsage is a mistake in the command line; its text has been printed.
var errUsage = errors.New("usage")

// run runs the command line args and returns the exit status: 0, 1 for a
// failure or a declined purge, 2 for a bad command line.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "ls":
		err = cmdList(ctx, args, e)
	case "stats":
		err = cmdStats(ctx, args, e)
	case "get":
		err = cmdGet(ctx, args, e)
	case "purge":
		err = cmdPurge(ctx, args, e)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return 0
	default:
		fmt.Fprintf(e.stderr, "docket: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errDeclined):
		fmt.Fprintln(e.stderr, "docket: nothing removed")
		return 1
	default:
		fmt.Fprintf(e.stderr, "docket: %v\n", strings.TrimPrefix(err.Error(), "docket: "))
		return 1
	}
}

// common are the flags every command has.
type common struct {
	json   bool
	prefix string
	now    string
	bar    string
}

func newFlags(name, args string, e env) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	c := &common{}
	fs.BoolVar(&c.json, "json", false, "print JSON, for scripts")
	fs.StringVar(&c.prefix, "prefix", "", "key prefix of a Redis store (redis.WithPrefix); default the library's")
	fs.StringVar(&c.now, "now", "", "judge ages and expiry at this RFC 3339 time instead of the clock (also $DOCKET_NOW)")
	fs.StringVar(&c.bar, "progress", "auto", "progress bar on stderr: auto (when it is a terminal), always, never")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: docket %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs, c
}

// parse parses args, flags before or after the positional arguments, and
// returns the positional ones, which must be as many as names, the names
// the usage gives them.
func parse(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) > len(names):
		extra := pos[len(names):]
		quoted := make([]string, len(extra))
		for i, a := range extra {
			quoted[i] = strconv.Quote(a)
		}
		noun := "argument"
		if len(extra) > 1 {
			noun += "s"
		}
		fmt.Fprintf(fs.Output(), "docket %s: unexpected %s %s\n", fs.Name(), noun, strings.Join(quoted, " "))
	case len(pos) < len(names):
		fmt.Fprintf(fs.Output(), "docket %s: missing %s\n", fs.Name(), strings.Join(names[len(pos):], " "))
	default:
		return pos, nil
	}
	fs.Usage()
	return nil, errUsage
}

// clock returns the time ages and expiry are judged at.
func (c *common) clock(e env) (time.Time, error) {
	s := c.now
	if s == "" {
		s = e.getenv("DOCKET_NOW")
	}
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-now / DOCKET_NOW: %w", err)
	}
	return t, nil
}

// showBar says whether scans draw a progress bar.
func (c *common) showBar(e env) bool {
	switch c.bar {
	case "always":
		return true
	case "never":
		return false
	}
	return e.stderrTTY && !c.json
}

// filterFlags are the flags that select entries.
type filterFlags struct {
	step, version, scope, execution string
	hasVersion                      bool
	expired                         bool
	// failures selects stored failures, which backends.Filter cannot
	// express: the command filters them itself (see listFailures).
	failures bool
}

func (f *filterFlags) register(fs *flag.FlagSet, withScope bool) {
	fs.StringVar(&f.step, "step", "", "only entries of this step")
	fs.Func("version", "only entries of this step version (\"\" for unversioned)", func(v string) error {
		f.version, f.hasVersion = v, true
		return nil
	})
	if withScope {
		fs.StringVar(&f.scope, "scope", "", "only entries of this scope: global or workflow")
	}
	fs.StringVar(&f.execution, "execution", "", "only the Workflow entries of this execution")
	fs.BoolVar(&f.expired, "expired", false, "only entries whose TTL has passed")
	fs.BoolVar(&f.failures, "failures", false, "only stored failures (middleware.WithErrorCaching)")
}

func (f *filterFlags) filter(now time.Time) (backends.Filter, error) {
	bf := backends.Filter{
		Step:       f.step,
		Version:    f.version,
		HasVersion: f.hasVersion,
		Execution:  f.execution,
		Expired:    f.expired,
		Now:        now,
	}
	switch f.scope {
	case "":
	case scope.Global.String():
		bf.Scope = scope.Global
	case scope.Workflow.String():
		bf.Scope = scope.Workflow
	default:
		return bf, fmt.Errorf("-scope %q: want global or workflow", f.scope)
	}
	return bf, nil
}

// errDeclined means the user did not confirm a purge.
var errDeclined = errors.New("declined")

// confirm asks question on stderr and reads the answer from stdin.
func confirm(e env, question string) error {
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errDeclined
}
