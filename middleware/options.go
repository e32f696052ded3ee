package middleware

import (
	"log/slog"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// Option configures Persist and Wrap. Options are not generic, so one set of
// options serves steps of every type.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config holds every setting in one place, with the defaults of newConfig.
type config struct {
	store   backends.Store
	scope   scope.Scope
	ttl     time.Duration
	version string
	keyer   keyer.Keyer
	strict  bool
	clone   bool
	logger  *slog.Logger
	codec   codec.Codec // nil: codec.Default()
	// observer is nil unless WithObserver: the hit path then only tests it.
	observer Observer
	// classify and errTTL are WithErrorCaching's; classify nil stores no
	// failures.
	classify func(error) (string, bool)
	errTTL   time.Duration
	// ahead is WithRefreshAhead's window; zero refreshes nothing ahead.
	ahead time.Duration
}

func newConfig(opts []Option) config {
	c := config{logger: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithPersistence stores results in store, keyed by scope s, for ttl. A ttl
// of zero or less keeps entries until the store evicts them (or, for
// Workflow scope, until the execution ends). It is required.
func WithPersistence(store backends.Store, s scope.Scope, ttl time.Duration) Option {
	return optionFunc(func(c *config) {
		c.store, c.scope, c.ttl = store, s, ttl
	})
}

// WithVersion puts the step's code version into its keys: results stored by
// another version are not served.
func WithVersion(v string) Option {
	return optionFunc(func(c *config) { c.version = v })
}

// WithKeyer replaces the default key strategy (scope + step + version +
// canonical input) with k, for keys per tenant, keys that ignore fields, and
// the like. The default allocates nothing for plain inputs; a Keyer takes the
// input as an interface value.
func WithKeyer(k keyer.Keyer) Option {
	return optionFunc(func(c *config) { c.keyer = k })
}

// WithStrict makes store faults errors instead of misses, for steps that must
// never run twice (billing): a read fault or corrupt entry fails the call
// without running the step, and a failed write returns the step's result
// together with an error.
func WithStrict() Option {
	return optionFunc(func(c *config) { c.strict = true })
}

// WithClone gives every caller its own copy of the result: the result type
// must have a method Clone() Out, which is called on each return. Without it
// all callers of a key share one value, which they must not modify.
func WithClone() Option {
	return optionFunc(func(c *config) { c.clone = true })
}

// WithCodec sets how results are encoded for byte tiers (Badger, Redis); the
// default is codec.Default(). Results that are protobuf messages are always
// encoded with protobuf. Changing the codec of a step makes its stored
// entries misses, which are overwritten.
func WithCodec(c codec.Codec) Option {
	return optionFunc(func(cfg *config) { cfg.codec = c })
}

// WithLogger sets where store faults that do not fail a call are reported.
// The default is slog.Default(); nil discards them.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}
