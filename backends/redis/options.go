package redis

import (
	"fmt"
	"strings"
	"time"
)

// Defaults of the options.
const (
	// DefaultPrefix starts every key and channel name the Store uses.
	DefaultPrefix = "docket:"
	// DefaultLeaseTTL is how long a lease lives without renewal.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultPollInterval is the longest a waiting process goes without
	// looking at a lease it waits on (see WithPollInterval).
	DefaultPollInterval = time.Second
)

// An Option configures a Store.
type Option interface {
	apply(*config)
}

type config struct {
	prefix   string
	leaseTTL time.Duration
	poll     time.Duration

	// The shared subscription's idle period and channel budget; only
	// tests change them.
	subIdle     time.Duration
	subChannels int
}

func defaultConfig() config {
	return config{
		prefix: DefaultPrefix, leaseTTL: DefaultLeaseTTL, poll: DefaultPollInterval,
		subIdle: subscriptionIdle, subChannels: subscriptionChannels,
	}
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPrefix sets the string every key and channel name starts with, so
// that several services, or several Stores, share one Redis without seeing
// each other's entries. The default is DefaultPrefix. New panics if p
// contains '{' or '}': the Store puts each entry's keys under a hash tag of
// its own, and a brace in the prefix would change which part is the tag.
func WithPrefix(p string) Option {
	return optionFunc(func(c *config) {
		if strings.ContainsAny(p, "{}") {
			panic(fmt.Sprintf("redis: WithPrefix(%q): a prefix must not contain '{' or '}'", p))
		}
		c.prefix = p
	})
}

// WithLeaseTTL sets how long a lease lives unless its holder renews it;
// the holder renews it every third of that while its step runs. It bounds
// how long other processes wait for a holder that crashed before they take
// its key over, and how long a holder cut off from Redis keeps running
// before its step's context is cancelled. The default is DefaultLeaseTTL.
// New panics if d is under 3 milliseconds (Redis counts a lease's life in
// milliseconds, and renews at a third of it).
func WithLeaseTTL(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 3*time.Millisecond {
			panic(fmt.Sprintf("redis: WithLeaseTTL(%v): the lease TTL must be at least 3ms", d))
		}
		c.leaseTTL = d
	})
}

// WithPollInterval sets the longest a process waiting on another's lease
// goes without looking at it again. A waiter is woken by a message when
// the holder commits or releases; it also looks when the lease would
// expire, and at least this often, in case a message was lost (the
// subscription's connection dropped). The default is DefaultPollInterval.
// New panics if d is not positive.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			panic(fmt.Sprintf("redis: WithPollInterval(%v): the poll interval must be positive", d))
		}
		c.poll = d
	})
}
