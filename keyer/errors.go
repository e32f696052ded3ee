package keyer

import "errors"

// ErrInvalidKey is returned (wrapped) for a malformed key or binary key.
var ErrInvalidKey = errors.New("keyer: invalid key")
