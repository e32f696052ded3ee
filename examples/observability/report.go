package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/docket-go/docket/tracing"
)

// spanAttrs are the attributes the tree shows, in this order, without their
// "docket." prefix.
var spanAttrs = []attribute.Key{
	tracing.ScopeKey, tracing.ExecutionIDKey, tracing.ResultKey, tracing.TierKey,
	tracing.MissReasonKey, tracing.FlightJoinedKey, tracing.KeyHashKey, tracing.FlightWaitersKey,
}

// report renders the spans kept in memory as a tree, and the metrics.
func report(ctx context.Context, tel *telemetry) (string, error) {
	var b strings.Builder
	b.WriteString("\n== span tree ==\n")
	writeTree(&b, tel.spans.GetSpans())
	var rm metricdata.ResourceMetrics
	if err := tel.metrics.Collect(ctx, &rm); err != nil {
		return "", err
	}
	b.WriteString("\n== metrics ==\n")
	writeMetrics(&b, rm)
	b.WriteString("\n== hit ratio ==\n")
	writeHitRatio(&b, rm)
	return b.String(), nil
}

func writeTree(b *strings.Builder, spans tracetest.SpanStubs) {
	byID := map[trace.SpanID]tracetest.SpanStub{}
	children := map[trace.SpanID][]tracetest.SpanStub{}
	var roots []tracetest.SpanStub
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	for _, s := range spans {
		if _, ok := byID[s.Parent.SpanID()]; ok {
			children[s.Parent.SpanID()] = append(children[s.Parent.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) }
	root := func(s tracetest.SpanStub) string {
		for {
			p, ok := byID[s.Parent.SpanID()]
			if !ok {
				return s.Name
			}
			s = p
		}
	}
	var walk func(s tracetest.SpanStub, prefix, branch, next string)
	walk = func(s tracetest.SpanStub, prefix, branch, next string) {
		fmt.Fprintf(b, "%s%s%s%s\n", prefix, branch, s.Name, describe(s))
		for _, l := range s.Links {
			kind := ""
			for _, kv := range l.Attributes {
				if kv.Key == tracing.LinkKindKey {
					kind = kv.Value.AsString()
				}
			}
			target := "a span not in this run"
			if t, ok := byID[l.SpanContext.SpanID()]; ok {
				target = fmt.Sprintf("%s %s in %q", t.Name, attrOf(t, tracing.ResultKey), root(t))
			}
			fmt.Fprintf(b, "%s%s   link %s → %s\n", prefix, next, kind, target)
		}
		for _, e := range s.Events {
			fmt.Fprintf(b, "%s%s   event %s%s\n", prefix, next, e.Name, kvs(e.Attributes))
		}
		kids := children[s.SpanContext.SpanID()]
		slices.SortStableFunc(kids, byStart)
		for i, k := range kids {
			if i == len(kids)-1 {
				walk(k, prefix+next, "└─ ", "   ")
			} else {
				walk(k, prefix+next, "├─ ", "│  ")
			}
		}
	}
	slices.SortStableFunc(roots, byStart)
	for _, r := range roots {
		walk(r, "", "", "")
	}
}

func attrOf(s tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

// describe renders a Docket span's attributes.
func describe(s tracetest.SpanStub) string {
	var parts []string
	for _, k := range spanAttrs {
		if v := attrOf(s, k); v != "" {
			parts = append(parts, strings.TrimPrefix(string(k), "docket.")+"="+v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, " ")
}

func kvs(attrs []attribute.KeyValue) string {
	var b strings.Builder
	for _, kv := range attrs {
		fmt.Fprintf(&b, " %s=%s", strings.TrimPrefix(string(kv.Key), "docket."), kv.Value.String())
	}
	return b.String()
}

func writeMetrics(b *strings.Builder, rm metricdata.ResourceMetrics) {
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tracing.ScopeName {
			continue
		}
		metrics := slices.Clone(sm.Metrics)
		slices.SortFunc(metrics, func(a, b metricdata.Metrics) int { return strings.Compare(a.Name, b.Name) })
		for _, m := range metrics {
			var lines []string
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("  %-78s %d", set(p.Attributes), p.Value))
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("  %-78s count=%d sum=%d", set(p.Attributes), p.Count, p.Sum))
				}
			case metricdata.Histogram[float64]:
				// Durations differ from run to run: only their count.
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("  %-78s count=%d", set(p.Attributes), p.Count))
				}
			}
			slices.Sort(lines)
			fmt.Fprintf(b, "%s (%s)\n%s\n", m.Name, m.Unit, strings.Join(lines, "\n"))
		}
	}
}

func set(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, strings.TrimPrefix(string(kv.Key), "docket.")+"="+kv.Value.String())
	}
	return strings.Join(parts, " ")
}

// writeHitRatio derives from the metrics what each step's Persisted.Stats
// counts, as package tracing documents it: a docket.calls point with a tier
// counts hits of that tier, one with a miss reason misses for that reason;
// flight.joined marks the shared waits and result=error the errors; the
// runs are docket.step.duration's count. The hit ratio is hits over calls:
// an answer from any tier is a hit.
func writeHitRatio(b *strings.Builder, rm metricdata.ResourceMetrics) {
	type tally struct {
		calls, shared, errors, runs uint64
		hits, misses                map[string]uint64
	}
	steps := map[string]*tally{}
	get := func(s attribute.Set) *tally {
		v, _ := s.Value(tracing.StepKey)
		t := steps[v.AsString()]
		if t == nil {
			t = &tally{hits: map[string]uint64{}, misses: map[string]uint64{}}
			steps[v.AsString()] = t
		}
		return t
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tracing.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name != tracing.CallsMetric {
					continue
				}
				for _, p := range d.DataPoints {
					t, n := get(p.Attributes), uint64(p.Value)
					t.calls += n
					if tier, ok := p.Attributes.Value(tracing.TierKey); ok {
						t.hits[tier.AsString()] += n
					}
					if why, ok := p.Attributes.Value(tracing.MissReasonKey); ok {
						t.misses[why.AsString()] += n
					}
					if j, ok := p.Attributes.Value(tracing.FlightJoinedKey); ok && j.AsBool() {
						t.shared += n
					}
					if r, _ := p.Attributes.Value(tracing.ResultKey); r.AsString() == "error" {
						t.errors += n
					}
				}
			case metricdata.Histogram[float64]:
				if m.Name != tracing.StepDurationMetric {
					continue
				}
				for _, p := range d.DataPoints {
					get(p.Attributes).runs += p.Count
				}
			}
		}
	}
	// by renders counts by name, and returns their sum.
	by := func(m map[string]uint64) (uint64, string) {
		var sum uint64
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			sum += m[k]
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
		return sum, strings.Join(parts, " ")
	}
	for _, name := range slices.Sorted(maps.Keys(steps)) {
		t := steps[name]
		hits, byTier := by(t.hits)
		misses, byReason := by(t.misses)
		fmt.Fprintf(b, "  %-10s calls=%d hits=%d (%s) misses=%d (%s) shared=%d errors=%d runs=%d  hit ratio %d%%\n",
			name, t.calls, hits, byTier, misses, byReason, t.shared, t.errors, t.runs, 100*hits/max(t.calls, 1))
	}
}
