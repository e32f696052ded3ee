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
// (docket.miss_reason: absent, expired, corrupt, fault), the key's short
// hash and, for the caller that started a flight, how many callers it
// answered. An answer from any tier is a hit, by tier: also one that a
// flight found in a slower tier (Badger after a restart, Redis filled by
// another process). A miss is a run of the step.
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
//   - docket.calls (counter): calls by step, scope, result and tier. A
//     step's hit ratio is its hit calls over all of them; its miss calls
//     are its runs, as many as docket.step.duration records.
//   - docket.step.duration (histogram, seconds): step runs, by step and
//     scope.
//   - docket.flight.waiters (histogram): callers per flight, by step and
//     scope.
//   - docket.store.faults (counter): store faults by step, scope, store and
//     operation (read, write, purge).
//   - docket.execution.purged (counter): entries removed by the end of
//     executions, by store.
//
// Attribute sets are made once per step, result and tier: recording a call
// allocates nothing.
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
