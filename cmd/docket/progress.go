package main

import (
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// barAfter is how many entries a scan reads before it shows a bar: short
// scans finish before one would be worth drawing.
const barAfter = 10_000

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// progress counts the entries a scan has read and, once there are many,
// draws a spinner with the count on stderr. The total is unknown: stores
// do not count their entries without reading them.
type progress struct {
	on   bool
	e    env
	what string // the bar's label
	n    int64
	bar  *progressbar.ProgressBar
}

func newProgress(e env, on bool) *progress { return &progress{on: on, e: e, what: "scanning"} }

func (p *progress) add() {
	p.n++
	if !p.on || p.n < barAfter {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(p.e.stderr),
			progressbar.OptionSetDescription(p.what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("entries"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionClearOnFinish(),
		)
		_ = p.bar.Add64(p.n)
		return
	}
	if p.n%1024 == 0 {
		_ = p.bar.Set64(p.n)
	}
}

// done removes the bar.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Set64(p.n)
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}
