package backends

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// failCodec fails every Encode and Decode: a stored failure has no payload
// and never reaches the codec.
type failCodec struct{}

func (failCodec) ID() uint8                  { return strCodec.id }
func (failCodec) Encode(any) ([]byte, error) { return nil, errors.New("failCodec: encode") }
func (failCodec) Decode([]byte) (any, error) { return nil, errors.New("failCodec: decode") }

func TestEntryFailureRoundTrip(t *testing.T) {
	orig := errors.New("no such user")
	created := time.Unix(0, time.Now().UnixNano())
	for _, f := range []Failure{
		{Code: "not_found", Message: "no such user", Err: orig},
		{Code: "", Message: ""},
		{Code: "x", Message: "a message\x00with any bytes"},
	} {
		e := Entry{Created: created, Expires: created.Add(time.Minute), Execution: "e1", Version: "v2",
			Origin: []byte{1, 2, 3}, Failure: &f}
		b, err := EncodeEntry(e, failCodec{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEntry(b, failCodec{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Failure == nil || got.Failure.Code != f.Code || got.Failure.Message != f.Message || got.Failure.Err != nil {
			t.Fatalf("failure %+v: decoded %+v (Err is never stored)", f, got.Failure)
		}
		if got.Value != nil || got.Version != "v2" || got.Execution != "e1" || !got.Created.Equal(created) {
			t.Fatalf("decoded %+v", got)
		}
		// A result entry of the same codec still decodes as a result.
		r, err := EncodeEntry(Entry{Value: "ok"}, strCodec)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeEntry(r, strCodec); err != nil || got.Failure != nil || got.Value != "ok" {
			t.Fatalf("result entry: %+v, %v", got, err)
		}
	}
}

func TestDecodeEntryFailureCorrupt(t *testing.T) {
	rec := func(tag uint64, v []byte) []byte {
		b := binary.AppendUvarint(nil, tag)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	good := append(binary.AppendUvarint(nil, 3), "abcmsg"...)
	for name, b := range map[string][]byte{
		"empty failure":       rawEntry(entryVersion, strCodec.id, 1, 0, "", rec(extFailure, nil), ""),
		"code overruns":       rawEntry(entryVersion, strCodec.id, 1, 0, "", rec(extFailure, []byte{9, 'a'}), ""),
		"failure repeated":    rawEntry(entryVersion, strCodec.id, 1, 0, "", append(rec(extFailure, good), rec(extFailure, good)...), ""),
		"failure and payload": rawEntry(entryVersion, strCodec.id, 1, 0, "", rec(extFailure, good), "value"),
	} {
		if _, err := DecodeEntry(b, strCodec); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
	b := rawEntry(entryVersion, strCodec.id, 1, 0, "", rec(extFailure, good), "")
	got, err := DecodeEntry(b, strCodec)
	if err != nil || got.Failure == nil || got.Failure.Code != "abc" || got.Failure.Message != "msg" {
		t.Fatalf("hand-made failure: %+v, %v", got.Failure, err)
	}
}
