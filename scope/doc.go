// Package scope defines the two persistence scopes of Docket and the
// execution that Workflow-scoped results belong to.
//
// A [Scope] decides what a stored result is keyed on:
//
//   - [Global]: step name, step version and input. A result is shared by every
//     execution, in this process and (with a durable store) in later ones,
//     until its TTL expires.
//   - [Workflow]: the execution ID as well. A result is shared only within one
//     execution: calls in the same execution are deduplicated, another
//     execution runs the step again.
//
// An execution is begun with [Begin], which puts it in the context, and ended
// with [Execution.End]. End(nil) removes the execution's Workflow-scoped
// entries from every store its steps used; End with a non-nil error keeps
// them, so that a re-run with the same ID resumes from its checkpoints.
//
// # Retention: idempotent re-runs
//
// An execution begun [WithRetention](d) keeps its Workflow-scoped entries
// at End(nil) too, for d: End asks every store its steps used (each a
// [Retainer]) to keep them until End's time plus d, or until their own
// expiry where that is earlier. A re-run with the same ID within d
// replays the completed execution's results instead of running its steps
// again (an email is not sent twice); after d the entries are expired,
// served to no one, and removed as every expired entry is. Without the
// option End(nil) removes them at once.
//
//   - Only End(nil) retains: End with a non-nil error keeps the entries
//     until their TTL, with or without the option.
//   - Retention never lengthens an entry's life: a re-run that ends with a
//     retention of its own can only shorten it, and one that ends with
//     End(nil) and no retention removes the entries.
//   - A call still in flight when End(nil) runs stores nothing, retained or
//     not ([Execution.Dropped]).
//   - A store that is not a Retainer, or fails to retain, is purged as
//     without the option, so no entry outlives the retention; End then
//     returns an error saying so, which wraps errors.ErrUnsupported when
//     the store cannot retain at all. Every store of Docket retains.
//   - Global entries are never touched.
package scope
