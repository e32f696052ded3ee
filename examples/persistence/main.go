// Command persistence sets up Docket's tiered store — an in-memory LRU in
// front of a Badger database on disk — and shows, call by call, which tier
// holds each result and which tier answers, across two simulated restarts.
// See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func main() {
	dir := flag.String("dir", "", "Badger directory (default: a fresh temporary directory, removed at exit)")
	flag.Parse()
	if err := mainErr(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "persistence:", err)
		os.Exit(1)
	}
}

func mainErr(dir string) (err error) {
	if dir == "" {
		if dir, err = os.MkdirTemp("", "docket-persistence-"); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
		fmt.Printf("Badger directory: %s (temporary, removed at exit)\n\n", dir)
	} else {
		fmt.Printf("Badger directory: %s\n\n", dir)
	}
	return run(os.Stdout, dir)
}

// Pair is the input of the Global step fetch_rate.
type Pair struct {
	From, To string
}

func (p Pair) String() string { return p.From + "/" + p.To }

// Rate is what fetch_rate returns.
type Rate struct {
	Pair  Pair
	Value float64
}

// Invoice is an invoice to convert into another currency.
type Invoice struct {
	ID       string
	Amount   float64
	Currency string
}

// Conversion is the input of the Workflow step convert_invoice.
type Conversion struct {
	Invoice Invoice
	Rate    Rate
}

// Converted is what convert_invoice returns.
type Converted struct {
	InvoiceID string
	Amount    float64
	Currency  string
}

// execID is the execution the Workflow step runs in. Using the same ID after
// a restart resumes the execution: its stored results are served again.
const execID = "exec_persist_1"

// runs counts how often each step really ran, over all "processes".
type runs struct {
	fetchRate, convertInvoice atomic.Int64
}

// run opens the store in dir three times over, as three processes one after
// the other would, and prints what each call did and where its result lives.
// It returns an error if a call fails or a step runs where the stored result
// must have been served.
func run(w io.Writer, dir string) error {
	var n runs
	if err := firstRun(w, dir, &n); err != nil {
		return err
	}
	if err := secondRun(w, dir, &n); err != nil {
		return err
	}
	if err := thirdRun(w, dir, &n); err != nil {
		return err
	}
	fmt.Fprintln(w, "=== Step runs over all three ===")
	fmt.Fprintf(w, "  fetch_rate       %d  (Global: one run serves every execution and every restart)\n", n.fetchRate.Load())
	fmt.Fprintf(w, "  convert_invoice  %d  (Workflow: once in %s, once more after End(nil) removed its result)\n", n.convertInvoice.Load(), execID)
	return nil
}

// session is one "process": a Badger store opened on dir behind a new,
// empty memory tier, and the two steps persisted in it.
type session struct {
	w     io.Writer
	n     *runs
	front *memory.Store
	db    *badger.Store
	store *backends.TieredStore

	// The steps over the tiered store, as an application has them, and
	// over each tier alone, for Peek to ask one tier what it holds: a key
	// does not depend on the store, and a single tier copies nothing into
	// another, so looking changes nothing.
	tiered, inMemory, inBadger stepSet
}

// stepSet is the two persisted steps over one store.
type stepSet struct {
	fetchRate      *middleware.Persisted[Pair, Rate]
	convertInvoice *middleware.Persisted[Conversion, Converted]
}

