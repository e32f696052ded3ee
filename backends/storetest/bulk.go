package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// bulkEntry is one entry of the bulk checks' data set.
type bulkEntry struct {
	name    string
	key     keyer.Key
	version string
	expires time.Duration // from now; 0: never
}

// bulkData is a data set on which each Filter field selects something
// different: two steps, two versions, two executions, both scopes, an
// entry that expires within the hour.
func bulkData() []bulkEntry {
	return []bulkEntry{
		{"ga1", globalKey("a", 1), "", 0},
		{"ga2", globalKey("a", 2), "", time.Hour},
		{"ga3v2", globalKey("a", 3), "v2", 0},
		{"gb1", globalKey("b", 1), "", 0},
		{"gc1", globalKey("c", 1), "", 30 * time.Minute},
		{"e1a1", workflowKey("e1", "a", 1), "", 0},
		{"e1b2", workflowKey("e1", "b", 2), "v2", 0},
		{"e2a1", workflowKey("e2", "a", 1), "", 0},
	}
}

var bulkOrigin = bytes.Repeat([]byte{0xCD}, 24)

func setBulk(t *testing.T, s backends.Store, now time.Time) []bulkEntry {
	t.Helper()
	data := bulkData()
	for _, d := range data {
		e := backends.Entry{Value: d.name, Created: now.Add(-time.Minute), Version: d.version, Origin: bulkOrigin}
		if d.key.Scope == scope.Workflow {
			e.Execution = d.key.Execution
		} else {
			e.Execution = "producer"
		}
		if d.expires > 0 {
			e.Expires = now.Add(d.expires)
		}
		if err := s.Set(ctx, d.key, e, codec); err != nil {
			t.Fatalf("Set(%s): %v", d.name, err)
		}
	}
	return data
}

// bulkFilters are the filters the bulk checks try, with the names of the
// entries each matches; later filters judge expiry an hour and a half
// from now.
func bulkFilters(now time.Time) []struct {
	name string
	f    backends.Filter
	want []string
} {
	later := now.Add(90 * time.Minute)
	return []struct {
		name string
		f    backends.Filter
		want []string
	}{
		{"all", backends.Filter{}, []string{"e1a1", "e1b2", "e2a1", "ga1", "ga2", "ga3v2", "gb1", "gc1"}},
		{"step", backends.Filter{Step: "a"}, []string{"e1a1", "e2a1", "ga1", "ga2", "ga3v2"}},
		{"version", backends.Filter{Version: "v2", HasVersion: true}, []string{"e1b2", "ga3v2"}},
		{"version alone", backends.Filter{Version: "v2"}, []string{"e1b2", "ga3v2"}},
		{"unversioned step", backends.Filter{Step: "a", HasVersion: true}, []string{"e1a1", "e2a1", "ga1", "ga2"}},
		{"global", backends.Filter{Scope: scope.Global}, []string{"ga1", "ga2", "ga3v2", "gb1", "gc1"}},
		{"workflow", backends.Filter{Scope: scope.Workflow}, []string{"e1a1", "e1b2", "e2a1"}},
		{"execution", backends.Filter{Execution: "e1"}, []string{"e1a1", "e1b2"}},
		{"execution and step", backends.Filter{Execution: "e1", Step: "b"}, []string{"e1b2"}},
		{"global execution", backends.Filter{Execution: "e1", Scope: scope.Global}, nil},
		{"no such step", backends.Filter{Step: "zz"}, nil},
		{"expired now", backends.Filter{Expired: true}, nil},
		{"expired later", backends.Filter{Expired: true, Now: later}, []string{"ga2", "gc1"}},
		{"expired later, step", backends.Filter{Expired: true, Now: later, Step: "c"}, []string{"gc1"}},
	}
}

// listers returns s and its tiers that implement backends.Lister, and
// support it (a ByteTier does only on a backends.ByteScanner).
func listers(s backends.Store) []backends.Lister {
	var out []backends.Lister
	for _, tier := range tiers(s) {
		l, ok := tier.(backends.Lister)
		if !ok {
			continue
		}
		err := l.List(ctx, backends.Filter{Step: "storetest: no such step"}, func(backends.Info) error { return nil })
		if !errors.Is(err, backends.ErrUnsupported) {
			out = append(out, l)
		}
	}
	return out
}

