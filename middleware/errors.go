package middleware

import (
	"errors"
	"fmt"
)

// ErrGoexit is returned to the callers of a step that called runtime.Goexit.
var ErrGoexit = errors.New("middleware: step called runtime.Goexit")

// ErrStore is wrapped, together with the store's own error, by the errors
// of strict steps (WithStrict) whose store failed.
var ErrStore = errors.New("middleware: store fault")

// PanicError is what callers of a panicking step panic with: the value the
// step panicked with and the stack where it did.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("docket: step panicked: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns the panic value if it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}
