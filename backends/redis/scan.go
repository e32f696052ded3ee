package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// scanCount is the COUNT hint of each SCAN and SSCAN call, and so about
// how many values one pipelined round trip reads.
const scanCount = 1000

var (
	_ backends.ByteScanner = (*byteStore)(nil)
	_ backends.Lister      = (*Store)(nil)
	_ backends.Selector    = (*Store)(nil)
)

// List calls fn with an Info of every entry f matches; see
// backends.Lister. It walks the key space with SCAN over the Store's
// prefix (an execution's index set with SSCAN when f names an execution),
// never KEYS, and reads each batch's values in one pipeline: an
// administrative operation, not one for a request path.
func (s *Store) List(ctx context.Context, f backends.Filter, fn func(backends.Info) error) error {
	return s.t().List(ctx, f, fn)
}

// DeleteMatching removes every entry f matches and returns how many it
// removed; see backends.Selector. It scans as List does and deletes each
// matching entry with its index membership.
func (s *Store) DeleteMatching(ctx context.Context, f backends.Filter) (int, error) {
	return s.t().DeleteMatching(ctx, f)
}

// globEscape quotes the characters SCAN's MATCH pattern gives a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// entryKeyOf parses the name of a result key back into the ByteTier's key
// form; ok is false for any other key under the prefix.
func (b *byteStore) entryKeyOf(name string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(name, b.prefix+"{")
	if !ok || len(rest) < 2 {
		return nil, false
	}
	tag, rest, ok := strings.Cut(rest, "}")
	if !ok {
		return nil, false
	}
	var k keyer.Key
	var sum string
	switch {
	case tag[0] == 'g' && rest == kindResult:
		k.Scope, sum = scope.Global, tag[1:]
	case tag[0] == 'w' && strings.HasPrefix(rest, kindResult):
		exec, err := hex.DecodeString(tag[1:])
		if err != nil {
			return nil, false
		}
		k.Scope, k.Execution, sum = scope.Workflow, string(exec), rest[len(kindResult):]
	default:
		return nil, false
	}
	if n, err := hex.Decode(k.Sum[:], []byte(sum)); err != nil || n != len(k.Sum) || len(sum) != 2*len(k.Sum) {
		return nil, false
	}
	key, err := k.AppendBinary(nil)
	return key, err == nil
}

// scanNames calls fn with batches of the names of result keys that may
// hold entries f matches: an execution's index, or SCAN over the prefix on
// every primary of a Cluster.
func (b *byteStore) scanNames(ctx context.Context, f backends.Filter, fn func([]string) error) error {
	if f.Execution != "" {
		if f.Scope == scope.Global {
			return nil
		}
		tag := b.executionTag(f.Execution)
		index := tag + kindIndex
		var cursor uint64
		for {
			members, next, err := b.c.SScan(ctx, index, cursor, "", scanCount).Result()
			if err != nil {
				return fault(err)
			}
			names := make([]string, len(members))
			for i, m := range members {
				names[i] = b.resultOf(tag, m)
			}
			if err := fn(names); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var match string
	switch f.Scope {
	case scope.Global:
		match = globEscape(b.prefix) + "{g*}" + kindResult
	case scope.Workflow:
		match = globEscape(b.prefix) + "{w*}" + kindResult + "*"
	default:
		match = globEscape(b.prefix) + "{*}" + kindResult + "*"
	}
	scanNode := func(ctx context.Context, c goredis.Cmdable) error {
		var cursor uint64
		for {
			names, next, err := c.Scan(ctx, cursor, match, scanCount).Result()
			if err != nil {
				return fault(err)
			}
			if err := fn(names); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := b.c.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return scanNode(ctx, c) })
	}
	return scanNode(ctx, b.c)
}

// values reads the values of names in one pipeline; a name whose key has
// gone meanwhile gets nil.
func (b *byteStore) values(ctx context.Context, names []string) ([][]byte, error) {
	pipe := b.c.Pipeline()
	cmds := make([]*goredis.StringCmd, len(names))
	for i, n := range names {
		cmds[i] = pipe.Get(ctx, n)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fault(err)
	}
	vals := make([][]byte, len(names))
	for i, c := range cmds {
		v, err := c.Bytes()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fault(err)
		}
		vals[i] = v
	}
	return vals, nil
}

// Scan reads, batch by batch, the names SCAN finds and their values. SCAN
// may return a name more than once; Scan gives each record once.
func (b *byteStore) Scan(ctx context.Context, f backends.Filter, fn func(backends.ScanRecord) error) error {
	seen := make(map[string]struct{})
	return b.scanNames(ctx, f, func(names []string) error {
		if len(names) == 0 {
			return ctx.Err()
		}
		vals, err := b.values(ctx, names)
		if err != nil {
			return err
		}
		for i, n := range names {
			key, ok := b.entryKeyOf(n)
			if !ok || vals[i] == nil {
				continue
			}
			if _, dup := seen[n]; dup {
				continue
			}
			seen[n] = struct{}{}
			if err := fn(backends.ScanRecord{Key: key, Value: vals[i]}); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteWhere collects the keys of the records match accepts, then deletes
// each with deleteScript, which counts what it removed: a key that went
// meanwhile is not counted.
func (b *byteStore) DeleteWhere(ctx context.Context, f backends.Filter, match func(backends.ScanRecord) bool) (int, error) {
	total := 0
	var doomed [][]byte
	err := b.Scan(ctx, f, func(r backends.ScanRecord) error {
		if match(r) {
			doomed = append(doomed, append([]byte(nil), r.Key...))
		}
		return nil
	})
	for _, key := range doomed {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, derr := b.deleteCounted(ctx, key)
		if derr != nil {
			return total, derr
		}
		total += n
	}
	return total, err
}

// deleteCounted removes the entry under key and reports whether it was
// there.
func (b *byteStore) deleteCounted(ctx context.Context, key []byte) (int, error) {
	n, err := b.namesOf(key)
	if err != nil {
		return 0, err
	}
	keys := []string{n.result}
	var args []any
	if n.index != "" {
		keys = append(keys, n.index)
		args = append(args, n.member)
	}
	removed, err := deleteScript.Run(ctx, b.c, keys, args...).Int()
	return removed, fault(err)
}

// Inspect returns the Info of the entry stored under key and the codec's
// encoding of its value, without decoding it; see
// backends.ByteTier.Inspect.
func (s *Store) Inspect(ctx context.Context, key keyer.Key) (backends.Info, []byte, error) {
	return s.t().Inspect(ctx, key)
}
