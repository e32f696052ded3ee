// Command exactly_once charges orders through a Global-scoped step on the
// tiered store (memory in front of Badger) and counts how often the charge
// really runs: once per order, whether the order is charged again in later
// executions, by 100 executions at the same moment, or after a restart.
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
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func main() {
	dir := flag.String("dir", "", "Badger directory (default: a fresh temporary directory, removed at exit)")
	flag.Parse()
	if err := mainErr(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "exactly_once:", err)
		os.Exit(1)
	}
}

func mainErr(dir string) (err error) {
	if dir == "" {
		if dir, err = os.MkdirTemp("", "docket-exactly-once-"); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
		fmt.Printf("Badger directory: %s (temporary, removed at exit)\n\n", dir)
	} else {
		fmt.Printf("Badger directory: %s\n\n", dir)
	}
	return run(os.Stdout, dir)
}

// Charge is the input of the charge_card step: everything that identifies
// one payment. Charging the same Charge twice would bill the customer twice.
type Charge struct {
	Order    string
	Customer string
	Cents    int64
	Currency string
}

func (c Charge) String() string {
	return fmt.Sprintf("order %s, %d.%02d %s", c.Order, c.Cents/100, c.Cents%100, c.Currency)
}

// Receipt is what charge_card returns.
type Receipt struct {
	ChargeID string
}

// concurrent is how many executions charge one order at the same moment.
const concurrent = 100

// run charges three orders in four parts and prints how often the step ran
// for each. It returns an error if a call fails or any order was charged
// more than once.
func run(w io.Writer, dir string) error {
	api := newPaymentAPI()
	var runs sync.Map // order -> *atomic.Int64, step runs per order
	ran := func(order string) *atomic.Int64 {
		n, _ := runs.LoadOrStore(order, new(atomic.Int64))
		return n.(*atomic.Int64)
	}
	var out sync.Mutex // the step prints from its own goroutine

	// newChargeCard is the whole setup; it is called again after the
	// restart in part 4, as a new process would.
	newChargeCard := func(store backends.Store) middleware.Step[Charge, Receipt] {
		return middleware.Wrap("charge_card",
			func(ctx context.Context, c Charge) (Receipt, error) {
				ran(c.Order).Add(1)
				// The step's own key: the same for every call of this
				// charge, in every process. The payment API uses it to
				// recognise a retry of a request it has already seen.
				key, _ := middleware.KeyFrom(ctx)
				out.Lock()
				fmt.Fprintf(w, "    charge_card runs: POST /charges (%s)\n      Idempotency-Key: %s\n", c, key)
				out.Unlock()
				id, err := api.charge(ctx, key, c)
				return Receipt{ChargeID: id}, err
			},
			// Global: the key is the step and the charge, not the execution.
			// Strict: if the store cannot be read or written, fail the call
			// rather than risk charging again.
			middleware.WithPersistence(store, scope.Global, 7*24*time.Hour),
			middleware.WithStrict())
	}

	db, err := badger.Open(dir)
	if err != nil {
		return err
	}
	store := backends.Tiered(memory.New(10_000), db)
	chargeCard := newChargeCard(store)
	fmt.Fprintf(w, "charge_card: scope %s, store %s, strict\n\n", scope.Global, store.Name())

	ctx := context.Background()
	first := Charge{Order: "A-1001", Customer: "cus_ada", Cents: 4999, Currency: "EUR"}
	second := Charge{Order: "A-1002", Customer: "cus_ada", Cents: 1500, Currency: "EUR"}
	third := Charge{Order: "A-1003", Customer: "cus_bob", Cents: 12000, Currency: "EUR"}

	// charge runs one execution that charges c, and prints what it got.
	charge := func(chargeCard middleware.Step[Charge, Receipt], execID string, c Charge) error {
		fmt.Fprintf(w, "  %s: charge %s\n", execID, c)
		before := ran(c.Order).Load()
		ectx, exec := scope.Begin(ctx, execID)
		r, err := chargeCard(ectx, c)
		if err = errors.Join(err, exec.End(err)); err != nil {
			return err
		}
		how := "the step ran"
		if ran(c.Order).Load() == before {
			how = "stored result, the step did not run"
		}
		fmt.Fprintf(w, "    receipt %s (%s)\n", r.ChargeID, how)
		return nil
	}

	fmt.Fprintf(w, "=== 1. Three executions charge the same order ===\n")
	for i := 1; i <= 3; i++ {
		if err := charge(chargeCard, fmt.Sprintf("exec_%d", i), first); err != nil {
			return errors.Join(err, db.Close())
		}
	}
	fmt.Fprintf(w, "  charge_card ran %s for %s\n\n", times(ran(first.Order).Load()), first.Order)

	fmt.Fprintf(w, "=== 2. A fourth execution charges a different order ===\n")
	if err := charge(chargeCard, "exec_4", second); err != nil {
		return errors.Join(err, db.Close())
	}
	fmt.Fprintf(w, "  charge_card ran %s for %s\n\n", times(ran(second.Order).Load()), second.Order)

	fmt.Fprintf(w, "=== 3. %d concurrent executions charge a new order ===\n", concurrent)
	fmt.Fprintf(w, "  %d goroutines, each with its own execution (exec_c000 … exec_c%03d), call at once\n", concurrent, concurrent-1)
	receipts, err := chargeConcurrently(ctx, chargeCard, third)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	got := 0
	for _, r := range receipts {
		if r != "" {
			got++
		}
	}
	fmt.Fprintf(w, "  charge_card ran %s for %s; %d callers got a receipt, %d distinct: %v\n\n",
		times(ran(third.Order).Load()), third.Order, got, len(distinct(receipts)), distinct(receipts))

	fmt.Fprintf(w, "=== 4. Restart: Badger reopened behind a new, empty memory tier ===\n")
	if err := db.Close(); err != nil {
		return err
	}
	if db, err = badger.Open(dir); err != nil {
		return err
	}
	store = backends.Tiered(memory.New(10_000), db)
	chargeCard = newChargeCard(store)
	for i, c := range []Charge{first, second, third} {
		if err := charge(chargeCard, fmt.Sprintf("exec_r%d", i+1), c); err != nil {
			return errors.Join(err, db.Close())
		}
	}
	fmt.Fprintln(w, "  (the memory tier was empty: these receipts came from Badger)")
	if err := db.Close(); err != nil {
		return err
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "=== Summary ===")
	fmt.Fprintf(w, "  %-8s %-10s %-22s %s\n", "order", "step runs", "payment API requests", "charges")
	var overcharged []string
	for _, c := range []Charge{first, second, third} {
		n := ran(c.Order).Load()
		req, charges := api.stats(c.Order)
		fmt.Fprintf(w, "  %-8s %-10d %-22d %d\n", c.Order, n, req, charges)
		if n > 1 || charges > 1 {
			overcharged = append(overcharged, c.Order)
		}
	}
	if overcharged != nil {
		return fmt.Errorf("charged more than once: %v", overcharged)
	}
	return nil
}

