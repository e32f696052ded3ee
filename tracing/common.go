package tracing

import "go.opentelemetry.io/otel/attribute"

// ScopeName is the instrumentation scope of the tracer and meter this
// package uses: spans and metrics from Docket carry it.
const ScopeName = "github.com/docket-go/docket/tracing"

// Version is the version of this instrumentation, recorded with ScopeName.
const Version = "0.1.0"

// Attribute keys of the spans and metrics.
const (
	// StepKey is the step name (spans, every metric).
	StepKey = attribute.Key("docket.step")
	// StepVersionKey is the step's version (WithVersion), when it has one
	// (spans).
	StepVersionKey = attribute.Key("docket.step.version")
	// ScopeKey is the step's scope: "workflow" or "global" (spans, metrics).
	ScopeKey = attribute.Key("docket.scope")
	// ExecutionIDKey is the ID of the execution the call ran in, if any
	// (spans only: it has one value per run).
	ExecutionIDKey = attribute.Key("docket.execution_id")
	// ResultKey says how the call was answered: "hit" (a stored result, from
	// the tier TierKey names: found before any flight, or by the flight this
	// caller started, in a slower tier), "miss" (this caller's flight ran the
	// step), "shared" (it waited on a flight another caller started) or
	// "error" (the call returned an error: also a stored failure a tier
	// answered with, under WithErrorCaching) (spans, docket.calls).
	ResultKey = attribute.Key("docket.result")
	// TierKey names the tier that answered ("memory", "badger", ...) with a
	// stored result or a stored failure: on hits, on shared calls whose
	// flight found a stored result and on errors a stored failure answered;
	// absent when the step ran (spans, docket.calls). On docket.calls it
	// marks the hits: a step's hit ratio is its calls with a tier over all
	// of them.
	TierKey = attribute.Key("docket.tier")
	// MissReasonKey says why the front tier did not answer: "absent",
	// "expired", "corrupt" (unreadable, overwritten), "fault" (the store
	// failed), "refresh" or "bypass" (the call did not look). On spans it is
	// set for every call the front tier did not answer, hits from a slower
	// tier included; on docket.calls only for the calls no tier answered,
	// so that it marks the misses.
	MissReasonKey = attribute.Key("docket.miss_reason")
	// FlightJoinedKey is true on a call that joined a flight another caller
	// had started, rather than starting one (a shared wait): every call
	// with result "shared", and the errors of callers whose flight failed or
	// who left it (spans, docket.calls).
	FlightJoinedKey = attribute.Key("docket.flight.joined")
	// KeyHashKey is the first 8 bytes of the call's key digest, in hex:
	// enough to tell keys apart in a trace, never the input itself (spans).
	KeyHashKey = attribute.Key("docket.key_hash")
	// FlightWaitersKey is how many callers the flight answered, on the span
	// of the caller that started it (spans).
	FlightWaitersKey = attribute.Key("docket.flight.waiters")
	// StoreKey names a store, as its Name method does: "memory",
	// "memory+badger" (docket.store.faults, docket.execution.purged, span
	// events).
	StoreKey = attribute.Key("docket.store")
	// OperationKey is the store operation that failed: "read", "write" or
	// "purge" (docket.store.faults, span events).
	OperationKey = attribute.Key("docket.operation")
	// LinkKindKey is set on the links of a call's span: "flight" (a waiter's
	// link to the span of the call whose flight it joined) or "producer"
	// (a stored result's link to the span of the run that produced it).
	LinkKindKey = attribute.Key("docket.link.kind")
)

// Values of LinkKindKey.
const (
	LinkFlight   = "flight"
	LinkProducer = "producer"
)

// Metric instrument names.
const (
	// CallsMetric counts calls by step, scope, result, tier (hits), miss
	// reason (misses) and flight.joined (shared waits).
	CallsMetric = "docket.calls"
	// StepDurationMetric is a histogram of how long step runs took, in
	// seconds, by step and scope: failed, panicking and Bypass runs
	// included.
	StepDurationMetric = "docket.step.duration"
	// FlightWaitersMetric is a histogram of how many callers each flight
	// answered (1 when nobody joined), by step and scope: flights that ran
	// the step and flights that found its result in a slower tier.
	FlightWaitersMetric = "docket.flight.waiters"
	// StoreFaultsMetric counts store faults, those that did not fail a call
	// included, by step, scope, store and operation ("read", "write"); a
	// failed purge at the end of an execution, by store and operation
	// ("purge").
	StoreFaultsMetric = "docket.store.faults"
	// PurgedMetric counts the entries End(nil) of executions removed, by
	// store.
	PurgedMetric = "docket.execution.purged"
)

// PurgedEvent is the event added to the span of the context an execution was
// ended with (EndContext), when that span records: attributes StoreKey,
// ExecutionIDKey and PurgedCountKey. (Store faults are recorded on the
// call's span as "exception" events, with StoreKey and OperationKey.)
const PurgedEvent = "docket.execution.purged"

// PurgedCountKey is the number of entries removed, on a PurgedEvent.
const PurgedCountKey = attribute.Key("docket.purged.count")
