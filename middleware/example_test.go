package middleware_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

type UserID string

type User struct {
	ID   UserID
	Name string
}

func ExampleWrap() {
	fetchUser := func(_ context.Context, id UserID) (*User, error) {
		fmt.Println("fetching", id)
		return &User{ID: id, Name: "Alice"}, nil
	}
	store := memory.New(10_000)
	fetch := middleware.Wrap("fetch_user", fetchUser,
		middleware.WithPersistence(store, scope.Global, time.Hour))

	for i := 0; i < 3; i++ {
		u, err := fetch(context.Background(), "alice")
		if err != nil {
			panic(err)
		}
		fmt.Println(u.Name)
	}
	// Output:
	// fetching alice
	// Alice
	// Alice
	// Alice
}

func ExampleChain() {
	logged := func(name string) middleware.Middleware[int, int] {
		return func(next middleware.Step[int, int]) middleware.Step[int, int] {
			return func(ctx context.Context, in int) (int, error) {
				fmt.Println(name, "before")
				defer fmt.Println(name, "after")
				return next(ctx, in)
			}
		}
	}
	double := func(_ context.Context, n int) (int, error) {
		fmt.Println("step runs")
		return 2 * n, nil
	}
	step := middleware.Chain(
		logged("outer"),
		middleware.Persist[int, int]("double", middleware.WithPersistence(memory.New(100), scope.Global, time.Hour)),
		logged("inner"),
	)(double)

	for i := 0; i < 2; i++ {
		n, _ := step(context.Background(), 21)
		fmt.Println(n)
	}
	// Output:
	// outer before
	// inner before
	// step runs
	// inner after
	// outer after
	// 42
	// outer before
	// outer after
	// 42
}

func ExampleKeyFrom() {
	charge := func(ctx context.Context, cents int) (string, error) {
		key, _ := middleware.KeyFrom(ctx)
		// Pass key to the payment API as its idempotency key: a retry of
		// this call, even after a crash, sends the same one.
		scopeName, rest, _ := strings.Cut(key, "/")
		step, digest, _ := strings.Cut(rest, "/")
		return fmt.Sprintf("charged %d, key %s/%s/<%d hex digits>", cents, scopeName, step, len(digest)), nil
	}
	step := middleware.Wrap("charge", charge, middleware.WithPersistence(memory.New(100), scope.Global, 24*time.Hour))
	out, _ := step(context.Background(), 500)
	fmt.Println(out)
	// Output:
	// charged 500, key global/charge/<64 hex digits>
}
