package backends

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"testing"
	"time"
)

// stringCodec stores a string as its bytes; it is deterministic, so an entry
// that decodes re-encodes to the same bytes.
type stringCodec struct{ id uint8 }

func (c stringCodec) ID() uint8 { return c.id }

func (stringCodec) Encode(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("stringCodec: %T is not a string", v)
	}
	return []byte(s), nil
}

func (stringCodec) Decode(data []byte) (any, error) {
	if bytes.HasPrefix(data, []byte("undecodable")) {
		return nil, errors.New("stringCodec: undecodable payload")
	}
	return string(data), nil
}

var strCodec = stringCodec{id: 7}

// rawEntry builds version-1-shaped bytes field by field, with a correct
// checksum, so that tests can make entries EncodeEntry never would.
func rawEntry(version, codec uint8, created, expires int64, exec string, ext []byte, payload string) []byte {
	b := []byte{entryMagic, version, codec}
	b = binary.LittleEndian.AppendUint64(b, uint64(created))
	b = binary.LittleEndian.AppendUint64(b, uint64(expires))
	b = binary.AppendUvarint(b, uint64(len(exec)))
	b = append(b, exec...)
	b = binary.AppendUvarint(b, uint64(len(ext)))
	b = append(b, ext...)
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

func sameEntry(t *testing.T, got, want Entry) {
	t.Helper()
	if got.Value != want.Value || !got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) ||
		got.Execution != want.Execution || !bytes.Equal(got.Origin, want.Origin) || got.Version != want.Version || got.Step != want.Step || got.Tier != "" {
		t.Fatalf("decoded %+v\nwant    %+v", got, want)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	created := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	for _, tc := range []struct {
		name string
		e    Entry
	}{
		{"empty", Entry{Value: ""}},
		{"all fields", Entry{Value: "result", Created: created, Expires: created.Add(100 * 365 * 24 * time.Hour), Execution: "exec_12345"}},
		{"no expiry", Entry{Value: "v", Created: created, Execution: "e"}},
		{"long execution ID", Entry{Value: "v", Created: created, Execution: strings.Repeat("x", 300)}},
		{"binary payload", Entry{Value: "\x00\xff\xdc\x01", Created: created}},
		{"large payload", Entry{Value: strings.Repeat("payload ", 10_000), Created: created}},
		{"created at the epoch", Entry{Value: "v", Created: time.Unix(0, 0)}},
		{"origin", Entry{Value: "v", Created: created, Execution: "e", Origin: bytes.Repeat([]byte{0xAB}, 24)}},
		{"long origin", Entry{Value: "v", Created: created, Origin: bytes.Repeat([]byte{1}, 300)}},
		{"version", Entry{Value: "v", Created: created, Version: "v2"}},
		{"origin and version", Entry{Value: "v", Origin: []byte{1, 2, 3}, Version: "2026-03-14"}},
		{"step", Entry{Value: "v", Created: created, Step: "fetch_user"}},
		{"every extension", Entry{Value: "v", Origin: []byte{1}, Version: "3", Step: "fetch/user\x00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeEntry(tc.e, strCodec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEntry(b, strCodec)
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			want := tc.e
			if want.Created.Equal(time.Unix(0, 0)) {
				// The epoch is the one real time the header cannot hold.
				want.Created = time.Unix(0, -1)
			}
			sameEntry(t, got, want)
			again, err := EncodeEntry(got, strCodec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding the decoded entry changed its bytes:\n%x\n%x", b, again)
			}
		})
	}
}

func TestEntryTimesOutOfRange(t *testing.T) {
	e := Entry{
		Value:   "v",
		Created: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC),
		Expires: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	b, err := EncodeEntry(e, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(b, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(time.Unix(0, math.MinInt64)) || !got.Expires.Equal(time.Unix(0, math.MaxInt64)) {
		t.Fatalf("got Created %v, Expires %v; want both clamped to the nanosecond range", got.Created, got.Expires)
	}
}

func TestDecodeEntryExpired(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name    string
		expires time.Time
		expired bool
	}{
		{"past", now.Add(-time.Second), true},
		{"epoch", time.Unix(0, 0), true},
		{"long ago", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"future", now.Add(time.Hour), false},
		{"never", time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeEntry(Entry{Value: "v", Created: now, Expires: tc.expires}, strCodec)
			if err != nil {
				t.Fatal(err)
			}
			_, err = DecodeEntry(b, strCodec)
			if tc.expired {
				if !errors.Is(err, ErrExpired) || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
					t.Fatalf("DecodeEntry = %v; want ErrExpired (and ErrNotFound), not ErrCorrupt", err)
				}
			} else if err != nil {
				t.Fatalf("DecodeEntry = %v; want a live entry", err)
			}
		})
	}
}

