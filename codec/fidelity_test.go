package codec

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"
)

type Base struct{ Kind string }

type base struct{ Kind string }

// TestFidelity pins down, codec by codec, what a result loses on its way
// through a byte tier: the table in the package documentation. A change in
// a codec's behaviour fails here before it surprises a user.
func TestFidelity(t *testing.T) {
	cases := []struct {
		name  string
		probe func(Codec) string
		want  map[string]string // by codec name
	}{
		{
			name: "time zone",
			probe: func(c Codec) string {
				in := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))
				got, err := roundTrip(c, in)
				if err != nil {
					return "error: " + err.Error()
				}
				name, off := got.Zone()
				return fmt.Sprintf("same instant %v, zone %q %+d", got.Equal(in), name, off)
			},
			want: map[string]string{
				"json":    `same instant true, zone "" +3600`,
				"gob":     `same instant true, zone "" +3600`,
				"msgpack": `same instant true, zone "Test/Local" -18000`,
			},
		},
		{
			name: "nil slice",
			probe: func(c Codec) string {
				return describeSlice(roundTrip(c, sliceField{}))
			},
			want: all("nil"),
		},
		{
			name: "empty slice",
			probe: func(c Codec) string {
				return describeSlice(roundTrip(c, sliceField{S: []string{}}))
			},
			want: map[string]string{"json": "empty", "gob": "nil", "msgpack": "empty"},
		},
		{
			name: "nil map",
			probe: func(c Codec) string {
				type s struct{ M map[string]int }
				got, err := roundTrip(c, s{})
				switch {
				case err != nil:
					return "error: " + err.Error()
				case got.M == nil:
					return "nil"
				}
				return "empty"
			},
			want: all("nil"),
		},
		{
			name: "empty map",
			probe: func(c Codec) string {
				type s struct{ M map[string]int }
				got, err := roundTrip(c, s{M: map[string]int{}})
				switch {
				case err != nil:
					return "error: " + err.Error()
				case got.M == nil:
					return "nil"
				}
				return "empty"
			},
			want: all("empty"),
		},
		{
			name: "int in map[string]any",
			probe: func(c Codec) string {
				got, err := roundTrip(c, map[string]any{"n": 1, "big": 1<<53 + 1})
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("%T(%v) %T(%v)", got["n"], got["n"], got["big"], got["big"])
			},
			want: map[string]string{
				"json":    "float64(1) float64(9.007199254740992e+15)",
				"gob":     "int(1) int(9007199254740993)",
				"msgpack": "int8(1) uint64(9007199254740993)", // the smallest type that holds it
			},
		},
		{
			name: "struct in an interface field",
			probe: func(c Codec) string {
				type s struct{ V any }
				got, err := roundTrip(c, s{V: Base{Kind: "k"}})
				if err != nil {
					return "error"
				}
				return fmt.Sprintf("%T", got.V)
			},
			want: map[string]string{
				"json":    "map[string]interface {}",
				"gob":     "error", // until gob.Register(Base{})
				"msgpack": "map[string]interface {}",
			},
		},
		{
			name: "unexported field",
			probe: func(c Codec) string {
				type s struct {
					Pub  string
					priv string
				}
				got, err := roundTrip(c, s{"p", "q"})
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("%q %q", got.Pub, got.priv)
			},
			want: all(`"p" ""`),
		},
		{
			name: "pointer to a zero value",
			probe: func(c Codec) string {
				type s struct{ P *int }
				got, err := roundTrip(c, s{P: new(int)})
				switch {
				case err != nil:
					return "error: " + err.Error()
				case got.P == nil:
					return "nil"
				}
				return fmt.Sprint(*got.P)
			},
			want: map[string]string{"json": "0", "gob": "nil", "msgpack": "0"},
		},
		{
			name: "embedded struct",
			probe: func(c Codec) string {
				type s struct {
					Base
					X int
				}
				got, err := roundTrip(c, s{Base{"k"}, 1})
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("%q %d", got.Kind, got.X)
			},
			want: all(`"k" 1`),
		},
		{
			name: "embedded unexported struct type",
			probe: func(c Codec) string {
				type s struct {
					base
					X int
				}
				got, err := roundTrip(c, s{base{"k"}, 1})
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("%q %d", got.Kind, got.X)
			},
			want: map[string]string{"json": `"k" 1`, "gob": `"" 1`, "msgpack": `"k" 1`},
		},
		{
			name: "struct tags",
			probe: func(c Codec) string {
				type s struct {
					Renamed string `json:"renamed,omitempty"`
					Secret  string `json:"-"`
					Own     string `json:"j" msgpack:"m"`
				}
				data, err := c.Marshal(s{"r", "hunter2", "o"})
				if err != nil {
					return "error: " + err.Error()
				}
				var got s
				if err := c.Unmarshal(data, &got); err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("%q %q %q, secret stored %v", got.Renamed, got.Secret, got.Own, bytes.Contains(data, []byte("hunter2")))
			},
			want: map[string]string{
				"json":    `"r" "" "o", secret stored false`,
				"gob":     `"r" "hunter2" "o", secret stored true`,
				"msgpack": `"r" "" "o", secret stored false`,
			},
		},
		{
			name: "NaN and infinities",
			probe: func(c Codec) string {
				got, err := roundTrip(c, []float64{math.NaN(), math.Inf(1), math.Inf(-1)})
				if err != nil {
					return "error"
				}
				return fmt.Sprint(got)
			},
			want: map[string]string{"json": "error", "gob": "[NaN +Inf -Inf]", "msgpack": "[NaN +Inf -Inf]"},
		},
	}
	for _, tc := range cases {
		for _, c := range byteCodecs {
			t.Run(tc.name+"/"+c.Name(), func(t *testing.T) {
				if got, want := tc.probe(c), tc.want[c.Name()]; got != want {
					t.Errorf("got  %s\nwant %s", got, want)
				}
			})
		}
	}
}

func all(s string) map[string]string {
	return map[string]string{"json": s, "gob": s, "msgpack": s}
}

type sliceField struct{ S []string }

func describeSlice(v sliceField, err error) string {
	switch {
	case err != nil:
		return "error: " + err.Error()
	case v.S == nil:
		return "nil"
	case len(v.S) == 0:
		return "empty"
	}
	return fmt.Sprint(v.S)
}
