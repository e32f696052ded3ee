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
// The README's guarantee table lists every guarantee in one place; what
// follows is the part this package's API keeps, stated at the API.
//
// A call first looks in the store's front tier. On a miss it joins the
// in-flight call for its key, if there is one, or starts it. Flights belong
// to (store, key) in a process-wide registry, not to a Wrap: two Wraps of
// one step over one store, or a Wrap made per request, share them. The
// flight looks in the store again (another flight may have just stored the
// result), then runs the step. Its result is written to the store (back
// tier first) and handed to every caller waiting on the flight.
//
//   - Concurrent calls with one key and one store in one process run the
//     step once; all get its result or its error.
//   - Each caller waits on its own context: one whose context ends gets
//     ctx.Err() at once, the others keep waiting. The step's context is
//     cancelled only when every caller waiting on it has gone; it carries the
//     values (trace, execution, [KeyFrom], [FenceFrom]) of the context of the
//     caller that started the flight, but not its deadline.
//   - When every caller of a flight has left, the flight is abandoned: it is
//     unlisted before its step's context is cancelled, so the next call
//     starts a new flight rather than join one being cancelled. A step that
//     ignores its context may then still be running beside the new one, and
//     both may store a result; steps with side effects should honour ctx or
//     use KeyFrom as an idempotency key.
//   - Nothing lands after End(nil): a flight of an execution that ended with
//     a nil error while its step ran stores nothing, and removes what it
//     wrote if End's purge ran during its write.
//   - Errors are not stored (but for those WithErrorCaching marks terminal):
//     the callers of that flight share the error and the next call runs the
//     step again. A failure never replaces a stored success.
//   - A step that panics makes every waiting caller panic with a *[PanicError]
//     carrying the value and the stack (as singleflight.Do does); a step that
//     calls runtime.Goexit gives its callers [ErrGoexit]. Neither leaves the
//     key stuck. A store or codec that panics inside a flight is treated the
//     same way; no goroutine of a flight ever dies of a panic.
//   - A caller whose context can never end (ctx.Done() == nil) runs the
//     step in its own goroutine when it starts a flight; others run it in a
//     goroutine of the flight, so that they can leave. So a step that calls
//     runtime.Goexit ends the goroutine of such a caller, as a direct call
//     would.
//   - When the store, or the back tier of a Tiered store, is shared between
//     processes (a [backends.Coordinator], such as backends/redis), the
//     flight takes the key's lease before it runs the step and commits the
//     result under it: one completed run is recorded per key across
//     processes, and a late writer's callers get the winner's result. The
//     step's context is cancelled if the lease is lost.
//   - Store faults (a corrupt entry, an unreadable store, a failed write) are
//     misses by default: the step runs and the result is returned; a failed
//     write is logged. [WithStrict] makes them errors instead.
//   - Results are shared: every caller of a key gets the same value, so treat
//     results as immutable, or use [WithClone] for mutable result types.
//
// # Why not x/sync/singleflight
//
// A flight is one struct with one done channel that covers return, panic
// and runtime.Goexit, and a waiter count kept under the same lock as the
// registry. golang.org/x/sync/singleflight cannot keep these promises alone:
// its DoChan gives waiters no word of a Goexit, re-raises a panic in a
// goroutine no caller can recover, keeps no waiter count (so a caller could
// join a flight that is being cancelled), and boxes every result. Built
// around it, the same promises need a second registry beside the Group's and
// more than twice the allocations per miss (BenchmarkFlightPrimitive;
// numbers in bench/REPORT.md).
//
// An entry expires after the step's TTL ([WithPersistence]) and is never
// served after that.
//
// # Controlling what is cached
//
// Per call, [Refresh] runs the step over a stored result and stores the new
// one (its concurrent callers share that run), and [Bypass] neither reads
// nor writes. Per input, the handle [New] returns can [Persisted.Peek] at a
// stored result and its metadata, [Persisted.Forget] it in every tier, and
// [Persisted.ForgetMatching] drops a step's entries in bulk (one version,
// one execution, expired ones). [WithErrorCaching] stores the failures a
// classifier marks terminal, with their own TTL. [WithRefreshAhead]
// refreshes a Global entry in the background in the last part of its TTL,
// while its callers keep getting the stored result, so that a hot key never
// stalls at expiry. [Persisted.Stats] counts a step's calls, hits by tier,
// misses by reason, shared waits and runs.
//
// # Composition: Apply, Retry, Timeout
//
// [Apply] puts layers around a step, the first outermost, and infers In and
// Out from the step. [Retry] and [Timeout] are [Around]s, which name no
// types, so a chain of them and Persist spells the step's types once, on
// Persist. [Chain] composes Middleware values of one type and stays the
// form for building a Middleware without a step. Since Wrap and Apply both
// infer from the step, nesting them needs no type arguments at all:
//
//	fetch := middleware.Apply(
//		middleware.Wrap("fetch_user",
//			middleware.Apply(FetchUser, middleware.Retry(transient), middleware.Timeout(time.Second)),
//			middleware.WithPersistence(store, scope.Global, time.Hour)),
//		middleware.Timeout(5*time.Second))
//
// Where they go around Persist decides what they cover:
//
//   - Retry inside Persist (Apply(step, Persist, Retry)): the retries run in
//     the key's flight, one retry loop per key, shared by every caller
//     waiting on it; only the final result is stored, and every attempt
//     sees the same [KeyFrom] key. Its waits end when the step's context
//     does, that is when every caller has gone. The place for the step's own
//     transient errors.
//   - Retry outside Persist (Apply(step, Retry, Persist)): each caller
//     retries on its own schedule; a retry is a new call, which finds no
//     stored failure and starts (or joins) a new flight. The place to retry
//     what Persist itself returns, such as the store faults of a
//     [WithStrict] step.
//   - Timeout outside Persist bounds how long a caller waits, on its own
//     flight or another caller's. Persist does not give the step its
//     caller's deadline, so the step runs on for the callers still waiting,
//     and stops only when all have gone.
//   - Timeout inside Persist bounds the step's run: around Retry, all its
//     attempts and waits (Apply(step, Persist, Timeout, Retry)); inside
//     Retry, each attempt (Apply(step, Persist, Retry, Timeout)), whose
//     [ErrTimeout] Retry then offers to its classifier.
package middleware
