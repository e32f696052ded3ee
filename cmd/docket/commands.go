package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/codec"
	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// row is one listed entry, kept small: ls holds every row to sort them.
type row struct {
	key      keyer.Key
	version  string
	exec     string // the producing execution
	created  int64  // Unix nanoseconds; 0 unknown
	expires  int64  // Unix nanoseconds; 0 never
	size     int
	codec    uint8
	hasTrace bool
	trace    [16]byte
	span     [8]byte
	fail     *backends.Failure // a stored failure; nil for a result
}

func newRow(i backends.Info, intern map[string]string) row {
	r := row{key: i.Key, version: i.Version, exec: i.Execution, size: i.Size, codec: i.Codec}
	// Many entries share a step name: keep one copy of each.
	if s, ok := intern[r.key.Step]; ok {
		r.key.Step = s
	} else {
		intern[r.key.Step] = r.key.Step
	}
	if !i.Created.IsZero() {
		r.created = i.Created.UnixNano()
	}
	if !i.Expires.IsZero() {
		r.expires = i.Expires.UnixNano()
	}
	if len(i.Origin) == 24 { // package tracing's form: trace ID, span ID
		r.hasTrace = true
		copy(r.trace[:], i.Origin[:16])
		copy(r.span[:], i.Origin[16:])
	}
	return r
}

// compareRows orders rows by step, scope, execution, then key.
func compareRows(a, b row) int {
	return cmp.Or(
		strings.Compare(a.key.Step, b.key.Step),
		cmp.Compare(a.key.Scope.String(), b.key.Scope.String()),
		strings.Compare(a.key.Execution, b.key.Execution),
		bytes.Compare(a.key.Sum[:], b.key.Sum[:]),
	)
}

// scan lists the entries f matches into rows, sorted, and marks the
// stored failures among them; with onlyFailures it keeps those only.
func scan(ctx context.Context, o *opened, f backends.Filter, onlyFailures bool) ([]row, error) {
	var rows []row
	intern := map[string]string{}
	fails, err := listFailures(ctx, o, f, func(i backends.Info) error {
		rows = append(rows, newRow(i, intern))
		return nil
	})
	if err != nil {
		return nil, err
	}
	kept := rows[:0]
	for _, r := range rows {
		r.fail = fails.of(r.key)
		if r.fail != nil || !onlyFailures {
			kept = append(kept, r)
		}
	}
	rows = kept
	slices.SortFunc(rows, compareRows)
	return rows, nil
}

// opened is a command's store and clock.
type opened struct {
	s     store
	close func() error
	now   time.Time
	c     *common
	pos   []string
	e     env
}

// openFor opens the store a command names, and reads its clock.
func openFor(c *common, e env, pos []string) (*opened, error) {
	now, err := c.clock(e)
	if err != nil {
		return nil, err
	}
	s, closeFn, err := open(pos[0], c.prefix)
	if err != nil {
		return nil, err
	}
	return &opened{s: s, close: closeFn, now: now, c: c, pos: pos, e: e}, nil
}

// openFiltered parses the flags of a command that takes the filter flags
// and one STORE (ls, stats), opens the store and makes the filter. The
// caller closes o.
func openFiltered(name string, args []string, e env) (o *opened, f backends.Filter, ff filterFlags, err error) {
	fs, c := newFlags(name, "STORE", e)
	ff.register(fs, true)
	pos, err := parse(fs, args, "STORE")
	if err != nil {
		return nil, f, ff, err
	}
	if o, err = openFor(c, e, pos); err != nil {
		return nil, f, ff, err
	}
	if f, err = ff.filter(o.now); err != nil {
		return nil, f, ff, errors.Join(err, o.close())
	}
	return o, f, ff, nil
}

// progress returns a progress bar for a scan, labelled what.
func (o *opened) progress(what string) *progress {
	p := newProgress(o.e, o.c.showBar(o.e))
	p.what = what
	return p
}

func cmdList(ctx context.Context, args []string, e env) (err error) {
	o, f, ff, err := openFiltered("ls", args, e)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.close()) }()
	rows, err := scan(ctx, o, f, ff.failures)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	if o.c.json {
		err = listJSON(w, rows, o.now)
	} else {
		err = listTable(w, rows, o.now)
	}
	return errors.Join(err, w.Flush())
}

