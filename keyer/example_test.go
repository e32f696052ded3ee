package keyer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// Check finds, from the type alone, a field that can never be part of a key.
// The middleware calls it (through NewFor) when a step is wrapped, and
// panics with this message.
func ExampleCheck() {
	type Query struct {
		Name     string
		Callback func()
	}
	err := keyer.Check(reflect.TypeFor[Query]())
	fmt.Println(err)
	fmt.Println(errors.Is(err, keyer.ErrUnkeyable))
	// Output:
	// keyer: cannot key field Query.Callback of type func()
	// true
}

type tenantKey struct{}

// A custom Keyer that keys each call by tenant as well as input: the digest
// comes from Hash over everything that identifies the call, and Make adds the
// scope's rules (the execution ID for Workflow steps).
func ExampleFunc() {
	perTenant := keyer.Func(func(ctx context.Context, step keyer.StepInfo, in any) (keyer.Key, error) {
		tenant, ok := ctx.Value(tenantKey{}).(string)
		if !ok {
			return keyer.Key{}, errors.New("no tenant in context")
		}
		sum, err := keyer.Hash(step, struct {
			Tenant string
			In     any
		}{tenant, in})
		if err != nil {
			return keyer.Key{}, err
		}
		return keyer.Make(ctx, step, sum)
	})

	step := keyer.StepInfo{Name: "fetch_user", Version: "v1", Scope: scope.Global}
	acme := context.WithValue(context.Background(), tenantKey{}, "acme")
	globex := context.WithValue(context.Background(), tenantKey{}, "globex")

	k1, _ := perTenant.Key(acme, step, "alice")
	k2, _ := perTenant.Key(globex, step, "alice")
	k3, _ := perTenant.Key(acme, step, "alice")
	fmt.Println("acme and globex share a key:", k1 == k2)
	fmt.Println("acme's two calls share a key:", k1 == k3)
	// Output:
	// acme and globex share a key: false
	// acme's two calls share a key: true
}

type FetchUser struct {
	User  string
	Limit int
}

// NewFor compiles the key plan of a step's input type once; Key then needs
// an execution for a Workflow step. (The digest printed is pinned, like the
// sums of TestGolden: changing it requires bumping keyFormat.)
func ExampleNewFor() {
	keys, err := keyer.NewFor[FetchUser](keyer.StepInfo{Name: "fetch_user", Version: "v1", Scope: scope.Workflow})
	if err != nil {
		panic(err)
	}
	in := FetchUser{User: "alice", Limit: 10}

	_, err = keys.Key(context.Background(), &in)
	fmt.Println(errors.Is(err, scope.ErrNoExecution))

	ctx, exec := scope.Begin(context.Background(), "exec_12345")
	defer exec.End(nil)
	k, err := keys.Key(ctx, &in)
	if err != nil {
		panic(err)
	}
	fmt.Println(k)
	// Output:
	// true
	// workflow/exec_12345/fetch_user/f848d56d9e2a352ad42bbbdf255856b60f448b6aefc39278aabcf64dfc3dff43
}
