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
	// "error" (spans, docket.calls). So docket.calls with result=miss counts
	// the runs of the step, and a step's hit ratio is its hit calls over all
	// of them.
	ResultKey = attribute.Key("docket.result")
	// TierKey names the tier that answered ("memory", "badger", ...), for
	// hits and for shared calls whose flight found a stored result; absent
	// when the step ran (spans, docket.calls).
	TierKey = attribute.Key("docket.tier")
	// MissReasonKey says why the front tier did not answer (on misses,
	// shared calls, and hits from a slower tier): "absent",
	// "expired", "corrupt" (unreadable, overwritten) or "fault" (the store
	// failed) (spans).
	MissReasonKey = attribute.Key("docket.miss_reason")
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
	// CallsMetric counts calls by step, scope, result and tier.
	CallsMetric = "docket.calls"
	// StepDurationMetric is a histogram of how long step runs took, in
	// seconds, by step and scope.
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