// small is the entry the corruption tests damage: every field present.
func small(t *testing.T) []byte {
	t.Helper()
	now := time.Now()
	b, err := EncodeEntry(Entry{Value: "ok", Created: now, Expires: now.Add(time.Hour), Execution: "ex"}, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantCorrupt(t *testing.T, b []byte, c Codec, what string) {
	t.Helper()
	e, err := DecodeEntry(b, c)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: DecodeEntry = %+v, %v; want ErrCorrupt", what, e, err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: %v is also ErrNotFound", what, err)
	}
}

func TestDecodeEntryBitFlips(t *testing.T) {
	b := small(t)
	for i := range 8 * len(b) {
		flipped := bytes.Clone(b)
		flipped[i/8] ^= 1 << (i % 8)
		wantCorrupt(t, flipped, strCodec, fmt.Sprintf("bit %d flipped", i))
	}
}

func TestDecodeEntryTruncated(t *testing.T) {
	b := small(t)
	for n := range len(b) {
		wantCorrupt(t, b[:n], strCodec, fmt.Sprintf("first %d of %d bytes", n, len(b)))
	}
	wantCorrupt(t, append(bytes.Clone(b), 0), strCodec, "one byte appended")
}

func TestDecodeEntryCorrupt(t *testing.T) {
	valid := rawEntry(entryVersion, strCodec.id, 1, 0, "ex", nil, "ok")
	if _, err := DecodeEntry(valid, strCodec); err != nil {
		t.Fatalf("rawEntry is not valid: %v", err)
	}
	nonMinimal := bytes.Clone(valid[:entryFixedLen])
	nonMinimal = append(nonMinimal, 0x82, 0x00, 'e', 'x', 0, 'o', 'k') // length 2 in two bytes
	nonMinimal = binary.LittleEndian.AppendUint32(nonMinimal, crc32.Checksum(nonMinimal, crc32c))

	for _, tc := range []struct {
		name string
		b    []byte
		c    Codec
		msg  string
	}{
		{"nil", nil, strCodec, "truncated"},
		{"unknown version", rawEntry(2, strCodec.id, 1, 0, "ex", nil, "ok"), strCodec, "unknown format version 2"},
		{"version 0", rawEntry(0, strCodec.id, 1, 0, "ex", nil, "ok"), strCodec, "unknown format version 0"},
		{"bad magic", append([]byte{'{'}, valid[1:]...), strCodec, "not a docket entry"},
		{"codec mismatch", valid, stringCodec{id: 8}, "written with codec 7, read with codec 8"},
		{"undecodable payload", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", nil, "undecodable"), strCodec, "decode value"},
		{"execution overruns", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", nil, "")[:entryFixedLen+1], strCodec, "truncated"},
		{"non-minimal length", nonMinimal, strCodec, "bad execution ID length"},
		{"extension overruns", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", []byte{1, 5, 'a'}, "ok"), strCodec, "extension overruns"},
		{"extension without length", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", []byte{1}, "ok"), strCodec, "bad extension length"},
		{"origin overruns", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", []byte{extOrigin, 24, 'a', 'b'}, "ok"), strCodec, "extension overruns"},
		{"origin repeated", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", []byte{extOrigin, 1, 'a', 2, 0, extOrigin, 1, 'b'}, "ok"), strCodec, "origin extension repeated"},
		{"version repeated", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", []byte{extVersion, 1, 'a', extVersion, 1, 'b'}, "ok"), strCodec, "version extension repeated"},
		{"step repeated", rawEntry(entryVersion, strCodec.id, 1, 0, "ex", []byte{extStep, 1, 'a', extStep, 1, 'b'}, "ok"), strCodec, "step extension repeated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEntry(tc.b, tc.c)
			wantCorrupt(t, tc.b, tc.c, tc.name)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

// An entry written by a later Docket, with extension records this one does
// not know, still reads here, its Origin included.
func TestDecodeEntryUnknownExtensions(t *testing.T) {
	origin := bytes.Repeat([]byte{0xAB}, 24)
	var ext []byte
	ext = binary.AppendUvarint(ext, extOrigin)
	ext = binary.AppendUvarint(ext, uint64(len(origin)))
	ext = append(ext, origin...)
	ext = binary.AppendUvarint(ext, 100) // a future field
	ext = binary.AppendUvarint(ext, 16)
	ext = append(ext, bytes.Repeat([]byte{0xCD}, 16)...)
	ext = binary.AppendUvarint(ext, 300) // a tag in two bytes, empty value
	ext = binary.AppendUvarint(ext, 0)
	created := time.Now().UnixNano()
	b := rawEntry(entryVersion, strCodec.id, created, 0, "exec", ext, "value")
	got, err := DecodeEntry(b, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	sameEntry(t, got, Entry{Value: "value", Created: time.Unix(0, created), Execution: "exec", Origin: origin})
}

// Entries written before Origin was stored (an empty extension section, as
// the first version-1 writers made them) read with a nil Origin.
func TestDecodeEntryWithoutOrigin(t *testing.T) {
	created := time.Now().UnixNano()
	b := rawEntry(entryVersion, strCodec.id, created, 0, "exec", nil, "value")
	got, err := DecodeEntry(b, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != nil {
		t.Fatalf("Origin = %x, want nil", got.Origin)
	}
	sameEntry(t, got, Entry{Value: "value", Created: time.Unix(0, created), Execution: "exec"})
	// And an entry without Origin is written as before.
	again, err := EncodeEntry(got, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("an entry without Origin re-encodes differently:\n%x\n%x", b, again)
	}
}

// The decoded Origin does not alias the bytes it was read from.
func TestDecodeEntryOriginIsACopy(t *testing.T) {
	b, err := EncodeEntry(Entry{Value: "v", Origin: []byte("producer span")}, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(b, strCodec)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if string(got.Origin) != "producer span" {
		t.Fatalf("Origin = %q after the entry's bytes were reused", got.Origin)
	}
}

func TestEncodeEntryCodecError(t *testing.T) {
	_, err := EncodeEntry(Entry{Value: 42}, strCodec)
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("EncodeEntry of a value the codec rejects = %v; want the codec's error", err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	now := time.Now()
	for _, e := range []Entry{
		{Value: ""},
		{Value: "result", Created: now, Expires: now.Add(time.Hour), Execution: "exec_12345"},
		{Value: "\x00\x01", Created: now, Execution: strings.Repeat("e", 200)},
		{Value: "v", Created: now, Execution: "e", Origin: bytes.Repeat([]byte{0xAB}, 24)},
	} {
		b, err := EncodeEntry(e, strCodec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(rawEntry(entryVersion, strCodec.id, 1, 0, "ex", []byte{1, 2, 'a', 'b'}, "ok"))
	f.Add(rawEntry(2, strCodec.id, 1, 0, "ex", nil, "ok"))
	f.Add([]byte{})
	f.Add([]byte{entryMagic, entryVersion})

	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Random bytes almost never carry a valid checksum; with it
		// repaired, the fuzzer reaches the field parsing behind it.
		if len(b) >= entryCRCLen {
			fixed := bytes.Clone(b)
			body := fixed[:len(fixed)-entryCRCLen]
			binary.LittleEndian.PutUint32(fixed[len(body):], crc32.Checksum(body, crc32c))
			checkDecode(t, fixed)
		}
	})
}

// checkDecode decodes b and, if that succeeds, checks that the entry
// re-encodes to one that decodes to the same fields.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	// Expiry is checked against the earliest time, so that every
	// well-formed entry decodes and the round trip runs; but for one that
	// expires at that very time (a time before 1678, clamped), which is
	// expired, not corrupt.
	e, err := decodeEntry(b, strCodec, math.MinInt64)
	if err != nil {
		if h, herr := decodeHeader(b); herr == nil && h.expires == math.MinInt64 && errors.Is(err, ErrExpired) {
			return
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	again, err := EncodeEntry(e, strCodec)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	e2, err := decodeEntry(again, strCodec, math.MinInt64)
	if err != nil {
		t.Fatalf("decoding the re-encoded entry: %v", err)
	}
	sameEntry(t, e2, e)
	// Unless it has extensions this version does not know (and drops) or
	// an empty origin record, an entry has exactly one encoding.
	if h, _ := decodeHeader(b); bytes.Equal(h.ext, appendExtensions(nil, e)) && !bytes.Equal(again, b) {
		t.Fatalf("re-encoding changed the bytes:\n%x\n%x", b, again)
	}
}

func BenchmarkEncodeEntry(b *testing.B) {
	e := Entry{Value: strings.Repeat("v", 100), Created: time.Now(), Expires: time.Now().Add(time.Hour), Execution: "exec_12345"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEntry(e, strCodec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	e := Entry{Value: strings.Repeat("v", 100), Created: time.Now(), Expires: time.Now().Add(time.Hour), Execution: "exec_12345"}
	enc, err := EncodeEntry(e, strCodec)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEntry(enc, strCodec); err != nil {
			b.Fatal(err)
		}
	}
}
