package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	collmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// noOTLP clears the variables that select OTLP, so that the stdout
// exporters are used.
func noOTLP(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		t.Setenv(v, "")
	}
}

// readmeBlock returns the fenced block of README.md that follows the line
// marker.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), marker)
	if !ok {
		t.Fatalf("README.md has no %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "```text\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README.md: no block after %q", marker)
	}
	return block
}

// section returns the lines of out after the header line until a blank
// line.
func section(t *testing.T, out, header string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "\n"+header+"\n")
	if !ok {
		t.Fatalf("output has no %q:\n%s", header, out)
	}
	body, _, _ := strings.Cut(rest, "\n\n")
	return strings.TrimRight(body, "\n") + "\n"
}

var keyHash = regexp.MustCompile(`key_hash=[0-9a-f]{16}`)

// numberHashes replaces each distinct key hash by its rank of first
// appearance: which calls share a key must match, not the digests
// themselves. (A key covers its input's type, package path included, and a
// package main has another path under go test than under go run.)
func numberHashes(s string) string {
	seen := map[string]string{}
	return keyHash.ReplaceAllStringFunc(s, func(h string) string {
		if _, ok := seen[h]; !ok {
			seen[h] = fmt.Sprintf("key_hash=#%d", len(seen)+1)
		}
		return seen[h]
	})
}

// TestStdout runs the program with the stdout exporters and checks the span
// tree and metrics it prints against the README, and that the exporters
// wrote every span and the metrics.
func TestStdout(t *testing.T) {
	noOTLP(t)
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if tree, want := section(t, got, "== span tree =="), readmeBlock(t, "<!-- span tree -->"); numberHashes(tree) != numberHashes(want) {
		t.Errorf("span tree:\n%s\nREADME shows:\n%s", tree, want)
	}
	if m, want := section(t, got, "== metrics =="), readmeBlock(t, "<!-- metrics -->"); m != want {
		t.Errorf("metrics:\n%s\nREADME shows:\n%s", m, want)
	}
	ratio := section(t, got, "== hit ratio ==")
	if want := readmeBlock(t, "<!-- hit ratio -->"); ratio != want {
		t.Errorf("hit ratio:\n%s\nREADME shows:\n%s", ratio, want)
	}
	checkCounts(t, ratio)
	for _, want := range []string{
		`== exported: spans to stdout, metrics to stdout ==`,
		`{"Name":"geocode",`, `{"Name":"forecast",`, `{"Name":"geocoder.lookup",`, `{"Name":"execution trip-2",`,
		`"Name":"docket.calls"`, `"Name":"docket.step.duration"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

var ratioLine = regexp.MustCompile(`^\s+(\S+)\s+calls=(\d+) hits=(\d+) \(([^)]*)\) misses=(\d+) \(([^)]*)\) shared=(\d+) errors=(\d+) runs=(\d+)  hit ratio (\d+)%$`)

// checkCounts checks the lines of what the metrics say each step's Stats
// are against what the program did: every call was a hit or a miss, the
// counts by tier and by reason add up, the steps ran twice each (geocode
// for Paris and Oslo, forecast for Paris in each trip), and the hit ratio is
// hits over calls.
func checkCounts(t *testing.T, ratio string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(ratio, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("hit ratio lines:\n%s", ratio)
	}
	sum := func(by string) int {
		n := 0
		for _, part := range strings.Fields(by) {
			_, v, _ := strings.Cut(part, "=")
			var k int
			fmt.Sscan(v, &k)
			n += k
		}
		return n
	}
	for _, line := range lines {
		m := ratioLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("hit ratio line %q", line)
		}
		var calls, hits, misses, shared, errs, runs, pct int
		for i, p := range map[int]*int{2: &calls, 3: &hits, 5: &misses, 7: &shared, 8: &errs, 9: &runs, 10: &pct} {
			fmt.Sscan(m[i], p)
		}
		if hits != sum(m[4]) || misses != sum(m[6]) {
			t.Errorf("%s: %d hits by tier (%s), %d misses by reason (%s) do not add up", m[1], hits, m[4], misses, m[6])
		}
		if hits+misses != calls || errs != 0 {
			t.Errorf("%s: %d calls, %d errors; want every call a hit or a miss, none failed", m[1], calls, errs)
		}
		if runs != 2 || misses < runs || shared > misses {
			t.Errorf("%s: %d runs, %d misses, %d shared; want 2 runs, each a miss, and shared waits among the misses", m[1], runs, misses, shared)
		}
		if pct != 100*hits/calls {
			t.Errorf("%s: hit ratio %d%%, want %d%%", m[1], pct, 100*hits/calls)
		}
	}
}

// receiver is an OTLP/HTTP endpoint that keeps the span and metric names it
// is sent.
type receiver struct {
	mu      sync.Mutex
	spans   []string
	metrics []string
	scopes  []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf body", http.StatusBadRequest)
		return
	}
	var resp proto.Message
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch r.URL.Path {
	case "/v1/traces":
		var req colltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.scopes = append(rc.scopes, ss.Scope.GetName())
				for _, s := range ss.Spans {
					rc.spans = append(rc.spans, s.Name)
				}
			}
		}
		resp = &colltracepb.ExportTraceServiceResponse{}
	case "/v1/metrics":
		var req collmetricpb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					rc.metrics = append(rc.metrics, m.Name)
				}
			}
		}
		resp = &collmetricpb.ExportMetricsServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// TestOTLP points the standard variable at a receiver on loopback: the
// program's exporters, configured by it alone, deliver every span and the
// metrics over OTLP/HTTP.
func TestOTLP(t *testing.T) {
	noOTLP(t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)

	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "== exported: spans to OTLP/HTTP, metrics to OTLP/HTTP ==") {
		t.Fatalf("output:\n%s", out.String())
	}
	if strings.Contains(out.String(), `{"Name":`) {
		t.Fatal("the stdout exporters ran too")
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	count := func(names []string, name string) int {
		n := 0
		for _, s := range names {
			if s == name {
				n++
			}
		}
		return n
	}
	for name, want := range map[string]int{
		"execution trip-1": 1, "execution trip-2": 1,
		"geocode": 5, "forecast": 3, "geocoder.lookup": 2, "weather.fetch": 2,
	} {
		if got := count(rc.spans, name); got != want {
			t.Errorf("received %d spans named %q, want %d (all: %v)", got, name, want, rc.spans)
		}
	}
	if !slices.Contains(rc.scopes, "github.com/docket-go/docket/tracing") {
		t.Errorf("scopes %v lack the tracing package's", rc.scopes)
	}
	for _, name := range []string{"docket.calls", "docket.step.duration", "docket.flight.waiters", "docket.execution.purged"} {
		if !slices.Contains(rc.metrics, name) {
			t.Errorf("metric %s not received (got %v)", name, rc.metrics)
		}
	}
}
