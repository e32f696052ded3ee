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
// # Bad bytes
//
// Decode on bytes the codec did not write for the bound type returns an error
// that wraps backends.ErrCorrupt, and never panics: a panic in the decoder
// (a user's UnmarshalJSON, say) is recovered into that error. Allocation is
// bounded by the input: MessagePack declares container lengths up front, and
// the msgpack decoder trusts them (five bytes declaring 2³² elements, decoded
// into an any, made it allocate 64 GiB, a fatal error no recover catches),
// so Msgpack checks the framing of the whole value before decoding it, which
// costs about 6.5% of a decode. encoding/json, encoding/gob and protobuf bound
// their own allocations. The entry's CRC-32C catches damaged bytes before the codec
// sees them; these checks are for what it cannot catch, such as an entry
// written by another version of the program. FuzzDecode runs the Default
// codec over arbitrary bytes.
//
// # Choosing the default
//
// BenchmarkRoundTrip encodes and decodes through Bind, as the middleware
// does, (a) a small struct {ID, Name string; Age int; Tags []string; Created
// time.Time} and (b) a struct of about 10 KiB (JSON-encoded): 44 nested line
// items, each with strings, numbers, a []string, a *float64 and a time, a
// map of 20 strings and a 1 KiB []byte. BenchmarkEncode and BenchmarkDecode
// split the two halves: encoding is the codec's share of a miss, decoding its
// share of a back-tier hit. Medians of 6 runs on a shared 2-core AMD EPYC
// (Go 1.26, linux/amd64), with other benchmarks running beside them (hence
// the ± of 7 to 41% on sec/op; the ratios below are within this one run):
//
//	go test -run '^$' -bench . -benchmem -count 6 ./codec/ > /tmp/codec.txt
//	benchstat /tmp/codec.txt
//
//	                 round trip   encode    decode    B/op     allocs  bytes
//	small  json        5.55µs     1.16µs    4.10µs      864      18     128
//	       gob        41.3µs      5.74µs   28.2µs     9.97Ki    212     183
//	       msgpack     3.16µs     0.86µs    1.57µs      672      13      82
//	large  json       284µs      76.6µs   217µs      40.5Ki    462   9.76Ki
//	       gob        157µs      61.8µs    94.4µs    68.5Ki    798   6.69Ki
//	       msgpack    101µs      48.5µs    88.1µs    36.7Ki    393   7.54Ki
//
// (B/op and allocs are per round trip. The framing check, included above,
// takes 0.10µs of the small decode and 5.6µs of the large one.)
//
// Msgpack is the default. On the small result, the common case for a step,
// it is 1.8 times as fast as JSON and 13 times as fast as Gob per round trip,
// with the smallest encoding (64% of JSON's) and the fewest allocations. On
// the large one it is 2.8 times as fast as JSON and 1.6 times as fast as Gob
// (about the same to decode), with the least memory allocated; only Gob's
// encoding is smaller (89% of Msgpack's).
//
// Gob is a poor fit for entries read one at a time: each must carry the
// description of its types (a fresh Encoder per value), which is most of its
// small encoding and makes its small decode 18 times as slow as Msgpack's.
// It also loses the most (empty slices, pointers to zero values, embedded
// unexported structs), stores fields tagged `json:"-"`, and cannot encode a
// nil pointer.
//
// JSON is slower than Msgpack on every measure, and its encoding is 30 to 56%
// larger. Its decoding of numbers in interfaces as float64 is a correctness
// trap for results of type any (an int64 ID above 2⁵³ comes back rounded),
// and it cannot encode NaN or infinities. It is the choice when stored values
// must be readable by other tools.
//
// Msgpack's costs: times come back in time.Local, numbers in interfaces come
// back in a width that depends on their value, and it adds a dependency
// (github.com/vmihailenco/msgpack/v5 and its tagparser, both pure Go).
package codec
