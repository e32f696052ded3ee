// Package othertest holds values whose types are only distinguishable from
// the keyer tests' own by their package path.
package othertest

// Hidden returns a value of an unnamed struct type with one unexported field
// x, declared in this package.
func Hidden(x int) any { return struct{ x int }{x} }
