package backends

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// The stored entry format, shared by every byte tier (Badger, and later Redis
// and SQLite), so that an entry means the same thing wherever it lands.
//
// Version 1, all integers little-endian:
//
//	offset  size  field
//	0       1     magic, entryMagic
//	1       1     format version, 1
//	2       1     codec ID (Codec.ID)
//	3       8     created-at, Unix nanoseconds (0: unknown)
//	11      8     expires-at, Unix nanoseconds (0: never)
//	19      n     producing execution ID: uvarint length, then the bytes
//	...     n     extensions: uvarint length, then records of
//	              (uvarint tag, uvarint length, value), described below
//	...     n     payload: the codec's encoding of the value
//	len-4   4     CRC-32C (Castagnoli) of every byte before it
//
// Extension records, in increasing tag order, each tag at most once:
//
//	tag  value
//	1    Entry.Origin, as the observer gave it (package tracing: 16-byte
//	     trace ID, then 8-byte span ID); absent when Origin is empty
//	2    Entry.Version, the step's code version; absent when empty
//	3    Entry.Step, the step's name; absent when empty
//	4    Entry.Failure: the code as a uvarint length and bytes, then the
//	     message; absent for a result. An entry with it has an empty
//	     payload, which is not given to the codec
//
// The extension section is where later fields go without a new format
// version: a reader skips records whose tag it does not know, so entries
// written by a newer Docket stay readable, and entries written before a tag
// existed (an empty section) read with that field empty. A known tag that
// appears twice is corrupt.
// A change that an old reader must not misread (a different layout, another
// checksum) takes a new format version, which old readers report as corrupt,
// so that the middleware overwrites the entry rather than misread it.
//
// The checksum covers the whole entry: a flipped bit anywhere, or a
// truncation, is caught before the codec sees the payload.
const (
	entryMagic   = 0xDC
	entryVersion = 1

	entryFixedLen = 19 // magic, version, codec, created, expires
	entryCRCLen   = 4
	// entryMinLen is a version-1 entry with an empty execution ID, no
	// extensions and an empty payload.
	entryMinLen = entryFixedLen + 1 + 1 + entryCRCLen
)

// Extension tags; see the format above. Tag 0 is never used.
const (
	extOrigin  = 1
	extVersion = 2
	extStep    = 3
	extFailure = 4
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// EncodeEntry returns the stored form of e: a header with the format version,
// c.ID(), e.Created, e.Expires, e.Execution, e.Origin, e.Version and e.Step, then
// c.Encode(e.Value) (nothing for a failure, whose e.Failure.Code and
// Message are stored instead), then a checksum. e.Tier and e.Failure.Err are
// not stored.
//
// Times are stored as Unix nanoseconds, so they survive to the nanosecond
// between the years 1678 and 2262, and lose their location and monotonic
// reading; times outside that range are clamped to it.
func EncodeEntry(e Entry, c Codec) ([]byte, error) {
	var payload []byte
	if e.Failure == nil {
		var err error
		if payload, err = c.Encode(e.Value); err != nil {
			return nil, fmt.Errorf("backends: encode entry value: %w", err)
		}
	}
	extLen := extensionsLen(e)
	n := entryFixedLen +
		uvarintLen(uint64(len(e.Execution))) + len(e.Execution) +
		uvarintLen(uint64(extLen)) + extLen +
		len(payload) + entryCRCLen
	b := make([]byte, entryFixedLen, n)
	b[0] = entryMagic
	b[1] = entryVersion
	b[2] = c.ID()
	binary.LittleEndian.PutUint64(b[3:], uint64(unixNanos(e.Created)))
	binary.LittleEndian.PutUint64(b[11:], uint64(unixNanos(e.Expires)))
	b = binary.AppendUvarint(b, uint64(len(e.Execution)))
	b = append(b, e.Execution...)
	b = binary.AppendUvarint(b, uint64(extLen))
	b = appendExtensions(b, e)
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32c)), nil
}

// DecodeEntry reads an entry made by EncodeEntry and decodes its value with
// c. An entry whose Expires has passed gives ErrExpired (which is also
// ErrNotFound). Every other failure wraps ErrCorrupt: a truncated entry, a
// checksum mismatch, an unknown format version, a codec ID other than c.ID(),
// and an error from c.Decode. DecodeEntry never panics on bad bytes.
//
// The payload given to c.Decode is a sub-slice of b: a codec that keeps it
// (rather than copying out of it) must be given a b the caller will not reuse.
func DecodeEntry(b []byte, c Codec) (Entry, error) {
	return decodeEntry(b, c, time.Now().UnixNano())
}

