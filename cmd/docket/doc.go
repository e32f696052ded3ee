// Command docket lists, inspects and purges what a durable Docket store
// holds: a Badger directory, a SQLite file (by path or sqlite:// URL) or
// Redis (a redis:// URL).
//
//	docket ls [-step S] [-version V] [-scope global|workflow] [-execution E] [-expired] STORE
//	docket stats [filters] STORE
//	docket get STORE KEY
//	docket purge (-step S [-version V] | -execution E | -expired) [-y] STORE
//
// ls prints one line per entry, sorted by step, scope, execution and key:
// its age, the TTL left, its stored size, the trace ID of the run that
// produced it (package tracing records it) and its key as
// keyer.Key.String prints it, which get takes. get decodes values of the
// JSON and msgpack codecs into JSON and prints others as hex. purge asks
// before it deletes unless -y is given, and prints how many entries it
// removed. Every command takes -json for output to scripts.
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
