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
	"sync"
	"sync/atomic"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
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
	back  *watchedTier
	store *backends.TieredStore

	fetchRate      middleware.Step[Pair, Rate]
	convertInvoice middleware.Step[Conversion, Converted]
}

func open(w io.Writer, dir string, n *runs) (*session, error) {
	db, err := badger.Open(dir)
	if err != nil {
		return nil, err
	}
	s := &session{w: w, n: n, front: memory.New(10_000), db: db}
	// The setup is backends.Tiered(memory.New(10_000), db); the back tier
	// is wrapped only so that this program can report on it.
	s.back = watch(db)
	s.store = backends.Tiered(s.front, s.back)

	s.fetchRate = middleware.Wrap("fetch_rate",
		func(ctx context.Context, p Pair) (Rate, error) {
			n.fetchRate.Add(1)
			return Rate{Pair: p, Value: 1.0842}, nil // a rate service would be asked here
		},
		middleware.WithPersistence(s.store, scope.Global, 24*time.Hour))
	s.convertInvoice = middleware.Wrap("convert_invoice",
		func(ctx context.Context, c Conversion) (Converted, error) {
			n.convertInvoice.Add(1)
			return Converted{
				InvoiceID: c.Invoice.ID,
				Amount:    c.Invoice.Amount * c.Rate.Value,
				Currency:  c.Rate.Pair.To,
			}, nil
		},
		middleware.WithPersistence(s.store, scope.Workflow, time.Hour))
	return s, nil
}

func (s *session) close() error { return s.db.Close() }

// pipeline fetches the rate and converts the invoice with it, and prints for
// each call who answered: the step itself, the memory tier or Badger.
func (s *session) pipeline(ctx context.Context) error {
	pair := Pair{From: "EUR", To: "USD"}
	var rate Rate
	err := s.call("fetch_rate("+pair.String()+")", &s.n.fetchRate, func() (string, error) {
		var err error
		rate, err = s.fetchRate(ctx, pair)
		return fmt.Sprintf("%.4f", rate.Value), err
	})
	if err != nil {
		return err
	}
	inv := Invoice{ID: "INV-1001", Amount: 250, Currency: "EUR"}
	return s.call("convert_invoice("+inv.ID+") in "+execID, &s.n.convertInvoice, func() (string, error) {
		c, err := s.convertInvoice(ctx, Conversion{Invoice: inv, Rate: rate})
		return fmt.Sprintf("%.2f %s", c.Amount, c.Currency), err
	})
}

// call makes one call and prints its result and where it came from. A call
// that left the step's run counter alone was served from the store: from
// Badger if Badger had a hit meanwhile, otherwise from the memory tier (the
// middleware asks the back tier only after a front miss).
func (s *session) call(what string, ran *atomic.Int64, f func() (string, error)) error {
	runsBefore, hitsBefore := ran.Load(), s.back.hits.Load()
	result, err := f()
	if err != nil {
		return err
	}
	source := "step ran"
	switch {
	case ran.Load() != runsBefore:
	case s.back.hits.Load() != hitsBefore:
		source = "from badger, step did not run"
	default:
		source = "from memory, step did not run"
	}
	fmt.Fprintf(s.w, "  %-45s = %-12s %s\n", what, result, source)
	return nil
}

// where prints, for every key this session has seen, whether each tier holds
// an entry for it, by asking the tiers directly.
func (s *session) where(ctx context.Context) error {
	fmt.Fprintf(s.w, "  %-56s %-7s %s\n", "key", "memory", "badger")
	for _, k := range s.back.seen() {
		_, ferr := s.front.Get(ctx, k.key, k.codec)
		_, berr := s.db.Get(ctx, k.key, k.codec)
		for _, err := range []error{ferr, berr} {
			if err != nil && !errors.Is(err, backends.ErrNotFound) {
				return err
			}
		}
		fmt.Fprintf(s.w, "  %-56s %-7s %s\n", short(k.key), yesNo(ferr == nil), yesNo(berr == nil))
	}
	fmt.Fprintf(s.w, "  memory.Len() = %d\n", s.front.Len())
	return nil
}

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
		err = s.where(ctx)
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
		err = s.where(ctx)
	}
	if err == nil && snapshot(n) != before {
		err = errors.New("a step ran although Badger held its result")
	}
	if err == nil {
		fmt.Fprintf(w, "  %s: End(nil) removes its Workflow entries from both tiers, Global ones stay:\n", execID)
		if err = exec.End(nil); err == nil {
			err = s.where(ctx)
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

// short is k's readable form (keyer.Key.String, which is also what
// middleware.KeyFrom gives a running step) with the digest cut to 8 of its
// 64 hex digits.
func short(k keyer.Key) string {
	s := k.String()
	return s[:len(s)-56] + "…"
}

// watchedTier passes every call to the store it wraps. It counts the reads
// that found an entry, so that the program can tell which tier answered a
// call, and it remembers the key and codec of every entry read or written
// through it, so that the program can look each key up in each tier.
type watchedTier struct {
	backends.Store
	hits atomic.Int64

	mu   sync.Mutex
	keys []seenKey
}

type seenKey struct {
	key   keyer.Key
	codec backends.Codec
}

func watch(s backends.Store) *watchedTier { return &watchedTier{Store: s} }

func (t *watchedTier) Get(ctx context.Context, key keyer.Key, c backends.Codec) (backends.Entry, error) {
	t.remember(key, c)
	e, err := t.Store.Get(ctx, key, c)
	if err == nil {
		t.hits.Add(1)
	}
	return e, err
}

func (t *watchedTier) Set(ctx context.Context, key keyer.Key, e backends.Entry, c backends.Codec) error {
	t.remember(key, c)
	return t.Store.Set(ctx, key, e, c)
}

func (t *watchedTier) remember(key keyer.Key, c backends.Codec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.keys {
		if k.key == key {
			return
		}
	}
	t.keys = append(t.keys, seenKey{key, c})
}

func (t *watchedTier) seen() []seenKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]seenKey(nil), t.keys...)
}
