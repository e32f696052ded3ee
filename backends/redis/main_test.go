package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/redis"
	"github.com/docket-go/docket/internal/redistest"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

func TestMain(m *testing.M) {
	// A helper process is killed or exits on its own; only the parent
	// checks for leaks.
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run())
	}
	// The tests that stop Redis would fill the output with the client's
	// reconnection messages.
	goredis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var ctx = context.Background()

// result is a small step result.
type result struct {
	Who string `json:"who"`
	N   int    `json:"n"`
}

// jsonCodec is a real codec, as the middleware binds one to a step's result
// type.
type jsonCodec[T any] struct{}

func (jsonCodec[T]) ID() uint8 { return 1 }

func (jsonCodec[T]) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec[T]) Decode(data []byte) (any, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

var resultCodec backends.Codec = jsonCodec[result]{}

// otherCodec has another ID: its bytes must never be decoded as
// resultCodec's.
type otherCodec struct{ jsonCodec[result] }

func (otherCodec) ID() uint8 { return 2 }

func globalKey(i int) keyer.Key {
	k := keyer.Key{Scope: scope.Global, Step: "step"}
	copy(k.Sum[:], fmt.Sprintf("global key %d", i))
	return k
}

func workflowKey(exec string, i int) keyer.Key {
	k := keyer.Key{Scope: scope.Workflow, Execution: exec, Step: "step"}
	copy(k.Sum[:], fmt.Sprintf("workflow key %d", i))
	return k
}

// newStore returns a Store on a client of srv, with a prefix of its own.
func newStore(t testing.TB, srv *redistest.Server, opts ...redis.Option) *redis.Store {
	t.Helper()
	return redis.New(srv.Client(t), append([]redis.Option{redis.WithPrefix(t.Name() + ":")}, opts...)...)
}

func entry(who string, n int, ttl time.Duration) backends.Entry {
	e := backends.Entry{Value: result{Who: who, N: n}, Created: time.Now(), Execution: "exec"}
	if ttl > 0 {
		e.Expires = e.Created.Add(ttl)
	}
	return e
}

func set(t testing.TB, s backends.Store, k keyer.Key, e backends.Entry) {
	t.Helper()
	if err := s.Set(ctx, k, e, resultCodec); err != nil {
		t.Fatalf("Set(%v): %v", k, err)
	}
}

func want(t testing.TB, s backends.Store, k keyer.Key, v result) backends.Entry {
	t.Helper()
	e, err := s.Get(ctx, k, resultCodec)
	if err != nil {
		t.Fatalf("Get(%v): %v, want %v", k, err, v)
	}
	if e.Value != v {
		t.Fatalf("Get(%v) = %v, want %v", k, e.Value, v)
	}
	return e
}

// commands records the commands a client sends, one per round trip (a
// pipeline counts once).
type commands struct {
	mu    sync.Mutex
	names []string
}

func (c *commands) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.add("pipeline")
		return next(ctx, cmds)
	}
}

func (c *commands) add(name string) {
	c.mu.Lock()
	c.names = append(c.names, strings.ToLower(name))
	c.mu.Unlock()
}

// take returns the commands recorded since the last take.
func (c *commands) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.names
	c.names = nil
	return n
}
