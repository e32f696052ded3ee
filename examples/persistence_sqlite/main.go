// Command persistence_sqlite keeps Docket's results in a SQLite file, runs
// a small invoicing workflow in three executions, and then answers, with
// plain SQL on that file, the questions the sqlite3 shell answers in
// README.md: entries per step, the oldest checkpoint per execution, expired
// rows, and the trace that produced an entry. A second "process" then opens
// the file again and is served from it.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/sqlite"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
	"github.com/docket-go/docket/tracing"
)

func main() {
	path := flag.String("db", "", "SQLite file (default: docket.db in a temporary directory, removed at exit)")
	flag.Parse()
	if err := mainErr(*path); err != nil {
		fmt.Fprintln(os.Stderr, "persistence_sqlite:", err)
		os.Exit(1)
	}
}

func mainErr(path string) (err error) {
	if path == "" {
		dir, err := os.MkdirTemp("", "docket-sqlite-")
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
		path = filepath.Join(dir, "docket.db")
	}
	fmt.Printf("SQLite file: %s\n\n", path)
	return run(os.Stdout, path)
}

// Invoice is the input of the Workflow step convert_invoice.
type Invoice struct {
	ID     string
	Amount float64
}

// runs counts how often each step really ran.
var runs struct{ rate, convert, quote atomic.Int64 }

// app is one process: the store and the persisted steps.
type app struct {
	db      *sqlite.Store
	rate    middleware.Step[string, float64]
	convert middleware.Step[Invoice, float64]
	quote   middleware.Step[string, string]
}

func open(path string, tp *sdktrace.TracerProvider) (*app, error) {
	db, err := sqlite.Open(path)
	if err != nil {
		return nil, err
	}
	store := backends.Tiered(memory.New(1000), db)
	obs := middleware.WithObserver(tracing.New(tracing.WithTracerProvider(tp)))
	a := &app{db: db}
	a.rate = middleware.Wrap("fetch_rate", func(_ context.Context, pair string) (float64, error) {
		runs.rate.Add(1)
		return 1.0842, nil // a rate service would be asked here
	}, middleware.WithPersistence(store, scope.Global, 24*time.Hour), middleware.WithVersion("2"), obs)
	a.convert = middleware.Wrap("convert_invoice", func(ctx context.Context, inv Invoice) (float64, error) {
		runs.convert.Add(1)
		rate, err := a.rate(ctx, "EUR/USD")
		return inv.Amount * rate, err
	}, middleware.WithPersistence(store, scope.Workflow, time.Hour), obs)
	a.quote = middleware.Wrap("quote", func(_ context.Context, s string) (string, error) {
		runs.quote.Add(1)
		return "quote for " + s, nil
	}, middleware.WithPersistence(store, scope.Global, 50*time.Millisecond), obs)
	return a, nil
}

// execution converts n invoices in execution id and ends it with endErr:
// nil removes its checkpoints, an error keeps them for a resume.
func (a *app) execution(w io.Writer, id string, n int, endErr error) error {
	ctx, exec := scope.Begin(context.Background(), id)
	for i := range n {
		inv := Invoice{ID: fmt.Sprintf("INV-%d", 1001+i), Amount: float64(100 * (i + 1))}
		if _, err := a.convert(ctx, inv); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond) // distinct created_at per checkpoint
	}
	if err := exec.End(endErr); err != nil {
		return err
	}
	fmt.Fprintf(w, "  %s: %d invoices converted, ended with %v\n", id, n, endErr)
	return nil
}

func run(w io.Writer, path string) error {
	runs.rate.Store(0)
	runs.convert.Store(0)
	runs.quote.Store(0)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	fmt.Fprintln(w, "=== 1. First process: three executions")
	a, err := open(path, tp)
	if err != nil {
		return err
	}
	failed := errors.New("payment gateway down")
	for _, e := range []struct {
		id  string
		n   int
		end error
	}{{"exec_a", 3, failed}, {"exec_b", 2, nil}, {"exec_c", 2, failed}} {
		if err := a.execution(w, e.id, e.n, e.end); err != nil {
			return err
		}
	}
	if _, err := a.quote(context.Background(), "ACME"); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond) // the quote's 50 ms TTL passes
	if err := a.db.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "  step runs: fetch_rate %d, convert_invoice %d, quote %d\n\n",
		runs.rate.Load(), runs.convert.Load(), runs.quote.Load())

	if err := queries(w, path, spans); err != nil {
		return err
	}

	fmt.Fprintln(w, "=== 3. Second process: resume exec_a from the file")
	if a, err = open(path, tp); err != nil {
		return err
	}
	before := runs.convert.Load()
	if err := a.execution(w, "exec_a", 3, nil); err != nil {
		return err
	}
	fmt.Fprintf(w, "  convert_invoice ran %d times (its 3 checkpoints were served from SQLite)\n", runs.convert.Load()-before)
	return a.db.Close()
}

// queries runs the README's queries on the file, as the sqlite3 shell would.
func queries(w io.Writer, path string, spans *tracetest.SpanRecorder) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []struct{ title, sql string }{
		{"Entries per step", `SELECT step, scope, count(*) FROM docket_entries GROUP BY step, scope ORDER BY step`},
		{"Oldest checkpoint per execution", `SELECT execution_id, count(*), strftime('%H:%M:%f', min(created_at) / 1000.0, 'unixepoch')
			FROM docket_entries WHERE scope = 'workflow' GROUP BY execution_id ORDER BY execution_id`},
		{"Expired rows, not yet swept", `SELECT step, count(*) FROM docket_entries
			WHERE expires_at <= (julianday('now') - 2440587.5) * 86400000 GROUP BY step`},
		{"The trace that produced an entry", `SELECT step, trace_id, span_id FROM docket_entries WHERE step = 'fetch_rate'`},
	} {
		fmt.Fprintf(w, "=== 2. %s\n", q.title)
		rows, err := db.Query(q.sql)
		if err != nil {
			return fmt.Errorf("%s: %w", q.title, err)
		}
		var traceID, spanID string
		for rows.Next() {
			cols := []any{new(sql.NullString), new(sql.NullString), new(sql.NullString)}
			n, _ := rows.Columns()
			if err := rows.Scan(cols[:len(n)]...); err != nil {
				rows.Close()
				return err
			}
			var out []string
			for _, c := range cols[:len(n)] {
				out = append(out, c.(*sql.NullString).String)
			}
			fmt.Fprintf(w, "  %s\n", strings.Join(out, " | "))
			if strings.HasPrefix(q.title, "The trace") {
				traceID, spanID = out[1], out[2]
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if traceID != "" {
			for _, s := range spans.Ended() {
				if s.SpanContext().TraceID().String() == traceID && s.SpanContext().SpanID().String() == spanID {
					fmt.Fprintf(w, "  the span that ran it: %q, in the trace of %q\n", s.Name(), root(spans, s).Name())
					break
				}
			}
		}
	}
	fmt.Fprintln(w)
	return nil
}

// root returns the first span of s's trace.
func root(spans *tracetest.SpanRecorder, s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	for s.Parent().IsValid() {
		parent := s
		for _, p := range spans.Ended() {
			if p.SpanContext().SpanID() == s.Parent().SpanID() {
				parent = p
			}
		}
		if parent == s {
			break
		}
		s = parent
	}
	return s
}
