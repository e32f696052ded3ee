package middleware

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a persisted step's counters since it was made
// (Persisted.Stats). Every call that got past keying is either a hit or a
// miss: Calls is the sum of Hits and Misses plus the calls that failed
// before any lookup (an unkeyable input, a Workflow call without an
// execution). The counters are read one by one while calls go on, so a
// snapshot taken under load can be off by the calls in progress.
type Stats struct {
	// Calls is how many calls the step got.
	Calls uint64
	// Hits counts the calls answered with a stored result (or a stored
	// failure, under WithErrorCaching) by the name of the tier that held it:
	// the front tier before any flight, or a tier a flight's look found it
	// in, for the caller that started the flight and those that joined it.
	Hits map[string]uint64
	// Misses counts the calls that got no stored result, by why the front
	// tier did not answer: ReasonAbsent, ReasonExpired, ReasonCorrupt,
	// ReasonFault, ReasonRefresh or ReasonBypass; and the background
	// refreshes of WithRefreshAhead, as ReasonRefreshAhead, each counted as
	// a call of its own (in Calls too) whose step ran.
	Misses map[Reason]uint64
	// SharedWaits counts the calls that joined a flight another caller had
	// started, rather than starting one (hits and misses alike).
	SharedWaits uint64
	// Runs counts the runs of the step (one per flight that ran it, and one
	// per call under Bypass), RunTime their total duration, failed and
	// panicking runs included.
	Runs    uint64
	RunTime time.Duration
	// Errors counts the calls that returned an error (or re-raised a panic
	// of the step), stored failures served as hits included.
	Errors uint64
}

// MeanRunTime is RunTime divided by Runs; zero before the first run.
func (s Stats) MeanRunTime() time.Duration {
	if s.Runs == 0 {
		return 0
	}
	return s.RunTime / time.Duration(s.Runs)
}

// hitStripes splits the front tier's hit counters, so that hits on
// different cores add to different cache lines.
const hitStripes = 8

// stripe is the index of the hit counters a goroutine adds to. Striping by
// key does not keep cores apart: every core hits keys of every stripe, so
// each add would find its line last written by another core. A sync.Pool
// keeps an object per P (the scheduler's processor a goroutine runs on),
// so a goroutine gets the stripe its P last got, nearly always: one core,
// one stripe, and an add that stays in that core's cache. Get and Put of
// a pointer allocate nothing.
type stripe struct{ i uint32 }

var (
	stripes    = sync.Pool{New: func() any { return &stripe{i: nextStripe.Add(1) % hitStripes} }}
	nextStripe atomic.Uint32 // the first Ps get stripes of their own
)

// hitStripe is two counters alone in 128 bytes: whatever the array's
// alignment, no two stripes share a 64-byte line, nor a pair of lines an
// adjacent-line prefetcher fetches together.
type hitStripe struct {
	hits   atomic.Uint64 // stored results
	failed atomic.Uint64 // stored failures (WithErrorCaching)
	_      [128 - 16]byte
}

// stepStats are a step's counters. A front-tier hit adds to one stripe
// and to nothing else; every other counter is on the miss path, where a
// call already pays for a flight.
type stepStats struct {
	// The stripes' padding follows their counters, so stripe 0's counters
	// would share a cache line with whatever precedes stepStats: in a
	// persisted step, fields every hit reads. A hit's add would then evict
	// that line from the other cores, and every hit there pay a miss.
	_      [128]byte
	front  [hitStripes]hitStripe
	calls  atomic.Uint64 // calls that were not front-tier hits
	shared atomic.Uint64
	runs   atomic.Uint64
	runNs  atomic.Int64
	errors atomic.Uint64
	misses [reasonCount]atomic.Uint64

	mu   sync.Mutex
	hits map[string]uint64 // hits not counted in front, by tier
}

// frontHit counts a front-tier hit.
func (s *stepStats) frontHit(failed bool) {
	t := stripes.Get().(*stripe)
	st := &s.front[t.i]
	if failed {
		st.failed.Add(1)
	} else {
		st.hits.Add(1)
	}
	stripes.Put(t)
}

// hit counts a hit from tier that is not a front-tier hit before a flight.
func (s *stepStats) hit(tier string, failed bool) {
	s.calls.Add(1)
	if failed {
		s.errors.Add(1)
	}
	s.mu.Lock()
	if s.hits == nil {
		s.hits = make(map[string]uint64)
	}
	s.hits[tier]++
	s.mu.Unlock()
}

// miss counts a call that got no stored result.
func (s *stepStats) miss(why Reason, failed bool) {
	s.calls.Add(1)
	if int(why) < len(s.misses) {
		s.misses[why].Add(1)
	}
	if failed {
		s.errors.Add(1)
	}
}

// failed counts a call that failed before any lookup.
func (s *stepStats) failed() {
	s.calls.Add(1)
	s.errors.Add(1)
}

func (s *stepStats) ran(d time.Duration) {
	s.runs.Add(1)
	s.runNs.Add(int64(d))
}

func (s *stepStats) snapshot(frontTier string) Stats {
	st := Stats{
		Hits:        make(map[string]uint64),
		Misses:      make(map[Reason]uint64),
		SharedWaits: s.shared.Load(),
		Runs:        s.runs.Load(),
		RunTime:     time.Duration(s.runNs.Load()),
		Errors:      s.errors.Load(),
		Calls:       s.calls.Load(),
	}
	var front uint64
	for i := range s.front {
		h, f := s.front[i].hits.Load(), s.front[i].failed.Load()
		front += h + f
		st.Errors += f
	}
	st.Calls += front
	if front > 0 {
		st.Hits[frontTier] += front
	}
	for why := ReasonAbsent; why < reasonCount; why++ {
		if n := s.misses[why].Load(); n > 0 {
			st.Misses[why] = n
		}
	}
	s.mu.Lock()
	for tier, n := range s.hits {
		st.Hits[tier] += n
	}
	s.mu.Unlock()
	return st
}
