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
package scope
