package memory

import "time"

// processStart carries a monotonic clock reading, so time.Since(processStart)
// reads only the monotonic clock, one vDSO call where time.Now makes two
// (wall and monotonic); see BenchmarkClock. That keeps the expiry check on a
// hit cheap, and wall-clock steps cannot move deadlines.
var processStart = time.Now()

// monoNow returns monotonic nanoseconds since processStart.
func monoNow() int64 { return int64(time.Since(processStart)) }