func listTable(w *bufio.Writer, rows []row, now time.Time) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no entries")
		return err
	}
	// Columns are padded to the widest cell of the step, execution and
	// version columns (tabwriter would buffer every line to find them).
	ws, we, wv, wf := len("STEP"), len("EXECUTION"), len("VERSION"), len("FAILURE")
	for _, r := range rows {
		ws, we, wv = max(ws, len(orDash(r.key.Step))), max(we, len(orDash(r.exec))), max(wv, len(orDash(r.version)))
		wf = max(wf, len(failCell(r)))
	}
	line := make([]byte, 0, 256)
	pad := func(b []byte, s string, n int) []byte {
		b = append(b, s...)
		for range n - len(s) + 2 {
			b = append(b, ' ')
		}
		return b
	}
	line = pad(line, "STEP", ws)
	line = pad(line, "SCOPE", 8)
	line = pad(line, "EXECUTION", we)
	line = pad(line, "VERSION", wv)
	line = pad(line, "AGE", 7)
	line = pad(line, "TTL", 7)
	line = pad(line, "SIZE", 8)
	line = pad(line, "FAILURE", wf)
	line = pad(line, "TRACE", 32)
	line = append(line, "KEY\n"...)
	if _, err := w.Write(line); err != nil {
		return err
	}
	for _, r := range rows {
		line = line[:0]
		line = pad(line, orDash(r.key.Step), ws)
		line = pad(line, r.key.Scope.String(), 8)
		line = pad(line, orDash(r.exec), we)
		line = pad(line, orDash(r.version), wv)
		line = pad(line, age(r, now), 7)
		line = pad(line, ttl(r, now), 7)
		line = pad(line, strconv.Itoa(r.size), 8)
		line = pad(line, failCell(r), wf)
		if r.hasTrace {
			line = hex.AppendEncode(line, r.trace[:])
			line = append(line, "  "...)
		} else {
			line = pad(line, "-", 32)
		}
		line = append(line, r.key.String()...)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// failCell is the FAILURE column of r: the stored failure's code, or "-"
// for a result.
func failCell(r row) string {
	if r.fail == nil {
		return "-"
	}
	return token(r.fail.Code)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func age(r row, now time.Time) string {
	if r.created == 0 {
		return "-"
	}
	return short(now.Sub(time.Unix(0, r.created)))
}

func ttl(r row, now time.Time) string {
	if r.expires == 0 {
		return "never"
	}
	d := time.Unix(0, r.expires).Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Second:
		return "<1s" // short would say 0s, which reads as expired
	}
	return short(d)
}

// short formats d in at most two units: 45s, 3m20s, 5h12m, 3d4h.
func short(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%s%ds", neg, s)
	case s < 3600:
		return fmt.Sprintf("%s%dm%02ds", neg, s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%s%dh%02dm", neg, s/3600, s%3600/60)
	}
	return fmt.Sprintf("%s%dd%02dh", neg, s/86400, s%86400/3600)
}

// jsonEntry is an entry in -json output.
type jsonEntry struct {
	Key        string   `json:"key"`
	Step       string   `json:"step"`
	Scope      string   `json:"scope"`
	Execution  string   `json:"execution,omitempty"`
	Version    string   `json:"version,omitempty"`
	Created    string   `json:"created,omitempty"`
	Expires    string   `json:"expires,omitempty"`
	AgeSeconds *float64 `json:"age_seconds,omitempty"`
	TTLSeconds *float64 `json:"ttl_seconds,omitempty"` // absent: never expires
	Expired    bool     `json:"expired"`
	Size       int      `json:"size"`
	Codec      string   `json:"codec,omitempty"`
	TraceID    string   `json:"trace_id,omitempty"`
	SpanID     string   `json:"span_id,omitempty"`
	// Failure is set for a stored failure (middleware.WithErrorCaching),
	// which has no value.
	Failure *jsonFailure `json:"failure,omitempty"`
}

// jsonFailure is a stored failure in -json output.
type jsonFailure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func toJSON(r row, now time.Time) jsonEntry {
	j := jsonEntry{Key: r.key.String(), Step: r.key.Step, Scope: r.key.Scope.String(), Execution: r.exec,
		Version: r.version, Size: r.size, Codec: codecName(r.codec)}
	if r.created != 0 {
		t := time.Unix(0, r.created).UTC()
		j.Created = t.Format(time.RFC3339Nano)
		a := now.Sub(t).Seconds()
		j.AgeSeconds = &a
	}
	if r.expires != 0 {
		t := time.Unix(0, r.expires).UTC()
		j.Expires = t.Format(time.RFC3339Nano)
		left := max(t.Sub(now).Seconds(), 0)
		j.TTLSeconds = &left
		j.Expired = !t.After(now)
	}
	if r.hasTrace {
		j.TraceID, j.SpanID = hex.EncodeToString(r.trace[:]), hex.EncodeToString(r.span[:])
	}
	if r.fail != nil {
		j.Failure = &jsonFailure{Code: r.fail.Code, Message: r.fail.Message}
	}
	return j
}

func listJSON(w *bufio.Writer, rows []row, now time.Time) error {
	sep := "[\n  "
	for _, r := range rows {
		b, err := json.Marshal(toJSON(r, now))
		if err != nil {
			return err
		}
		_, _ = w.WriteString(sep)
		_, _ = w.Write(b)
		sep = ",\n  "
	}
	if len(rows) == 0 {
		_, err := w.WriteString("[]\n")
		return err
	}
	_, err := w.WriteString("\n]\n")
	return err
}

func codecName(id uint8) string {
	switch id {
	case 0:
		return ""
	case codec.IDJSON:
		return "json"
	case codec.IDGob:
		return "gob"
	case codec.IDMsgpack:
		return "msgpack"
	case codec.IDProto:
		return "proto"
	}
	return "codec " + strconv.Itoa(int(id))
}

// group is one line of stats.
type group struct {
	Step    string `json:"step"`
	Scope   string `json:"scope"`
	Entries int    `json:"entries"`
	Bytes   int64  `json:"bytes"`
	Expired int    `json:"expired"`
	// Failures counts stored failures (middleware.WithErrorCaching).
	Failures int `json:"failures"`
}

func cmdStats(ctx context.Context, args []string, e env) (err error) {
	o, f, ff, err := openFiltered("stats", args, e)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.close()) }()
	// The failures first, in a scan of their own: stats keeps no rows, so
	// it looks each entry up as List gives it.
	fails, err := listFailures(ctx, o, f, func(backends.Info) error { return nil })
	if err != nil {
		return err
	}
	type gk struct {
		step string
		sc   scope.Scope
	}
	groups := map[gk]*group{}
	total := group{Step: "TOTAL"}
	p := o.progress("scanning")
	now := o.now.UnixNano()
	err = o.s.List(ctx, f, func(i backends.Info) error {
		failed := fails.of(i.Key) != nil
		if ff.failures && !failed {
			return nil
		}
		k := gk{i.Key.Step, i.Key.Scope}
		g := groups[k]
		if g == nil {
			g = &group{Step: i.Key.Step, Scope: i.Key.Scope.String()}
			groups[k] = g
		}
		expired := !i.Expires.IsZero() && i.Expires.UnixNano() <= now
		for _, g := range []*group{g, &total} {
			g.Entries++
			g.Bytes += int64(i.Size)
			if expired {
				g.Expired++
			}
			if failed {
				g.Failures++
			}
		}
		p.add()
		return nil
	})
	p.done()
	if err != nil {
		return err
	}
	list := make([]group, 0, len(groups))
	for _, g := range groups {
		list = append(list, *g)
	}
	slices.SortFunc(list, func(a, b group) int {
		return cmp.Or(strings.Compare(a.Step, b.Step), strings.Compare(a.Scope, b.Scope))
	})
	if o.c.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Groups []group `json:"groups"`
			Total  group   `json:"total"`
		}{list, total})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "STEP\tSCOPE\tENTRIES\tBYTES\tEXPIRED\tFAILURES\n")
	for _, g := range append(list, total) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", orDash(g.Step), orDash(g.Scope), g.Entries, g.Bytes, g.Expired, g.Failures)
	}
	return tw.Flush()
}

