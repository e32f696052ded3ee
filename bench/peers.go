package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
)

// Peers that only some scenarios run (see Scenario.Systems).
const (
	// ExecMap is (e): a hand-rolled per-execution memo, a map of results
	// that the execution carries in its context and drops at its end, with
	// singleflight around misses. The executions scenarios only.
	ExecMap Kind = iota + 64
	// OtterBinary is (f): otter's Get on a key written by hand, the input's
	// fields in binary and SHA-256 over them: the key work Docket's keyer
	// does, without reflection. The hits scenarios only.
	OtterBinary
)

var (
	execMapSystem     = System{Name: "exec-map", Kind: ExecMap, Tier: "memory"}
	otterBinarySystem = System{Name: "otter-binary-key", Kind: OtterBinary, Tier: "memory"}
)

// buildPeer builds the peers above; ok is false for any other kind.
func buildPeer(b testing.TB, s System, capacity int) (_ *instance, ok bool) {
	switch s.Kind {
	case ExecMap:
		return &instance{wrap: execMapStep, begin: beginExecMap}, true
	case OtterBinary:
		c := otter.Must(&otter.Options[[sha256.Size]byte, Output]{
			MaximumSize:      capacity,
			ExpiryCalculator: otter.ExpiryWriting[[sha256.Size]byte, Output](ttl),
		})
		b.Cleanup(func() { c.StopAllGoroutines() })
		return &instance{wrap: func(name string, fn StepFunc) StepFunc { return otterBinaryStep(c, name, fn) }, begin: beginPeer}, true
	}
	return nil, false
}

// execMap is one execution's memo for peer (e).
type execMap struct {
	mu    sync.Mutex
	m     map[string]Output
	group singleflight.Group
}

type execMapKey struct{}

var errNoExecution = errors.New("bench: exec-map: call without an execution")

func beginExecMap(ctx context.Context, _ string) (context.Context, func() error) {
	e := &execMap{m: make(map[string]Output)}
	return context.WithValue(ctx, execMapKey{}, e), func() error {
		e.mu.Lock()
		e.m = nil // what the execution stored goes with it
		e.mu.Unlock()
		return nil
	}
}

func (e *execMap) lookup(key string) (Output, bool) {
	e.mu.Lock()
	out, ok := e.m[key]
	e.mu.Unlock()
	return out, ok
}

// execMapStep keys on the same hex SHA-256 of the step name and the
// input's JSON as (b), with no execution ID: the map is the execution's.
func execMapStep(name string, fn StepFunc) StepFunc {
	return func(ctx context.Context, in Input) (Output, error) {
		e, ok := ctx.Value(execMapKey{}).(*execMap)
		if !ok {
			return Output{}, errNoExecution
		}
		key, err := peerKey(context.Background(), name, &in)
		if err != nil {
			return Output{}, err
		}
		if out, ok := e.lookup(key); ok {
			return out, nil
		}
		v, err, _ := e.group.Do(key, func() (any, error) {
			if out, ok := e.lookup(key); ok {
				return out, nil
			}
			out, err := fn(ctx, in)
			if err != nil {
				return nil, err
			}
			e.mu.Lock()
			if e.m != nil { // nil: the execution has ended
				e.m[key] = out
			}
			e.mu.Unlock()
			return out, nil
		})
		if err != nil {
			return Output{}, err
		}
		return v.(Output), nil
	}
}

// binaryKey is (f)'s key: length-delimited step name, execution ID (if ctx
// has one) and input fields, in a stack buffer, hashed once.
func binaryKey(ctx context.Context, name string, in *Input) [sha256.Size]byte {
	var arr [128]byte
	b := binary.AppendUvarint(arr[:0], uint64(len(name)))
	b = append(b, name...)
	if e, ok := ctx.Value(peerExecKey{}).(*peerExec); ok {
		b = binary.AppendUvarint(b, uint64(len(e.id)))
		b = append(b, e.id...)
	}
	b = binary.AppendUvarint(b, uint64(len(in.Tenant)))
	b = append(b, in.Tenant...)
	b = binary.LittleEndian.AppendUint64(b, uint64(in.ID))
	b = binary.LittleEndian.AppendUint64(b, uint64(in.Page))
	return sha256.Sum256(b)
}

// otterBinaryStep looks the key up with GetIfPresent first, so that a hit
// does not build the loader (a closure, allocated); a miss loads through
// Get, which deduplicates concurrent loads.
func otterBinaryStep(c *otter.Cache[[sha256.Size]byte, Output], name string, fn StepFunc) StepFunc {
	return func(ctx context.Context, in Input) (Output, error) {
		key := binaryKey(ctx, name, &in)
		if out, ok := c.GetIfPresent(key); ok {
			return out, nil
		}
		return c.Get(ctx, key, otter.LoaderFunc[[sha256.Size]byte, Output](func(ctx context.Context, key [sha256.Size]byte) (Output, error) {
			out, err := fn(ctx, in)
			if err == nil {
				stored(ctx, func() { c.Invalidate(key) })
			}
			return out, err
		}))
	}
}
