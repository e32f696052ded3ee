// Package keyer turns a step call into the key its result is stored under.
//
// A key is the SHA-256 digest of, length-delimited: a format tag, the scope,
// the step name, the step version, a fingerprint of the input's type (its
// full name and shape, computed once per type) and the canonical encoding of
// the input; for Workflow scope the key also carries the execution ID. No
// choice of names or inputs makes two different calls share a key.
//
// The canonical encoding walks the input with reflect and is deterministic
// across processes, platforms and Go versions: it uses no fmt, gob or JSON,
// sorts map entries by their encoding, and writes every field, unexported
// ones included. Keys are equal when inputs are reflect.DeepEqual, with
// three refinements: NaN equals NaN, -0 equals +0, and values that define
// their own identity are keyed by it:
//
//   - a [Keyable] by the bytes of AppendKey,
//   - a protobuf message (passed by pointer) by its deterministic marshal,
//   - a time.Time by its instant (location and monotonic reading ignored),
//   - an encoding.BinaryMarshaler by MarshalBinary.
//
// Only a method of the value's own type counts: a struct that embeds a
// time.Time has time's MarshalBinary, which knows nothing of the struct's
// other fields, so a struct whose method may come from an embedded field is
// walked field by field (its embedded time.Time keyed by its instant). Such
// values cannot be reached through an unexported field (reflect cannot call
// their methods there), which is an error rather than a silently different
// key. An interface value is keyed by its dynamic type and value, so
// A(1) and B(1), or two message types with the same wire bytes, differ.
// Pointers are followed (a nil pointer differs from a pointer to a zero
// value). A *time.Location is keyed by its name, and time.Local as "Local"
// in every process, whatever TZ says: a step whose result depends on the
// zone takes an explicit location (time.LoadLocation).
//
// # Bounds
//
// Keying is linear in the input's size. What a pointer points to, the
// elements of a slice and the entries of a map are hashed into a fixed-size
// digest when they are longer than a few bytes, so a map's entries are
// sorted without copying their subtrees, and a pointer, slice or map met
// again in one input contributes the digest of its first visit instead of
// being walked again. Aliasing never changes a key: a value that reaches one
// pointer twice keys as the equal value with two separate pointers.
//
// Two limits make every input cost bounded work, and neither can crash the
// process: pointers, slices, maps and interfaces nested more than
// [MaxDepth] deep, and an encoding of more than [MaxSize] bytes (strings,
// byte slices and values copied into interfaces count at each occurrence,
// pointers, slices and maps once), are an *[UnkeyableError] naming the
// path where the limit was reached.
//
// An input that cannot be keyed is an *[UnkeyableError] (errors.Is
// [ErrUnkeyable]) naming the type and field path: a func, chan or unsafe
// pointer anywhere outside an interface is found from the type alone by
// [Check] and [NewFor]; one inside an interface, a cyclic value and one past
// the bounds above, when a call is keyed.
//
// The type fingerprint covers the type's name and package path and its
// whole shape: field names with the package path of unexported ones, struct
// tags, which fields are embedded, array lengths, and the method sets
// (names and signatures) of interface types. Distinct types never share a
// key, except two types of one name declared in two functions of one
// package.
//
// [For] is the typed, allocation-free path the middleware uses; it gives
// the same sums as [Hash], and so the same keys as [Default]. [Keyer] is
// the interface for custom strategies (per tenant, ignoring fields, ...); a
// custom Keyer computes a digest with [Hash] over whatever identifies the
// call and turns it into a key with [Make]. Stores look entries up by scope,
// execution and digest only, so a custom digest must cover the step (Hash
// does: its first argument is the step).
//
// [For.Sum] allocates nothing for a small input of a pure type (no maps,
// interfaces or types that define their own key).
package keyer
