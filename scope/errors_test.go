package scope_test

import (
	"strings"
	"testing"

	"github.com/docket-go/docket/scope"
)

// TestErrorPrefix: the sentinels name their package, as keyer's do; the
// middleware adds "docket: " once when it wraps one with the step's name.
func TestErrorPrefix(t *testing.T) {
	for _, err := range []error{scope.ErrNoExecution, scope.ErrEnded} {
		if msg := err.Error(); !strings.HasPrefix(msg, "scope: ") || strings.Contains(msg, "docket:") {
			t.Errorf("%q: want the prefix \"scope: \" and no \"docket:\"", msg)
		}
	}
}