func open(w io.Writer, dir string, n *runs) (*session, error) {
	db, err := badger.Open(dir)
	if err != nil {
		return nil, err
	}
	s := &session{w: w, n: n, front: memory.New(10_000), db: db}
	s.store = backends.Tiered(s.front, db)
	fetchRate := func(ctx context.Context, p Pair) (Rate, error) {
		n.fetchRate.Add(1)
		return Rate{Pair: p, Value: eurUSD}, nil // a rate service would be asked here
	}
	convertInvoice := func(ctx context.Context, c Conversion) (Converted, error) {
		n.convertInvoice.Add(1)
		return Converted{
			InvoiceID: c.Invoice.ID,
			Amount:    c.Invoice.Amount * c.Rate.Value,
			Currency:  c.Rate.Pair.To,
		}, nil
	}
	steps := func(store backends.Store) stepSet {
		return stepSet{
			fetchRate:      middleware.New("fetch_rate", fetchRate, middleware.WithPersistence(store, scope.Global, 24*time.Hour)),
			convertInvoice: middleware.New("convert_invoice", convertInvoice, middleware.WithPersistence(store, scope.Workflow, time.Hour)),
		}
	}
	s.tiered, s.inMemory, s.inBadger = steps(s.store), steps(s.front), steps(db)
	return s, nil
}

func (s *session) close() error { return s.db.Close() }

// eurUSD is the rate fetch_rate answers with.
const eurUSD = 1.0842

var (
	pair    = Pair{From: "EUR", To: "USD"}
	invoice = Invoice{ID: "INV-1001", Amount: 250, Currency: "EUR"}
)

// pipeline fetches the rate and converts the invoice with it, and prints for
// each call who answered: the step itself, the memory tier or Badger.
func (s *session) pipeline(ctx context.Context) error {
	var rate Rate
	h, err := holds(ctx, s.inMemory.fetchRate, s.inBadger.fetchRate, pair)
	if err == nil {
		err = s.call("fetch_rate("+pair.String()+")", h, &s.n.fetchRate, func() (string, error) {
			var err error
			rate, err = s.tiered.fetchRate.Call(ctx, pair)
			return fmt.Sprintf("%.4f", rate.Value), err
		})
	}
	if err != nil {
		return err
	}
	conv := Conversion{Invoice: invoice, Rate: rate}
	if h, err = holds(ctx, s.inMemory.convertInvoice, s.inBadger.convertInvoice, conv); err != nil {
		return err
	}
	return s.call("convert_invoice("+invoice.ID+") in "+execID, h, &s.n.convertInvoice, func() (string, error) {
		c, err := s.tiered.convertInvoice.Call(ctx, conv)
		return fmt.Sprintf("%.2f %s", c.Amount, c.Currency), err
	})
}

// holding says which tiers hold an entry.
type holding struct{ memory, badger bool }

// holds peeks into the memory tier and into Badger, through the step's
// handles over each, for what they hold for in.
func holds[In, Out any](ctx context.Context, memory, badger *middleware.Persisted[In, Out], in In) (holding, error) {
	_, inMemory, err1 := memory.Peek(ctx, in)
	_, inBadger, err2 := badger.Peek(ctx, in)
	return holding{inMemory, inBadger}, errors.Join(err1, err2)
}

// call makes one call and prints its result and who answered. Tiered reads
// the memory tier first, so a result the memory tier held before the call
// came from there, one only Badger held from Badger; with neither, the step
// ran. It fails if the step's run counter says otherwise.
func (s *session) call(what string, h holding, ran *atomic.Int64, f func() (string, error)) error {
	runsBefore := ran.Load()
	result, err := f()
	if err != nil {
		return err
	}
	source := "step ran"
	switch {
	case h.memory:
		source = "from memory, step did not run"
	case h.badger:
		source = "from badger, step did not run"
	}
	if stepRan := ran.Load() != runsBefore; stepRan == (h.memory || h.badger) {
		return fmt.Errorf("%s: the tiers held %+v before the call, yet the step ran: %v", what, h, stepRan)
	}
	fmt.Fprintf(s.w, "  %-45s = %-12s %s\n", what, result, source)
	return nil
}

