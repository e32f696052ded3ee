package badger

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Library-sized defaults: a Store lives inside someone else's service, so it
// must not claim the hundreds of MiB that Badger's own defaults (tuned for a
// database server) do. See the package documentation for what they cost.
const (
	defaultMemTableSize     = 8 << 20
	defaultNumMemtables     = 2
	defaultLevelZeroTables  = 2
	defaultLevelZeroStall   = 4
	defaultBlockCacheSize   = 8 << 20
	defaultIndexCacheSize   = 4 << 20
	defaultValueLogFileSize = 64 << 20
	defaultNumCompactors    = 2
	defaultGCInterval       = 5 * time.Minute
	// gcDiscardRatio is the share of a value-log file that must be garbage
	// before value-log GC rewrites it (Badger's recommended 0.5).
	gcDiscardRatio = 0.5
)

// Option configures a Store; pass options to [Open].
type Option interface{ apply(*config) }

type config struct {
	memTableSize   int64
	blockCacheSize int64
	syncWrites     bool
	logger         *slog.Logger
	gcInterval     time.Duration
	badgerOptions  []func(badgerdb.Options) badgerdb.Options
}

func defaultConfig() config {
	return config{
		memTableSize:   defaultMemTableSize,
		blockCacheSize: defaultBlockCacheSize,
		gcInterval:     defaultGCInterval,
	}
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithMemTableSize sets the size of Badger's in-memory write buffer, the
// memtable. Each memtable allocates about 1.3 times this up front; Badger
// keeps the one being written and those waiting to be flushed to disk (at
// most two wait with the Store's defaults). Larger memtables absorb bursts of
// writes with fewer flushes. The default is 8 MiB. It panics if n is below
// 1 MiB.
func WithMemTableSize(n int64) Option {
	if n < 1<<20 {
		panic(fmt.Sprintf("badger: WithMemTableSize(%d): need at least 1 MiB", n))
	}
	return optionFunc(func(c *config) { c.memTableSize = n })
}

// WithBlockCacheSize sets the budget of Badger's cache of decompressed table
// blocks, which serves reads of entries no longer in a memtable. The default
// is 8 MiB. It panics if n is below 64 KiB: Badger compresses tables and
// needs a block cache to read them.
func WithBlockCacheSize(n int64) Option {
	if n < 64<<10 {
		panic(fmt.Sprintf("badger: WithBlockCacheSize(%d): need at least 64 KiB", n))
	}
	return optionFunc(func(c *config) { c.blockCacheSize = n })
}

// WithSyncWrites makes every Set, Delete and PurgeExecution wait until its
// write is on stable storage (fsync) before it returns, so that acknowledged
// writes survive power loss and kernel crashes, not only a killed process.
// Concurrent Sets share one fsync (group commit). The default is false; see
// the package documentation for what each setting survives.
func WithSyncWrites(sync bool) Option {
	return optionFunc(func(c *config) { c.syncWrites = sync })
}

// WithLogger sends Badger's log messages, and the Store's own (failed
// value-log GC), to l: Badger's errors at Error level, its warnings at Warn,
// and its informational and debug messages at Debug. The default is no
// logging: Badger's own default logger writes to stderr, which a library
// must not do.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithGCInterval sets how often the Store runs Badger's value-log garbage
// collection in the background. Values at or above Badger's value threshold
// (1 MiB by default) live in the value log, and GC reclaims the space of
// those overwritten, deleted or expired. A d of zero or less disables it.
// The default is 5 minutes.
func WithGCInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.gcInterval = d })
}

// WithBadgerOptions lets f change the badger.Options that Open passes to
// Badger, for anything the other options do not cover (larger caches,
// encryption, compression, value threshold). f receives the Store's
// defaults, with the other options applied, and returns the options to use.
// Several WithBadgerOptions are applied in order.
//
// Options that change what the Store relies on are overridden after f:
// Dir and ValueDir are dir, InMemory and ReadOnly are false, and
// DetectConflicts is false (the Store's transactions write blindly, so
// conflict tracking is pure cost). SyncWrites is WithSyncWrites's setting.
func WithBadgerOptions(f func(badgerdb.Options) badgerdb.Options) Option {
	return optionFunc(func(c *config) { c.badgerOptions = append(c.badgerOptions, f) })
}

// badgerOptions builds the options Open gives Badger.
func (c *config) options(dir string) badgerdb.Options {
	o := badgerdb.DefaultOptions(dir).
		WithMemTableSize(c.memTableSize).
		WithNumMemtables(defaultNumMemtables).
		WithNumLevelZeroTables(defaultLevelZeroTables).
		WithNumLevelZeroTablesStall(defaultLevelZeroStall).
		WithBlockCacheSize(c.blockCacheSize).
		WithIndexCacheSize(defaultIndexCacheSize).
		WithValueLogFileSize(defaultValueLogFileSize).
		WithNumCompactors(defaultNumCompactors).
		WithMetricsEnabled(false).
		WithLogger(nil)
	// Badger rejects a value threshold above 15% of the memtable (its
	// largest transaction); keep the default valid for small memtables.
	if maxThreshold := c.memTableSize * 15 / 100; o.ValueThreshold > maxThreshold-1024 {
		o = o.WithValueThreshold(maxThreshold - 1024)
	}
	if c.logger != nil {
		o = o.WithLogger(slogLogger{c.logger})
	}
	for _, f := range c.badgerOptions {
		o = f(o)
	}
	o.Dir, o.ValueDir = dir, dir
	o.InMemory, o.ReadOnly = false, false
	o.DetectConflicts = false
	// Open verifies every table itself (verifyDir); a block read checks its
	// block, so damage that happens while the Store is open is an error
	// (ErrCorrupt), not a wrong value or a miss. Values in the value log are
	// checked too.
	o.ChecksumVerificationMode = options.OnBlockRead
	o.VerifyValueChecksum = true
	o.SyncWrites = c.syncWrites
	return o
}

// slogLogger adapts a *slog.Logger to badger.Logger.
type slogLogger struct{ l *slog.Logger }

func (a slogLogger) Errorf(f string, args ...any)   { a.log(slog.LevelError, f, args) }
func (a slogLogger) Warningf(f string, args ...any) { a.log(slog.LevelWarn, f, args) }
func (a slogLogger) Infof(f string, args ...any)    { a.log(slog.LevelDebug, f, args) }
func (a slogLogger) Debugf(f string, args ...any)   { a.log(slog.LevelDebug, f, args) }

func (a slogLogger) log(level slog.Level, f string, args []any) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(f, args...)), "component", "badger")
}
