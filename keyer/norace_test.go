//go:build !race

package keyer_test

const raceEnabled = false