// where prints whether each tier holds an entry for each call of the
// pipeline, by peeking into each tier alone. It looks in an execution of
// its own with the same ID, so that it can look after End(nil) too, and
// ends it with an error, which keeps what is stored.
func (s *session) where() (err error) {
	ctx, exec := scope.Begin(context.Background(), execID)
	defer func() { err = errors.Join(err, exec.End(errLooking)) }()
	rate, err := holds(ctx, s.inMemory.fetchRate, s.inBadger.fetchRate, pair)
	if err != nil {
		return err
	}
	conv, err := holds(ctx, s.inMemory.convertInvoice, s.inBadger.convertInvoice,
		Conversion{Invoice: invoice, Rate: Rate{Pair: pair, Value: eurUSD}})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.w, "  %-56s %-7s %s\n", "entry", "memory", "badger")
	for _, row := range []struct {
		what string
		h    holding
	}{
		{"fetch_rate(" + pair.String() + ") (Global)", rate},
		{"convert_invoice(" + invoice.ID + ") in " + execID + " (Workflow)", conv},
	} {
		fmt.Fprintf(s.w, "  %-56s %-7s %s\n", row.what, yesNo(row.h.memory), yesNo(row.h.badger))
	}
	fmt.Fprintf(s.w, "  memory.Len() = %d\n", s.front.Len())
	return nil
}

var errLooking = errors.New("only looking")

func firstRun(w io.Writer, dir string, n *runs) error {
	fmt.Fprintln(w, "=== 1. First process: open the tiered store, run a Global and a Workflow step ===")
	s, err := open(w, dir, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  store %s: front tier memory (at most 10,000 entries), back tier badger\n", s.store.Name())
	ctx, _ := scope.Begin(context.Background(), execID)
	err = s.pipeline(ctx)
	if err == nil {
		fmt.Fprintln(w, "  again, in the same process:")
		err = s.pipeline(ctx)
	}
	if err == nil {
		fmt.Fprintln(w, "  every result is written to both tiers, Badger first:")
		err = s.where()
	}
	// The execution is not ended: this process stops midway, and its
	// Workflow results stay in Badger for a re-run with the same ID.
	fmt.Fprintf(w, "  closing Badger; %s has not ended\n\n", execID)
	return errors.Join(err, s.close())
}

func secondRun(w io.Writer, dir string, n *runs) error {
	fmt.Fprintln(w, "=== 2. Second process: reopen Badger behind a new, empty memory tier ===")
	s, err := open(w, dir, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  memory.Len() = %d\n", s.front.Len())
	before := snapshot(n)
	ctx, exec := scope.Begin(context.Background(), execID) // the same ID: a resume
	err = s.pipeline(ctx)
	if err == nil {
		fmt.Fprintln(w, "  a Badger hit is copied into the memory tier:")
		err = s.where()
	}
	if err == nil && snapshot(n) != before {
		err = errors.New("a step ran although Badger held its result")
	}
	if err == nil {
		fmt.Fprintf(w, "  %s: End(nil) removes its Workflow entries from both tiers, Global ones stay:\n", execID)
		if err = exec.End(nil); err == nil {
			err = s.where()
		}
	}
	fmt.Fprintln(w)
	return errors.Join(err, s.close())
}

func thirdRun(w io.Writer, dir string, n *runs) error {
	fmt.Fprintln(w, "=== 3. Third process: reopen once more ===")
	s, err := open(w, dir, n)
	if err != nil {
		return err
	}
	before := snapshot(n)
	ctx, exec := scope.Begin(context.Background(), execID)
	err = s.pipeline(ctx)
	if err == nil {
		err = exec.End(nil)
	}
	if err == nil {
		if snapshot(n) != [2]int64{before[0], before[1] + 1} {
			err = errors.New("want fetch_rate served from Badger and convert_invoice run again")
		} else {
			fmt.Fprintf(w, "  the Global result outlived End(nil); the Workflow step ran again, as its result was gone\n")
			fmt.Fprintf(w, "  %s: End(nil) again, so the directory is left with the Global entry only\n", execID)
		}
	}
	fmt.Fprintln(w)
	return errors.Join(err, s.close())
}

func snapshot(n *runs) [2]int64 { return [2]int64{n.fetchRate.Load(), n.convertInvoice.Load()} }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
