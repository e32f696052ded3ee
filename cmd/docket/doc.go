// Command docket lists, inspects and purges what a durable Docket store
// holds: a Badger directory, a SQLite file (by path or sqlite:// URL) or
// Redis (a redis:// URL).
//
//	docket ls [-step S] [-version V] [-scope global|workflow] [-execution E] [-expired] [-failures] STORE
//	docket stats [filters] STORE
//	docket get STORE KEY
//	docket purge (-step S [-version V] | -execution E | -expired | -failures) [-y] STORE
//
// ls prints one line per entry, sorted by step, scope, execution and key:
// its age, the TTL left, its stored size, the code of the failure it
// stores ("-" for a result), the trace ID of the run that produced it
// (package tracing records it) and its key as keyer.Key.String prints it,
// which get takes. get decodes values of the JSON and msgpack codecs into
// JSON, prints others as hex, and prints a stored failure's code and
// message. stats counts entries, bytes, expired entries and stored
// failures per step and scope. purge asks before it deletes unless -y is
// given, and prints how many entries it removed. Every command takes -json
// for output to scripts.
//
// Stored failures are what middleware.WithErrorCaching keeps. -failures
// selects only them; it narrows the other filters, and purge takes it
// alone or with one of them. The stores' listing does not tell failures
// from results, so the command reads the entries' headers itself: in the
// same scan for Badger and Redis, in a second one (of the value column)
// for SQLite; stats scans once more. purge -failures deletes them one by
// one, each only if it still holds a failure when read just before: a
// result stored over a failure while purge runs stays, unless it lands
// between that read and the delete (the stores have no compare-and-delete).
//
// The command never creates a store: a missing path is an error, and so is
// a directory that is not a Badger database or a file that is not a SQLite
// database, which it leaves untouched. A Badger directory can be open in
// one process only: while a service holds it, the command fails with an
// error wrapping badger.ErrLocked and changes nothing.
//
// Ages and expiry are judged by the clock, or by the time -now (or
// $DOCKET_NOW) gives in RFC 3339 form. Scans of many entries draw a
// progress bar on stderr when it is a terminal and -json is not given.
package main
