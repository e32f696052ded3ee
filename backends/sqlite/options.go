package sqlite

import (
	"fmt"
	"log/slog"
	"time"
)

const (
	defaultBusyTimeout    = 5 * time.Second
	defaultExpiryInterval = time.Minute
	// maxConns bounds the connections (each with its own page cache) that
	// concurrent reads open; writes use one at a time.
	maxConns = 8
)

// Option configures a Store; pass options to [Open].
type Option interface{ apply(*config) }

type config struct {
	syncFull       bool
	busyTimeout    time.Duration
	expiryInterval time.Duration
	logger         *slog.Logger
}

func defaultConfig() config {
	return config{busyTimeout: defaultBusyTimeout, expiryInterval: defaultExpiryInterval}
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithSyncFull sets synchronous=FULL: every commit waits until the
// write-ahead log is on stable storage, so acknowledged writes survive
// power loss and kernel crashes, not only a killed process. Concurrent Sets
// share commits (group commit), and so share the flush. The default is
// synchronous=NORMAL: a killed process loses nothing acknowledged, power
// loss may lose the latest commits (never corrupting the file).
func WithSyncFull() Option {
	return optionFunc(func(c *config) { c.syncFull = true })
}

// WithBusyTimeout sets how long a write waits for another connection's
// write transaction (another process's, usually) before it fails with
// SQLITE_BUSY. The default is 5 seconds. It panics if d is negative.
func WithBusyTimeout(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("sqlite: WithBusyTimeout(%v): negative", d))
	}
	return optionFunc(func(c *config) { c.busyTimeout = d })
}

// WithExpiryInterval sets how often the Store deletes expired rows in the
// background. A d of zero or less disables it; [Store.DeleteExpired] then
// does it when called. The default is one minute.
func WithExpiryInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.expiryInterval = d })
}

// WithLogger sends the Store's own messages (a failed background expiry) to
// l. The default is no logging.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}
