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
// value); a value reached twice through different pointers is encoded twice.
//
// An input that cannot be keyed is an *[UnkeyableError] (errors.Is
// [ErrUnkeyable]) naming the type and field path: a func, chan or unsafe
// pointer anywhere outside an interface is found from the type alone by
// [Check] and [NewFor]; one inside an interface, and a cyclic value, when a
// call is keyed.
//
// [For] is the typed, allocation-free path the middleware uses; it gives
// the same sums as [Hash], and so the same keys as [Default]. [Keyer] is
// the interface for custom strategies (per tenant, ignoring fields, ...); a
// custom Keyer computes a digest with [Hash] over whatever identifies the
// call and turns it into a key with [Make].
package keyer
