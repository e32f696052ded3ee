// Package backends defines the Store interface that persisted steps keep
// their results in, and Tiered, which puts a fast front tier before a durable
// back tier.
//
// A front tier (backends/memory) keeps decoded values, so a front-tier hit
// decodes nothing. A byte tier (backends/badger) keeps encoded bytes and uses
// the Codec the middleware passes to encode on Set and decode on Get.
package backends
