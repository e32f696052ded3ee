package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/docket-go/docket/bench"
)

// palette: peers in greys and muted colours, Docket in blues and greens, so
// that Docket's bars stand out as a group.
var palette = map[string]color.RGBA{
	"direct":                        {0xb0, 0xb0, 0xb0, 0xff},
	"hand-rolled":                   {0x6e, 0x6e, 0x6e, 0xff},
	"otter":                         {0xe0, 0x9f, 0x3e, 0xff},
	"sturdyc":                       {0xc0, 0x50, 0x4d, 0xff},
	"exec-map":                      {0x8e, 0x6c, 0xb0, 0xff},
	"otter-binary-key":              {0xa0, 0x70, 0x20, 0xff},
	"docket-workflow-memory":        {0x1f, 0x5f, 0xbf, 0xff},
	"docket-workflow-memory+badger": {0x7f, 0xa8, 0xe8, 0xff},
	"docket-workflow-memory+sqlite": {0x4a, 0x7f, 0xd0, 0xff},
	"docket-global-memory":          {0x1a, 0x8a, 0x5a, 0xff},
	"docket-global-memory+badger":   {0x86, 0xcf, 0xa8, 0xff},
	"docket-global-memory+sqlite":   {0x4f, 0xb0, 0x80, 0xff},
	"docket-workflow-memory+redis":  {0x9c, 0x2c, 0x2c, 0xff},
	"docket-global-memory+redis":    {0xd0, 0x60, 0x60, 0xff},
}

// writeChart draws a grouped bar chart of calls/s, one group per scenario
// and one bar per implementation, on a logarithmic axis: the scenarios'
// rates differ by orders of magnitude.
func writeChart(path string, s summary, e env) error {
	var scenarios []string
	var systems []bench.System
	for _, r := range s.rows {
		if !slices.Contains(scenarios, r.scenario.Name) {
			scenarios = append(scenarios, r.scenario.Name)
		}
		if !slices.ContainsFunc(systems, func(x bench.System) bool { return x.Name == r.system.Name }) {
			systems = append(systems, r.system)
		}
	}
	// Bars are drawn as log10(calls/s) above a floor, a power of ten below
	// the slowest row; the axis is labelled in calls/s.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range s.rows {
		if v := r.med.callsPerSec; v > 0 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	// The floor lies at least half a decade below the slowest row, so
	// that its bar shows.
	floor, top := math.Floor(math.Log10(lo)-0.5), math.Ceil(math.Log10(hi))
	if top == floor {
		top++
	}

	p := plot.New()
	passes := "1 pass"
	if s.count > 1 {
		passes = fmt.Sprintf("median of %d passes", s.count)
	}
	p.Title.Text = fmt.Sprintf("calls/s (log scale), %s · %s, %d cores, %s", passes, e.cpu, e.cores, e.goVersion)
	p.Y.Label.Text = "calls/s"
	p.Y.Min, p.Y.Max = 0, top-floor
	var ticks []plot.Tick
	for k := floor; k <= top; k++ {
		ticks = append(ticks, plot.Tick{Value: k - floor, Label: decade(k)})
		for m := 2.0; m < 10 && k < top; m++ {
			ticks = append(ticks, plot.Tick{Value: k - floor + math.Log10(m)})
		}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)

	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = vg.Points(10)
	legend.Padding = vg.Points(4)
	width := vg.Points(9)
	for j, sys := range systems {
		vals := make(plotter.Values, len(scenarios))
		for i, sc := range scenarios {
			for _, r := range s.rows {
				if r.scenario.Name == sc && r.system.Name == sys.Name && r.med.callsPerSec > 0 {
					vals[i] = math.Log10(r.med.callsPerSec) - floor
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.Offset = width * vg.Length(float64(j)-float64(len(systems)-1)/2)
		bars.Color = palette[sys.Name]
		bars.LineStyle.Width = 0
		p.Add(bars)
		legend.Add(label(sys), bars)
	}
	p.NominalX(scenarios...)

	const w, h = 11.5 * vg.Inch, 5 * vg.Inch
	// Wide enough for viewers whose fallback font runs wider than the one
	// measured here.
	const legendWidth = 3.2 * vg.Inch
	img := vgsvg.New(w, h)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, -vg.Points(4)))
	legend.Draw(draw.Crop(dc, w-legendWidth+vg.Points(12), 0, 0, -vg.Points(30)))

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// decade labels 10^k calls/s: 1k, 10k, 100k, 1M, ...
func decade(k float64) string {
	units := []string{"", "k", "M", "G"}
	i := min(int(k)/3, len(units)-1)
	return strconv.Itoa(int(math.Pow(10, k-float64(3*i)))) + units[i]
}
