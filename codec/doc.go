// Package codec turns step results into bytes for the byte tiers (Badger,
// and later Redis and SQLite) and back.
//
// A [Codec] is not generic: one value serves every result type. The
// middleware binds it to a step's result type once, with [Bind], and passes
// the bound codec to its store. A byte tier encodes a result once, when it
// writes it, and decodes it once, on a back-tier hit; the front tier then
// keeps the decoded value. Front tiers never call the codec.
//
// # Codec IDs
//
// Every stored entry records the ID of the codec that wrote it (see
// backends.EncodeEntry), and only a codec with the same ID decodes it: any
// other reads the entry as corrupt, which the middleware treats as a miss
// (the step runs again and the entry is overwritten). So changing a step's
// codec is safe, and the IDs are part of the stored format, never renumbered
// or reused:
//
//	ID        codec
//	0         invalid, never written
//	1         JSON     encoding/json
//	2         Gob      encoding/gob
//	3         Msgpack  github.com/vmihailenco/msgpack/v5, the Default
//	4         Proto    google.golang.org/protobuf, for proto.Message results
//	5-127     reserved for codecs Docket may add
//	128-255   user-defined codecs (MinUserID and up)
//
// Two codecs that read the same bytes differently need different IDs, and
// that includes a built-in codec with other options (ExampleCodec: JSON that
// decodes numbers as json.Number). Bind panics on a codec that is not one of
// this package's and has an ID below MinUserID.
//
// Protobuf messages are always encoded with Proto: when a step's result type
// (or its pointer) implements proto.Message, Bind ignores the codec it is
// given.
//
// # What a result must look like to survive a byte tier
//
// A back-tier hit returns what the codec wrote, not the value the step
// returned. With the Default codec (and JSON), a result round-trips when:
//
//   - Its state is in exported fields. Every codec here skips unexported
//     fields; a type that keeps state in them implements the codec's own
//     interfaces: for Msgpack, msgpack.CustomEncoder and CustomDecoder, or
//     encoding.BinaryMarshaler and BinaryUnmarshaler (or the Text pair); for
//     JSON, json.Marshaler and Unmarshaler; for Gob, gob.GobEncoder and
//     GobDecoder or the Binary pair.
//   - Its types are concrete. An interface-typed field or result (any,
//     map[string]any) comes back in the codec's generic form: maps as
//     map[string]any, structs as maps, and numbers as JSON's float64 (integers
//     above 2⁵³ rounded) or as the smallest MessagePack type that holds them
//     (int8 to int64, uint8 to uint64). Gob keeps the type but needs
//     gob.Register for anything but basic types.
//   - Its times are compared with Equal. A time.Time keeps its instant to the
//     nanosecond and loses its monotonic reading. Msgpack returns it in
//     time.Local; JSON and Gob keep its offset but not its zone.
//   - Its type keeps its shape, or the step's version changes with it. An
//     entry written before a field was renamed still decodes, into a result
//     whose renamed field is zero.
//
// Msgpack names a struct field by its msgpack tag, else its json tag, else its
// Go name, so that a field kept out of JSON with `json:"-"` is not stored
// either. Funcs and channels cannot be encoded at all: such a result is
// returned to its callers, but its write fails and is reported (an error
// with middleware.WithStrict).
//
// What each codec keeps, as TestFidelity checks it:
//
//	                            JSON              Gob                 Msgpack
//	time.Time                   instant, offset   instant, offset     instant, in Local
//	nil / empty slice           nil / empty       nil / nil           nil / empty
//	nil / empty map             nil / empty       nil / empty         nil / empty
//	pointer to a zero value     kept              becomes nil         kept
//	nil pointer result          nil               cannot be encoded   nil
//	int in map[string]any       float64           int                 int8 … uint64
//	struct in an any field      map[string]any    error, until        map[string]any
//	                                              gob.Register
//	unexported field            dropped           dropped             dropped
//	embedded exported struct    kept              kept                kept
//	embedded unexported struct  kept              dropped             kept
//	field tagged `json:"-"`     not stored        stored              not stored
//	NaN, ±Inf                   cannot be encoded kept                kept
//
// With Proto, a nil message reads back as an empty one.
//
// # Checking a result type
//
// [CheckRoundTrip] tells, from the type alone, whether every value of a
// result type comes back from a codec exactly: it names the type and field
// path of an unexported field, a skipped field (`json:"-"`), an interface, a
// func or a chan, and trusts types that encode themselves. The middleware
// calls it when a step whose store has a byte tier is wrapped, and panics
// with its error, so a result that would come back zeroed after a restart
// is found before the first call. An interface result type round-trips once
// its concrete types are registered with [Register]: Bind then stores the
// concrete type's name with each value, and a typed nil stays typed.
//
// # Bad bytes
//
// Decode on bytes the codec did not write for the bound type returns an error
// that wraps backends.ErrCorrupt, and never panics: a panic in the decoder
// (a user's UnmarshalJSON, say) is recovered into that error. Allocation is
// bounded by a multiple of the input: MessagePack declares container lengths
// up front, and the msgpack decoder trusts them (five bytes declaring 2³²
// elements, decoded into an any, made it allocate 64 GiB, a fatal error no
// recover catches), so Msgpack checks the framing of the whole value before
// decoding it. encoding/gob allocates each message's declared length before
// reading it, so Gob checks first that every declared length fits in the
// data. encoding/json and protobuf bound their own allocations. The entry's CRC-32C catches damaged bytes before the codec
// sees them; these checks are for what it cannot catch, such as an entry
// written by another version of the program. FuzzDecode runs the Default
// codec over arbitrary bytes.
//
// # Choosing the default
//
// Msgpack is the default: on a typical small result it is faster than JSON
// and Gob both ways, with the smallest encoding and the fewest allocations,
// and it keeps NaN and infinities. Gob is a poor fit for entries read one at
// a time (each carries the description of its types) and loses the most;
// JSON is the choice when stored values must be readable by other tools.
// The measurements behind this are in the package's README.md, regenerated
// with BenchmarkRoundTrip.
package codec
