package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

func Example() {
	ctx := context.Background()
	store := memory.New(10_000) // never more than 10,000 entries

	k := keyer.Key{Scope: scope.Workflow, Execution: "exec_1", Step: "fetch_user", Sum: keyer.Sum{1}}
	user := &struct{ Name string }{"alice"}
	_ = store.Set(ctx, k, backends.Entry{Value: user, Expires: time.Now().Add(time.Hour)}, nil)

	e, err := store.Get(ctx, k, nil)
	fmt.Println(e.Value == any(user), e.Tier, err) // the same pointer: values are shared

	n, _ := store.PurgeExecution(ctx, "exec_1")
	_, err = store.Get(ctx, k, nil)
	fmt.Println(n, errors.Is(err, backends.ErrNotFound))
	// Output:
	// true memory <nil>
	// 1 true
}