// chargeConcurrently makes concurrent executions charge c at the same moment
// and returns the receipt each of them got.
func chargeConcurrently(ctx context.Context, chargeCard middleware.Step[Charge, Receipt], c Charge) ([]string, error) {
	receipts := make([]string, concurrent)
	errs := make([]error, concurrent)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range concurrent {
		wg.Go(func() {
			ectx, exec := scope.Begin(ctx, fmt.Sprintf("exec_c%03d", i))
			<-start
			r, err := chargeCard(ectx, c)
			errs[i] = errors.Join(err, exec.End(err))
			receipts[i] = r.ChargeID
		})
	}
	close(start)
	wg.Wait()
	return receipts, errors.Join(errs...)
}

func times(n int64) string {
	if n == 1 {
		return "1 time"
	}
	return fmt.Sprintf("%d times", n)
}

func distinct(ss []string) []string {
	var d []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			d = append(d, s)
		}
	}
	return d
}

// paymentAPI stands in for an external payment service. Like real ones, it
// honours idempotency keys: a request whose key it has seen returns the
// charge made for it, without charging again. It counts requests and charges
// per order, so the program can show that Docket sends each charge once.
type paymentAPI struct {
	mu       sync.Mutex
	byKey    map[string]string // idempotency key -> charge ID
	requests map[string]int    // per order
	charges  map[string]int    // per order
}

func newPaymentAPI() *paymentAPI {
	return &paymentAPI{byKey: map[string]string{}, requests: map[string]int{}, charges: map[string]int{}}
}

func (p *paymentAPI) charge(ctx context.Context, idempotencyKey string, c Charge) (string, error) {
	// The network round trip: long enough that the concurrent callers of
	// part 3 all arrive while the first one is still waiting for it.
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[c.Order]++
	if id, ok := p.byKey[idempotencyKey]; ok {
		return id, nil
	}
	p.charges[c.Order]++
	id := fmt.Sprintf("ch_%04d", len(p.byKey)+1)
	p.byKey[idempotencyKey] = id
	return id, nil
}

func (p *paymentAPI) stats(order string) (requests, charges int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[order], p.charges[order]
}
