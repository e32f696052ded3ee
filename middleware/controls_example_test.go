package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

func ExampleNew() {
	rate := func(_ context.Context, currency string) (float64, error) {
		fmt.Println("fetching", currency)
		return 1.08, nil
	}
	rates := middleware.New("fx_rate", rate, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour))
	ctx := context.Background()

	r, _ := rates.Call(ctx, "EUR") // runs
	r, _ = rates.Call(ctx, "EUR")  // stored
	s, ok, _ := rates.Peek(ctx, "EUR")
	fmt.Println(r, ok, s.Value, s.Tier)

	_ = rates.Forget(ctx, "EUR") // the rate is known to be stale
	_, ok, _ = rates.Peek(ctx, "EUR")
	fmt.Println("stored after Forget:", ok)
	rates.Call(ctx, "EUR") // runs again

	st := rates.Stats()
	fmt.Println("calls", st.Calls, "runs", st.Runs, "memory hits", st.Hits["memory"])
	// Output:
	// fetching EUR
	// 1.08 true 1.08 memory
	// stored after Forget: false
	// fetching EUR
	// calls 3 runs 2 memory hits 1
}

func ExampleRefresh() {
	n := 0
	rate := middleware.Wrap("fx_rate", func(_ context.Context, currency string) (int, error) {
		n++
		return n, nil
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour))
	ctx := context.Background()

	a, _ := rate(ctx, "EUR")
	b, _ := rate(middleware.Refresh(ctx), "EUR") // runs over the stored result
	c, _ := rate(ctx, "EUR")                     // the refreshed one
	d, _ := rate(middleware.Bypass(ctx), "EUR")  // runs, stores nothing
	e, _ := rate(ctx, "EUR")
	fmt.Println(a, b, c, d, e)
	// Output: 1 2 2 3 2
}

var errNoSuchUser = errors.New("no such user")

func ExampleWithErrorCaching() {
	lookup := middleware.Wrap("lookup_user", func(_ context.Context, id UserID) (*User, error) {
		fmt.Println("looking up", id)
		return nil, errNoSuchUser
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour),
		middleware.WithErrorCaching(func(err error) (string, bool) {
			return "not_found", errors.Is(err, errNoSuchUser) // terminal: worth remembering
		}, time.Minute))
	ctx := context.Background()

	for range 2 {
		_, err := lookup(ctx, "mallory")
		fmt.Println(errors.Is(err, errNoSuchUser))
	}
	// Output:
	// looking up mallory
	// true
	// true
}

func ExampleWithRefreshAhead() {
	var runs atomic.Int64
	rates := middleware.New("fx_rate", func(_ context.Context, currency string) (int64, error) {
		return runs.Add(1), nil
	}, middleware.WithPersistence(memory.New(100), scope.Global, time.Hour),
		// Refresh in the background in the last part of the hour: here,
		// all of it but its first millisecond.
		middleware.WithRefreshAhead(time.Hour-time.Millisecond))
	ctx := context.Background()

	first, _ := rates.Call(ctx, "EUR")
	time.Sleep(time.Millisecond)
	second, _ := rates.Call(ctx, "EUR") // the stored result at once; a refresh starts
	// The refresh runs in the background: wait for its result.
	for range 10_000 {
		if s, _, _ := rates.Peek(ctx, "EUR"); s.Value == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println(first, second, rates.Stats().Misses[middleware.ReasonRefreshAhead])
	// Output: 1 1 1
}
