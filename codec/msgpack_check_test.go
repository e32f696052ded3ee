package codec

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheckMsgpack(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, maxMsgpackDepth+1), 0xc0)
	for _, tc := range []struct {
		name string
		data []byte
		err  string // "" for valid
	}{
		{"nil", []byte{0xc0}, ""},
		{"fixint", []byte{0x7f}, ""},
		{"negative fixint", []byte{0xe0}, ""},
		{"fixmap", []byte{0x81, 0xa1, 'k', 0x01}, ""},
		{"str 8", []byte{0xd9, 2, 'h', 'i'}, ""},
		{"ext 8", []byte{0xc7, 1, 5, 0xaa}, ""},
		{"fixext 16", append([]byte{0xd8, 1}, make([]byte, 16)...), ""},
		{"array 16", []byte{0xdc, 0, 2, 1, 2}, ""},
		{"nested to the limit", deep[1:], ""},
		{"empty", nil, "truncated"},
		{"unused code", []byte{0xc1}, "invalid code"},
		{"truncated string", []byte{0xa5, 'a'}, "truncated"},
		{"truncated length", []byte{0xdb, 0}, "truncated"},
		{"truncated float", []byte{0xcb, 0, 0}, "truncated"},
		{"truncated ext", []byte{0xc7, 3, 5, 0xaa}, "truncated"},
		{"missing element", []byte{0x92, 0x01}, "more than"},
		{"missing map value", []byte{0x81, 0x01}, "more than"},
		{"huge array", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "more than"},
		{"huge map", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0x01}, "more than"},
		{"huge nested", []byte{0x92, 0xdd, 0, 0, 0, 3, 1, 2, 3}, "more than"},
		{"too deep", deep, "nested"},
		{"trailing byte", []byte{0xc0, 0xc0}, "after the value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMsgpack(tc.data)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("checkMsgpack(% x) = %v, want nil", tc.data, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("checkMsgpack(% x) = %v, want an error containing %q", tc.data, err, tc.err)
			}
		})
	}
}

// TestMsgpackHugeLengthIsAnError: before checkMsgpack, these five bytes
// decoded into an any made the decoder allocate 64 GiB and the process die.
func TestMsgpackHugeLengthIsAnError(t *testing.T) {
	var v any
	if err := Msgpack.Unmarshal([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, &v); err == nil {
		t.Fatal("no error")
	}
}