// entryHeader is what decodeHeader reads.
type entryHeader struct {
	codec     uint8
	created   int64
	expires   int64
	execution []byte
	ext       []byte
	origin    []byte // the extOrigin record's value, a sub-slice of ext
	version   []byte // the extVersion record's value, a sub-slice of ext
	step      []byte // the extStep record's value, a sub-slice of ext
	failure   []byte // the extFailure record's value, a sub-slice of ext; nil if absent
	payload   []byte
}

func decodeEntry(b []byte, c Codec, now int64) (Entry, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return Entry{}, err
	}
	if id := c.ID(); h.codec != id {
		return Entry{}, fmt.Errorf("%w: written with codec %d, read with codec %d", ErrCorrupt, h.codec, id)
	}
	// Before decoding: an expired value is never returned, so do not pay
	// for it.
	if h.expires != 0 && h.expires <= now {
		return Entry{}, ErrExpired
	}
	e := Entry{
		Created:   fromUnixNanos(h.created),
		Expires:   fromUnixNanos(h.expires),
		Execution: string(h.execution),
	}
	if h.failure != nil {
		code, msg, err := lengthPrefixed(h.failure, "failure code")
		if err != nil {
			return Entry{}, err
		}
		if len(h.payload) != 0 {
			return Entry{}, fmt.Errorf("%w: a failure with a payload", ErrCorrupt)
		}
		e.Failure = &Failure{Code: string(code), Message: string(msg)}
	} else {
		v, err := c.Decode(h.payload)
		if err != nil {
			return Entry{}, fmt.Errorf("%w: decode value (codec %d): %w", ErrCorrupt, h.codec, err)
		}
		e.Value = v
	}
	if len(h.version) > 0 {
		e.Version = string(h.version)
	}
	if len(h.step) > 0 {
		e.Step = string(h.step)
	}
	if len(h.origin) > 0 {
		// A copy: b may be a buffer the caller reuses.
		e.Origin = append([]byte(nil), h.origin...)
	}
	return e, nil
}

var errTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)

// decodeHeader checks b's framing and checksum and splits it into fields.
func decodeHeader(b []byte) (entryHeader, error) {
	var h entryHeader
	if len(b) < 2 {
		return h, errTruncated
	}
	if b[0] != entryMagic {
		return h, fmt.Errorf("%w: not a docket entry (first byte %#02x)", ErrCorrupt, b[0])
	}
	// The version decides where the checksum is, so it is read first.
	if b[1] != entryVersion {
		return h, fmt.Errorf("%w: unknown format version %d (this Docket reads version %d)", ErrCorrupt, b[1], entryVersion)
	}
	if len(b) < entryMinLen {
		return h, errTruncated
	}
	body, sum := b[:len(b)-entryCRCLen], b[len(b)-entryCRCLen:]
	if got, want := crc32.Checksum(body, crc32c), binary.LittleEndian.Uint32(sum); got != want {
		return h, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", ErrCorrupt)
	}
	h.codec = body[2]
	h.created = int64(binary.LittleEndian.Uint64(body[3:]))
	h.expires = int64(binary.LittleEndian.Uint64(body[11:]))
	rest := body[entryFixedLen:]
	var err error
	if h.execution, rest, err = lengthPrefixed(rest, "execution ID"); err != nil {
		return h, err
	}
	if h.ext, rest, err = lengthPrefixed(rest, "extensions"); err != nil {
		return h, err
	}
	if h.origin, h.version, h.step, h.failure, err = readExtensions(h.ext); err != nil {
		return h, err
	}
	h.payload = rest
	return h, nil
}

// extensionsLen is the length of the extension section's records for e.
func extensionsLen(e Entry) int {
	n := 0
	if len(e.Origin) > 0 {
		n += uvarintLen(extOrigin) + uvarintLen(uint64(len(e.Origin))) + len(e.Origin)
	}
	if len(e.Version) > 0 {
		n += uvarintLen(extVersion) + uvarintLen(uint64(len(e.Version))) + len(e.Version)
	}
	if len(e.Step) > 0 {
		n += uvarintLen(extStep) + uvarintLen(uint64(len(e.Step))) + len(e.Step)
	}
	if f := e.Failure; f != nil {
		v := failureLen(f)
		n += uvarintLen(extFailure) + uvarintLen(uint64(v)) + v
	}
	return n
}

