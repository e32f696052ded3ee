package codec_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docket-go/docket/codec"
)

type User struct {
	ID      string
	Name    string
	Created time.Time
}

// Bind ties a codec to a step's result type; the middleware does this once
// per step, and a byte tier calls Encode on a miss and Decode on a hit.
func ExampleBind() {
	c := codec.Bind[*User](codec.Default())
	data, err := c.Encode(&User{ID: "u1", Name: "Alice", Created: time.Unix(1700000000, 0)})
	if err != nil {
		panic(err)
	}
	v, err := c.Decode(data)
	if err != nil {
		panic(err)
	}
	u := v.(*User)
	fmt.Println(codec.Default().Name(), c.ID(), u.Name, u.Created.Unix())
	// Output: msgpack 3 Alice 1700000000
}

// numberJSON is JSON that decodes numbers in interfaces as json.Number
// rather than float64: its decoding differs from JSON's, so it has an ID of
// its own, from MinUserID up.
type numberJSON struct{}

func (numberJSON) ID() uint8                     { return 200 }
func (numberJSON) Name() string                  { return "json-number" }
func (numberJSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }
func (numberJSON) Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// A user-defined codec picks an ID from codec.MinUserID up; Bind panics on
// one that takes an ID reserved for Docket's codecs.
func ExampleCodec() {
	c := codec.Bind[map[string]any](numberJSON{})
	data, _ := c.Encode(map[string]any{"id": 9007199254740993})
	v, _ := c.Decode(data)
	n := v.(map[string]any)["id"]
	fmt.Printf("%T %v\n", n, n)
	// Output: json.Number 9007199254740993
}
