// Package tracing reports the calls of persisted steps as OpenTelemetry
// spans and metrics. It implements the middleware's Observer:
//
//	fetch := middleware.Wrap("fetch_user", FetchUser,
//		middleware.WithPersistence(store, scope.Global, time.Hour),
//		middleware.WithObserver(tracing.New()))
//
// The rest of Docket does not import OpenTelemetry; a program that does not
// trace does not link it.
//
// # Spans
//
// Every call gets one span, named after the step and of kind internal,
// started before the call looks anything up: when the step runs, it runs
// inside that span, so its own spans are children of it. The span's
// attributes (see the *Key constants) say which step and scope it was, the
// execution, how the call was answered (docket.result: hit, miss, shared,
// error), which tier answered (docket.tier), why the front tier did not
// (docket.miss_reason: absent, expired, corrupt, fault, refresh, bypass,
// and refresh_ahead for the background refresh of WithRefreshAhead, which
// gets a span of its own, a child of the hit that started it), whether the
// call joined another caller's flight (docket.flight.joined), the key's
// short hash and, for the caller that started a flight, how many callers
// it answered. An answer from any tier is a hit, by tier: also one
// that a flight found in a slower tier (Badger after a restart, Redis
// filled by another process). A miss is a run of the step. A call that
// returned an error is an error, also a stored failure (WithErrorCaching)
// that a tier answered with.
//
// A span has up to two links, told apart by their docket.link.kind:
//   - "flight": a caller that joined another caller's flight (result
//     shared) links to the span of the call that started it, where the
//     step ran.
//   - "producer": a call answered with a stored result links to the span of
//     the run that produced it. The observer stores that span's trace and
//     span ID with every result (Origin), and byte tiers keep them, so the
//     link crosses executions, processes and restarts: "which run made
//     this result?"
//
// A failed call's span has status codes.Error, its message as description
// and an error.type attribute: the Docket sentinel or type it wraps
// (".../scope.ErrNoExecution", ".../middleware.PanicError",
// "context.Canceled", ...) or, for the step's own errors, the error's type as
// semconv.ErrorType names it. A store fault that did not fail the call is an
// "exception" event on the span, with docket.store and docket.operation.
//
// # Metrics
//
// Instruments of the meter named [ScopeName]:
//   - docket.calls (counter): calls by step, scope and result, and by what
//     the call counts as (below): docket.tier on hits, docket.miss_reason
//     on misses, docket.flight.joined on shared waits.
//   - docket.step.duration (histogram, seconds): step runs, by step and
//     scope: failed, panicking and Bypass runs included.
//   - docket.flight.waiters (histogram): callers per flight, by step and
//     scope.
//   - docket.store.faults (counter): store faults by step, scope, store and
//     operation (read, write, purge).
//   - docket.execution.purged (counter): entries removed by the end of
//     executions, by store.
//
// They carry the numbers of middleware.Stats (Persisted.Stats), summed over
// the handles and processes of a step that report to one meter. Of a step's
// docket.calls points:
//   - Calls is the sum of all of them.
//   - Hits[tier] is the sum of those with docket.tier=tier. An answer from
//     any tier is a hit: a stored result found before any flight, or by the
//     flight the call started or joined, and a stored failure
//     (WithErrorCaching), which is also an error.
//   - Misses[reason] is the sum of those with docket.miss_reason=reason:
//     the calls that got past keying but no stored result. A point has a
//     tier or a miss reason, never both; one with neither counts calls that
//     failed before any lookup (an input that cannot be keyed, a Workflow
//     call without an execution).
//   - SharedWaits is the sum of those with docket.flight.joined=true: calls
//     that joined a flight another caller started, whatever it came to.
//   - Errors is the sum of those with docket.result=error.
//
// Runs and RunTime are the count and sum of docket.step.duration, and
// MeanRunTime is their quotient; the metric leaves out only the runs no
// call reports: those of flights whose starting caller left (its context
// ended) before the run did. A step's hit ratio is its calls with a tier over all of them;
// its result=miss calls are the calls that ran the step and got its result.
//
// Attribute sets are made once per step and combination of attributes,
// which stays small (results × (tiers + reasons + 1) × joined or not):
// recording a call allocates nothing.
//
// # Cost when nobody records
//
// The observer sees every call, front-tier hits included, so it must cost
// next to nothing when nothing is recorded. Starting a span through the
// global default provider, which records nothing, costs more than a whole
// front-tier hit, so the observer does not start one when it knows nobody
// would record it:
//
//   - The providers are looked up on first use, and again whenever otel's
//     global providers are replaced (otel.SetTracerProvider,
//     otel.SetMeterProvider): checking that costs two atomic loads per call.
//   - The first call after a lookup starts a real span. If the tracer hands
//     back its parent's span context unchanged and does not record, as a
//     no-op tracer does (the global default with no SDK installed,
//     noop.TracerProvider), no later call starts a span. An SDK is never
//     taken for a no-op: it makes a new span ID for every span, sampled or
//     not, and its sampler decides per span as usual.
//   - Metric instruments say whether they record (Enabled). When neither
//     spans nor call metrics are recorded, Start returns at once and the
//     call is not observed further.
//
// A span the sampler drops (not recording) stays in the context, so the
// step's own spans follow its decision, but gets no attributes and no
// CallSpan.
package tracing