// appendExtensions appends the extension records of e, without the
// section's length.
func appendExtensions(b []byte, e Entry) []byte {
	if len(e.Origin) > 0 {
		b = binary.AppendUvarint(b, extOrigin)
		b = binary.AppendUvarint(b, uint64(len(e.Origin)))
		b = append(b, e.Origin...)
	}
	if len(e.Version) > 0 {
		b = binary.AppendUvarint(b, extVersion)
		b = binary.AppendUvarint(b, uint64(len(e.Version)))
		b = append(b, e.Version...)
	}
	if len(e.Step) > 0 {
		b = binary.AppendUvarint(b, extStep)
		b = binary.AppendUvarint(b, uint64(len(e.Step)))
		b = append(b, e.Step...)
	}
	if f := e.Failure; f != nil {
		b = binary.AppendUvarint(b, extFailure)
		b = binary.AppendUvarint(b, uint64(failureLen(f)))
		b = binary.AppendUvarint(b, uint64(len(f.Code)))
		b = append(b, f.Code...)
		b = append(b, f.Message...)
	}
	return b
}

// failureLen is the length of the extFailure record's value for f.
func failureLen(f *Failure) int {
	return uvarintLen(uint64(len(f.Code))) + len(f.Code) + len(f.Message)
}

// readExtensions checks the framing of the extension records and returns
// the values of the tags it knows; it skips the others.
func readExtensions(ext []byte) (origin, version, step, failure []byte, err error) {
	seenOrigin, seenVersion, seenStep := false, false, false
	for len(ext) > 0 {
		tag, w, err := uvarint(ext, "extension tag")
		if err != nil {
			return nil, nil, nil, nil, err
		}
		var v []byte
		if v, ext, err = lengthPrefixed(ext[w:], "extension"); err != nil {
			return nil, nil, nil, nil, err
		}
		switch tag {
		case extOrigin:
			if seenOrigin {
				return nil, nil, nil, nil, fmt.Errorf("%w: origin extension repeated", ErrCorrupt)
			}
			seenOrigin, origin = true, v
		case extVersion:
			if seenVersion {
				return nil, nil, nil, nil, fmt.Errorf("%w: version extension repeated", ErrCorrupt)
			}
			seenVersion, version = true, v
		case extStep:
			if seenStep {
				return nil, nil, nil, nil, fmt.Errorf("%w: step extension repeated", ErrCorrupt)
			}
			seenStep, step = true, v
		case extFailure:
			if failure != nil {
				return nil, nil, nil, nil, fmt.Errorf("%w: failure extension repeated", ErrCorrupt)
			}
			failure = v[:len(v):len(v)] // not nil, even when empty
		}
	}
	return origin, version, step, failure, nil
}

// lengthPrefixed splits a uvarint length and that many bytes off b.
func lengthPrefixed(b []byte, what string) (field, rest []byte, err error) {
	n, w, err := uvarint(b, what)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(b)-w) {
		return nil, nil, fmt.Errorf("%w: %s overruns the entry", ErrCorrupt, what)
	}
	end := w + int(n)
	return b[w:end:end], b[end:], nil
}

// uvarint reads a uvarint in its shortest form, as EncodeEntry writes it: an
// entry has one encoding, so a decoded entry re-encodes to the same bytes.
func uvarint(b []byte, what string) (uint64, int, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || w != uvarintLen(n) {
		return 0, 0, fmt.Errorf("%w: bad %s length", ErrCorrupt, what)
	}
	return n, w, nil
}

func uvarintLen(n uint64) int {
	w := 1
	for n >= 0x80 {
		n >>= 7
		w++
	}
	return w
}

var (
	minNanosTime = time.Unix(0, math.MinInt64)
	maxNanosTime = time.Unix(0, math.MaxInt64)
)

// unixNanos gives t in the header's form: 0 for the zero time, which the
// header reads as "unknown" (Created) or "never" (Expires), so a real time
// never encodes as 0.
func unixNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNanosTime):
		return math.MinInt64
	case t.After(maxNanosTime):
		return math.MaxInt64
	}
	if n := t.UnixNano(); n != 0 {
		return n
	}
	// The Unix epoch itself: one nanosecond earlier, so that an expiry
	// stays in the past rather than becoming "never".
	return -1
}

func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