func testList(t *testing.T, s backends.Store) {
	ls := listers(s)
	if len(ls) == 0 {
		t.Skipf("%T implements no backends.Lister", s)
	}
	now := time.Now()
	data := setBulk(t, s, now)
	byKey := map[keyer.Key]bulkEntry{}
	for _, d := range data {
		byKey[d.key] = d
	}
	for _, l := range ls {
		for _, tc := range bulkFilters(now) {
			t.Run(fmt.Sprintf("%T/%s", l, tc.name), func(t *testing.T) {
				var got []string
				err := l.List(ctx, tc.f, func(i backends.Info) error {
					d, ok := byKey[i.Key]
					if !ok {
						t.Fatalf("List gave %v (Step %q), which was never stored", i.Key, i.Key.Step)
					}
					checkInfo(t, i, d, now)
					got = append(got, d.name)
					return nil
				})
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("List(%+v) = %v; want %v", tc.f, got, tc.want)
				}
			})
		}
		t.Run(fmt.Sprintf("%T/stop", l), func(t *testing.T) {
			stop := errors.New("enough")
			n := 0
			err := l.List(ctx, backends.Filter{}, func(backends.Info) error { n++; return stop })
			if !errors.Is(err, stop) || n != 1 {
				t.Fatalf("List with fn failing at once = %v after %d calls; want its error after 1", err, n)
			}
		})
	}
}

// checkInfo compares what List said of an entry with what was stored.
// Times may have lost precision below the millisecond (SQLite columns).
func checkInfo(t *testing.T, i backends.Info, d bulkEntry, now time.Time) {
	t.Helper()
	near := func(a, b time.Time) bool { return a.Sub(b).Abs() <= time.Millisecond }
	var problems []string
	if i.Key.Step != d.key.Step {
		problems = append(problems, fmt.Sprintf("Key.Step %q, want %q", i.Key.Step, d.key.Step))
	}
	if i.Version != d.version {
		problems = append(problems, fmt.Sprintf("Version %q, want %q", i.Version, d.version))
	}
	wantExec := "producer"
	if d.key.Scope == scope.Workflow {
		wantExec = d.key.Execution
	}
	if i.Execution != wantExec {
		problems = append(problems, fmt.Sprintf("Execution %q, want %q", i.Execution, wantExec))
	}
	if !near(i.Created, now.Add(-time.Minute)) {
		problems = append(problems, fmt.Sprintf("Created %v, want %v", i.Created, now.Add(-time.Minute)))
	}
	if d.expires == 0 && !i.Expires.IsZero() || d.expires != 0 && !near(i.Expires, now.Add(d.expires)) {
		problems = append(problems, fmt.Sprintf("Expires %v, want %v from now", i.Expires, d.expires))
	}
	if !bytes.Equal(i.Origin, bulkOrigin) {
		problems = append(problems, fmt.Sprintf("Origin %x", i.Origin))
	}
	if i.Tier == "" {
		problems = append(problems, "Tier empty")
	}
	if i.Codec != 0 && (i.Codec != codec.ID() || i.Size <= len(d.name)) {
		problems = append(problems, fmt.Sprintf("Codec %d, Size %d", i.Codec, i.Size))
	}
	if len(problems) > 0 {
		t.Errorf("List: %s: %s", d.name, strings.Join(problems, "; "))
	}
}

func testDeleteMatching(t *testing.T, s backends.Store) {
	if _, err := backends.DeleteMatching(ctx, s, backends.Filter{Step: "nothing"}); errors.Is(err, backends.ErrUnsupported) {
		t.Skipf("%T: %v", s, err)
	}
	now := time.Now()
	later := now.Add(90 * time.Minute)
	data := setBulk(t, s, now)
	// Each step deletes from what the ones before it left.
	steps := []struct {
		f       backends.Filter
		removed []string
	}{
		{backends.Filter{Step: "zz"}, nil},
		{backends.Filter{Step: "a", Version: "v2", HasVersion: true}, []string{"ga3v2"}},
		{backends.Filter{Execution: "e1"}, []string{"e1a1", "e1b2"}},
		{backends.Filter{Expired: true}, nil},
		{backends.Filter{Expired: true, Now: later, Step: "c"}, []string{"gc1"}},
		{backends.Filter{Scope: scope.Workflow}, []string{"e2a1"}},
		{backends.Filter{Step: "a", Scope: scope.Global}, []string{"ga1", "ga2"}},
		{backends.Filter{}, []string{"gb1"}},
		{backends.Filter{}, nil},
	}
	gone := map[string]bool{}
	for i, st := range steps {
		n, err := backends.DeleteMatching(ctx, s, st.f)
		if err != nil {
			t.Fatalf("step %d: DeleteMatching(%+v): %v", i, st.f, err)
		}
		if n != len(st.removed) {
			t.Errorf("step %d: DeleteMatching(%+v) = %d; want %d (%v)", i, st.f, n, len(st.removed), st.removed)
		}
		for _, name := range st.removed {
			gone[name] = true
		}
		for _, d := range data {
			if gone[d.name] {
				miss(t, s, d.key)
			} else {
				want(t, s, d.key, d.name)
			}
		}
	}
}
