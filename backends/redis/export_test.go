package redis

import "time"

// WithSubscriptionIdle sets how long the shared subscription stays open
// with no wait on it, so that a test need not wait subscriptionIdle.
func WithSubscriptionIdle(d time.Duration) Option {
	return optionFunc(func(c *config) { c.subIdle = d })
}

// WithSubscriptionChannels sets how many channels a shared subscription
// takes before new waits move to a fresh one.
func WithSubscriptionChannels(n int) Option {
	return optionFunc(func(c *config) { c.subChannels = n })
}
