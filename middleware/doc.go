// Package middleware makes step functions persistent.
//
// A step is any func(ctx, In) (Out, error). Wrapping it with [Wrap] (or
// composing [Persist] with other middleware through [Chain]) gives a step
// that, for each key, runs once; every other call with that key gets the
// stored result. The key is made by package keyer from the step name, the
// step version ([WithVersion]), the input and, for [scope.Workflow], the
// execution in the context.
//
// # What runs once, what is shared
//
// A call first looks in the store's front tier. On a miss it joins the
// in-flight call for its key (golang.org/x/sync/singleflight), if there is
// one, or starts it. The flight looks in the front tier again (another
// flight may have just stored the result), then in the whole store, and
// only then runs the step. Its result is written to the store (back tier
// first) and handed to every caller waiting on the flight.
//
//   - Concurrent calls with one key in one process run the step once; all get
//     its result or its error.
//   - Each caller waits on its own context: one whose context ends gets
//     ctx.Err() at once, the others keep waiting. The step's context is
//     cancelled only when every caller waiting on it has gone; it carries the
//     values (trace, execution, [KeyFrom]) of the context of the caller that
//     started the flight, but not its deadline.
//   - When every caller of a flight has left, the flight is abandoned: its
//     step's context is cancelled and the next call starts a new flight. A
//     step that ignores its context may then still be running beside the
//     new one, and both may store a result; steps with side effects should
//     honour ctx or use KeyFrom as an idempotency key.
//   - Errors are not stored: the callers of that flight share the error and
//     the next call runs the step again. A failure never replaces a stored
//     success.
//   - A step that panics makes every waiting caller panic with a *[PanicError]
//     carrying the value and the stack (as singleflight.Do does); a step that
//     calls runtime.Goexit gives its callers [ErrGoexit]. Neither leaves the
//     key stuck.
//   - A caller whose context can never end (ctx.Done() == nil) runs the
//     step in its own goroutine when it starts a flight; others run it in a
//     goroutine of the flight, so that they can leave. So a step that calls
//     runtime.Goexit ends the goroutine of such a caller, as a direct call
//     would.
//   - Store faults (a corrupt entry, an unreadable store, a failed write) are
//     misses by default: the step runs and the result is returned; a failed
//     write is logged. [WithStrict] makes them errors instead.
//   - Results are shared: every caller of a key gets the same value, so treat
//     results as immutable, or use [WithClone] for mutable result types.
//
// An entry expires after the step's TTL ([WithPersistence]) and is never
// served after that.
package middleware
