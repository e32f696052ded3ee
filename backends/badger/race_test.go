//go:build race

package badger_test

// The race detector multiplies memory use; TestPeakRSS measures nothing
// meaningful under it.
func init() { raceEnabled = true }
