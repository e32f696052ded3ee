package middleware_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

type sessionToken struct{ token string }

type account struct {
	Name     string
	Password string `json:"-"`
}

type shape interface{ Area() float64 }

type circle struct{ R float64 }

func (c circle) Area() float64 { return 3 * c.R * c.R }

type square struct{ S float64 }

func (s *square) Area() float64 { return s.S * s.S }

// unregisteredShape has no registered concrete types.
type unregisteredShape interface{ Area() float64 }

func init() { codec.Register[shape](circle{}, &square{}) }

var _ = sessionToken{token: ""}

func wrapPanic[Out any](store backends.Store) string { return wrapPanicWith[Out](store) }

func wrapPanicWith[Out any](store backends.Store, opts ...middleware.Option) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	step := func(context.Context, string) (Out, error) { var o Out; return o, nil }
	middleware.Wrap("result", step, append([]middleware.Option{middleware.WithPersistence(store, scope.Global, time.Hour)}, opts...)...)
	return ""
}

// TestLossyResultsRefused: with a byte tier, Wrap refuses a result type the
// codec would not bring back exactly, naming the type and field; a memory
// store keeps every type.
func TestLossyResultsRefused(t *testing.T) {
	db, err := badger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tiered := backends.Tiered(memory.New(10), db)
	mem := memory.New(10)

	tests := []struct {
		name  string
		wrap  func(backends.Store) string
		panic string // with a byte tier; "" for none
	}{
		{"unexported state", wrapPanic[sessionToken], `docket: step "result": codec msgpack: result type middleware_test.sessionToken does not round-trip: sessionToken.token: unexported fields are not stored`},
		{"json:\"-\"", wrapPanic[*account], `docket: step "result": codec msgpack: result type *middleware_test.account does not round-trip: account.Password: the field is tagged`},
		{"json:\"-\" with Gob", func(s backends.Store) string { return wrapPanicWith[account](s, middleware.WithCodec(codec.Gob)) }, ""},
		{"unregistered interface", wrapPanic[unregisteredShape], `unregisteredShape: an interface result needs its concrete types registered with codec.Register[middleware_test.unregisteredShape]`},
		{"any", wrapPanic[any], `interface {}: an interface result needs its concrete types registered`},
		{"registered interface", wrapPanic[shape], ""},
		{"plain", wrapPanic[account2], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []backends.Store{tiered, db} {
				got := tt.wrap(s)
				if tt.panic == "" && got != "" || tt.panic != "" && !strings.Contains(got, tt.panic) {
					t.Errorf("%s: Wrap panicked with %q, want %q", s.Name(), got, tt.panic)
				}
			}
			if got := tt.wrap(mem); got != "" {
				t.Errorf("memory: Wrap panicked with %q", got)
			}
		})
	}
}

type account2 struct {
	Name string
	Age  int
}

// TestRegisteredInterfaceSurvivesRestart: an interface result with
// registered types comes back from Badger after a restart as the concrete
// value it was, a typed nil included, and the step does not run again.
func TestRegisteredInterfaceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	var runs atomic.Int32
	results := map[string]shape{"circle": circle{R: 2}, "square": &square{S: 3}, "nil square": (*square)(nil), "nil": nil}
	step := func(_ context.Context, in string) (shape, error) {
		runs.Add(1)
		return results[in], nil
	}
	for round := range 2 {
		db, err := badger.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		f := middleware.Wrap("shape", step, middleware.WithPersistence(backends.Tiered(memory.New(10), db), scope.Global, time.Hour), middleware.WithStrict())
		for in, want := range results {
			got, err := f(context.Background(), in)
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, in, err)
			}
			if !reflect.DeepEqual(got, want) || reflect.TypeOf(got) != reflect.TypeOf(want) {
				t.Errorf("round %d, %s: got %#v, want %#v", round, in, got, want)
			}
		}
		db.Close()
	}
	if n := runs.Load(); n != int32(len(results)) {
		t.Errorf("step ran %d times, want %d (once per input)", n, len(results))
	}
}