func cmdGet(ctx context.Context, args []string, e env) (err error) {
	fs, c := newFlags("get", "STORE KEY", e)
	pos, err := parse(fs, args, "STORE", "KEY")
	if err != nil {
		return err
	}
	candidates, err := parseKey(pos[1])
	if err != nil {
		return err
	}
	o, err := openFor(c, e, pos)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.close()) }()
	var (
		info    backends.Info
		payload []byte
		found   keyer.Key
	)
	for _, k := range candidates {
		info, payload, err = o.s.Inspect(ctx, k)
		if err == nil || !errors.Is(err, backends.ErrNotFound) {
			found = k
			break
		}
	}
	if errors.Is(err, backends.ErrNotFound) {
		return fmt.Errorf("no entry %s", pos[1])
	}
	if err != nil {
		return err
	}
	r := newRow(info, map[string]string{})
	// Inspect does not say whether the entry is a stored failure, whose
	// payload is empty: read its header.
	if r.fail, err = readFailure(ctx, o.s, found); err != nil {
		if errors.Is(err, backends.ErrNotFound) {
			return fmt.Errorf("no entry %s (removed while it was read)", pos[1])
		}
		return fmt.Errorf("%s: read %s: %w", o.s.Name(), pos[1], err)
	}
	value, decoded := decodeValue(info.Codec, payload)
	if c.json {
		out := struct {
			jsonEntry
			Value    json.RawMessage `json:"value,omitempty"`
			ValueHex string          `json:"value_hex,omitempty"`
		}{jsonEntry: toJSON(r, o.now)}
		switch {
		case r.fail != nil:
		case decoded:
			out.Value = value
		default:
			out.ValueHex = hex.EncodeToString(payload)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	j := toJSON(r, o.now)
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 1, ' ', 0)
	for _, kv := range [][2]string{
		{"key", j.Key}, {"step", orDash(j.Step)}, {"scope", j.Scope}, {"execution", orDash(j.Execution)},
		{"version", orDash(j.Version)}, {"created", orDash(j.Created)}, {"age", age(r, o.now)},
		{"expires", orDash(j.Expires)}, {"ttl", ttl(r, o.now)}, {"size", strconv.Itoa(j.Size)},
		{"codec", orDash(j.Codec)}, {"trace", orDash(j.TraceID)}, {"span", orDash(j.SpanID)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	if r.fail != nil {
		fmt.Fprintf(tw, "failure:\tcode=%s message=%s\n", token(r.fail.Code), strconv.Quote(r.fail.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case r.fail != nil:
		// A stored failure has no value.
	case decoded:
		var buf bytes.Buffer
		_ = json.Indent(&buf, value, "", "  ")
		_, err = fmt.Fprintf(e.stdout, "value (%s):\n%s\n", j.Codec, buf.String())
	default:
		_, err = fmt.Fprintf(e.stdout, "value (%s, hex):\n%s\n", orDash(j.Codec), hex.EncodeToString(payload))
	}
	return err
}

// decodeValue decodes a payload of a codec that can be read without its Go
// type (JSON, msgpack) into JSON; ok is false for the others, and for a
// payload that does not decode or has no JSON form.
func decodeValue(id uint8, payload []byte) (json.RawMessage, bool) {
	var v any
	switch id {
	case codec.IDJSON:
		if err := codec.JSON.Unmarshal(payload, &v); err != nil {
			return nil, false
		}
	case codec.IDMsgpack:
		if err := codec.Msgpack.Unmarshal(payload, &v); err != nil {
			return nil, false
		}
	default:
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	return b, true
}

// parseKey parses a key as keyer.Key.String prints it. A Workflow key's
// execution ID and step name may hold '/', so its middle splits in more
// than one way: parseKey returns every key it may be, and get tries each
// (the store finds an entry by scope, execution and digest; Step is for
// display).
func parseKey(s string) ([]keyer.Key, error) {
	bad := func(why string) error {
		return fmt.Errorf("key %q: %s; want global/STEP/HEX or workflow/EXECUTION/STEP/HEX, as ls prints it", s, why)
	}
	head, rest, ok := strings.Cut(s, "/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		return nil, bad("too few parts")
	}
	middle, digest := rest[:i], rest[i+1:]
	var sum keyer.Sum
	if n, err := hex.Decode(sum[:], []byte(digest)); err != nil || n != len(sum) || len(digest) != 2*len(sum) {
		return nil, bad("the digest is not 64 hex digits")
	}
	switch head {
	case scope.Global.String():
		return []keyer.Key{{Scope: scope.Global, Step: middle, Sum: sum}}, nil
	case scope.Workflow.String():
		var keys []keyer.Key
		for j := range len(middle) {
			if middle[j] == '/' {
				keys = append(keys, keyer.Key{Scope: scope.Workflow, Execution: middle[:j], Step: middle[j+1:], Sum: sum})
			}
		}
		if len(keys) == 0 {
			return nil, bad("a workflow key needs an execution and a step")
		}
		return keys, nil
	}
	return nil, bad("unknown scope " + strconv.Quote(head))
}

func cmdPurge(ctx context.Context, args []string, e env) (err error) {
	fs, c := newFlags("purge", "(-step X [-version V] | -execution Y | -expired | -failures) STORE", e)
	var ff filterFlags
	ff.register(fs, false)
	yes := fs.Bool("y", false, "delete without asking")
	pos, err := parse(fs, args, "STORE")
	if err != nil {
		return err
	}
	chosen := 0
	for _, set := range []bool{ff.step != "", ff.execution != "", ff.expired} {
		if set {
			chosen++
		}
	}
	if chosen > 1 || chosen == 0 && !ff.failures || ff.hasVersion && ff.step == "" {
		fmt.Fprintln(e.stderr, "docket purge: give one of -step (with -version if you like), -execution or -expired; -failures alone or with one of them")
		fs.Usage()
		return errUsage
	}
	o, err := openFor(c, e, pos)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, o.close()) }()
	f, err := ff.filter(o.now)
	if err != nil {
		return err
	}
	if ff.failures {
		return purgeFailures(ctx, o, f, *yes)
	}
	if !*yes {
		n := 0
		p := o.progress("scanning")
		err := o.s.List(ctx, f, func(backends.Info) error { n++; p.add(); return nil })
		p.done()
		if err != nil {
			return err
		}
		if n == 0 {
			return report(e, c, 0)
		}
		if err := confirm(e, fmt.Sprintf("delete %d %s?", n, plural(n))); err != nil {
			return err
		}
	}
	n, err := o.s.DeleteMatching(ctx, f)
	if err != nil {
		// The count is true also when it failed midway.
		return stopped(e, n, err)
	}
	return report(e, c, n)
}

// purgeFailures removes the stored failures among the entries f matches.
// backends.Filter cannot select failures, so DeleteMatching cannot remove
// them alone: they are found as ls finds them and deleted one by one.
func purgeFailures(ctx context.Context, o *opened, f backends.Filter, yes bool) error {
	rows, err := scan(ctx, o, f, true)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return report(o.e, o.c, 0)
	}
	if !yes {
		if err := confirm(o.e, fmt.Sprintf("delete %d %s?", len(rows), plural(len(rows)))); err != nil {
			return err
		}
	}
	n := 0
	for _, r := range rows {
		// A run may have stored a result over the failure since the scan
		// (refresh does), or while the question was open: read the entry
		// again right before deleting it, so that a result does not go with
		// the failures. The stores have no compare-and-delete, so a result
		// stored between the two calls can still go; it is a cache entry,
		// and its step runs again.
		fl, err := readFailure(ctx, o.s, r.key)
		switch {
		case errors.Is(err, backends.ErrNotFound), errors.Is(err, backends.ErrCorrupt):
			continue
		case err != nil:
			return stopped(o.e, n, err)
		case fl == nil:
			continue
		}
		if err := o.s.Delete(ctx, r.key); err != nil {
			return stopped(o.e, n, err)
		}
		n++
	}
	return report(o.e, o.c, n)
}

// stopped reports how many entries a purge removed before err stopped it.
func stopped(e env, n int, err error) error {
	fmt.Fprintf(e.stderr, "docket: removed %d %s before the error\n", n, plural(n))
	return err
}

func report(e env, c *common, n int) error {
	if c.json {
		return json.NewEncoder(e.stdout).Encode(struct {
			Removed int `json:"removed"`
		}{n})
	}
	_, err := fmt.Fprintf(e.stdout, "removed %d %s\n", n, plural(n))
	return err
}

func plural(n int) string {
	if n == 1 {
		return "entry"
	}
	return "entries"
}
