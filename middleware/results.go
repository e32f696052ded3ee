package middleware

import (
	"fmt"
	"reflect"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/codec"
)

// mustRoundTrip panics, naming the type and field path, when the step's
// store keeps results as bytes and its codec would not bring an Out back
// exactly: a byte-tier hit would otherwise hand every later caller a zeroed
// field or a generic map, silently (see codec.CheckRoundTrip). A store that
// keeps decoded values only carries every type.
func mustRoundTrip[Out any](name string, store backends.Store, c codec.Codec) {
	if !backends.EncodesValues(store) {
		return
	}
	if err := codec.CheckRoundTrip(c, reflect.TypeFor[Out]()); err != nil {
		panic(fmt.Sprintf("docket: step %q: %v", name, err))
	}
}
