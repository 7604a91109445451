package analysis

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Chart sets the frame of an SVG chart. Zero sizes take the defaults.
type Chart struct {
	Title  string
	XLabel string
	YLabel string
	Width  int // pixels; default 640
	Height int // pixels; default 400

	// YMin and YMax fix the y-axis range when YMax > YMin; otherwise it fits the data.
	YMin, YMax float64

	// YFromZero makes a fitted y-axis of a line chart include 0 (bar charts always do).
	YFromZero bool
}

// LineSeries is one curve of a line chart. Points with a NaN coordinate are
// left out and break the line.
type LineSeries struct {
	Name   string
	X, Y   []float64
	Dashed bool
}

// BarSeries is one series of a bar chart or histogram: one value per category or bin.
type BarSeries struct {
	Name   string
	Values []float64
}

// Palette holds the series colours, in order (the Tableau 10 palette).
var Palette = []string{
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
	"#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
}

func seriesColor(i int) string { return Palette[i%len(Palette)] }

const (
	marginLeft   = 64.0
	marginRight  = 16.0
	marginTop    = 36.0
	marginBottom = 52.0
	legendRow    = 16.0
)

// LineChartSVG draws curves over a numeric x-axis as a self-contained SVG document.
func LineChartSVG(chart Chart, series []LineSeries) string {
	chart = chart.withDefaults()
	var xs, ys []float64
	for _, s := range series {
		xs = append(xs, s.X...)
		ys = append(ys, s.Y...)
	}
	xMin, xMax := dataRange(xs, false)
	yMin, yMax := chart.yRange(ys, chart.YFromZero)

	canvas := newCanvas(chart)
	plot := canvas.plotArea(len(series))
	plot.setRange(xMin, xMax, yMin, yMax)
	plot.drawAxes(canvas, chart, niceTicks(xMin, xMax, 6), nil)
	for i, s := range series {
		plot.drawLine(canvas, s, seriesColor(i))
	}
	canvas.drawLegend(seriesNames(series), chart)
	return canvas.finish()
}

// BarChartSVG draws grouped bars, one group per category and one bar per
// series in each group, as a self-contained SVG document. NaN values draw no bar.
func BarChartSVG(chart Chart, categories []string, series []BarSeries) string {
	chart = chart.withDefaults()
	var ys []float64
	for _, s := range series {
		ys = append(ys, s.Values...)
	}
	yMin, yMax := chart.yRange(ys, true)

	// Long category labels are drawn slanted, with the chart made taller to fit them.
	labelRotation, labelSpace := categoryLabelLayout(chart, categories)
	chart.Height += int(labelSpace)
	canvas := newCanvas(chart)
	plot := canvas.plotArea(len(series))
	plot.bottom -= labelSpace
	plot.setRange(0, float64(len(categories)), yMin, yMax)
	plot.categoryRotation = labelRotation
	plot.drawAxes(canvas, chart, nil, categories)

	groupWidth := 0.8
	barWidth := groupWidth / float64(max(len(series), 1))
	for i, s := range series {
		for category, value := range s.Values {
			if category >= len(categories) || math.IsNaN(value) {
				continue
			}
			left := float64(category) + (1-groupWidth)/2 + float64(i)*barWidth
			plot.drawBar(canvas, left, left+barWidth, value, seriesColor(i), 1,
				fmt.Sprintf("%s, %s: %s", s.Name, categories[category], formatNumber(value)))
		}
	}
	canvas.drawLegend(barNames(series), chart)
	return canvas.finish()
}

// HistogramSVG draws histograms that share bin edges as overlaid,
// half-transparent bars over a numeric x-axis, as a self-contained SVG document.
func HistogramSVG(chart Chart, edges []float64, series []BarSeries) string {
	chart = chart.withDefaults()
	var ys []float64
	for _, s := range series {
		ys = append(ys, s.Values...)
	}
	yMin, yMax := chart.yRange(ys, true)
	xMin, xMax := 0.0, 1.0
	if len(edges) >= 2 {
		xMin, xMax = edges[0], edges[len(edges)-1]
	}

	canvas := newCanvas(chart)
	plot := canvas.plotArea(len(series))
	plot.setRange(xMin, xMax, yMin, yMax)
	plot.drawAxes(canvas, chart, niceTicks(xMin, xMax, 6), nil)
	for i, s := range series {
		for bin, value := range s.Values {
			if bin+1 >= len(edges) || math.IsNaN(value) || value == 0 {
				continue
			}
			plot.drawBar(canvas, edges[bin], edges[bin+1], value, seriesColor(i), 0.6,
				fmt.Sprintf("%s, [%s, %s): %s", s.Name, formatNumber(edges[bin]), formatNumber(edges[bin+1]), formatNumber(value)))
		}
	}
	canvas.drawLegend(barNames(series), chart)
	return canvas.finish()
}

// categoryLabelLayout returns the rotation of the category labels of a bar
// chart (0, or −30° when the longest label is wider than its category) and
// the extra height the slanted labels need, in pixels.
func categoryLabelLayout(chart Chart, categories []string) (rotation, extraHeight float64) {
	const charWidth = 6.5 // approximate width of an 11-pixel sans-serif character
	if len(categories) == 0 {
		return 0, 0
	}
	longest := 0
	for _, category := range categories {
		longest = max(longest, len([]rune(category)))
	}
	labelWidth := charWidth * float64(longest)
	categoryWidth := (float64(chart.Width) - marginLeft - marginRight) / float64(len(categories))
	if labelWidth <= categoryWidth {
		return 0, 0
	}
	return -30, labelWidth / 2
}

func seriesNames(series []LineSeries) []string {
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s.Name
	}
	return names
}

func barNames(series []BarSeries) []string {
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s.Name
	}
	return names
}

func (c Chart) withDefaults() Chart {
	if c.Width <= 0 {
		c.Width = 640
	}
	if c.Height <= 0 {
		c.Height = 400
	}
	return c
}

// yRange returns the chart's fixed y range, or one that fits ys with a 5%
// margin on top, including 0 when includeZero is set.
func (c Chart) yRange(ys []float64, includeZero bool) (float64, float64) {
	if c.YMax > c.YMin {
		return c.YMin, c.YMax
	}
	low, high := dataRange(ys, includeZero)
	return low, high + 0.05*(high-low)
}

// dataRange returns the finite minimum and maximum of values, widened to a
// non-empty interval; [0, 1] when no value is finite.
func dataRange(values []float64, includeZero bool) (float64, float64) {
	low, high := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			low, high = math.Min(low, v), math.Max(high, v)
		}
	}
	if includeZero {
		low, high = math.Min(low, 0), math.Max(high, 0)
	}
	if low > high {
		return 0, 1
	}
	if low == high {
		return low - 0.5, high + 0.5
	}
	return low, high
}

// niceTicks returns about target tick values at 1, 2 or 5 times a power of ten inside [low, high].
func niceTicks(low, high float64, target int) []float64 {
	span := high - low
	if !(span > 0) || target < 1 {
		return nil
	}
	rawStep := span / float64(target)
	magnitude := math.Pow(10, math.Floor(math.Log10(rawStep)))
	step := magnitude
	for _, factor := range []float64{1, 2, 5, 10} {
		step = factor * magnitude
		if step >= rawStep {
			break
		}
	}
	var ticks []float64
	for k := math.Ceil(low/step - 1e-9); k*step <= high+step*1e-9; k++ {
		ticks = append(ticks, cleanZero(k*step))
	}
	return ticks
}

// cleanZero turns values within rounding noise of zero into 0, so ticks print as "0".
func cleanZero(x float64) float64 {
	if math.Abs(x) < 1e-12 {
		return 0
	}
	return x
}

// formatNumber prints a number with at most four significant digits.
func formatNumber(x float64) string {
	if math.IsNaN(x) {
		return "NaN"
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

// escapeXML escapes text for SVG/HTML content and double- or single-quoted
// attributes, and replaces invalid UTF-8, which XML cannot hold, by U+FFFD.
func escapeXML(text string) string {
	return html.EscapeString(strings.ToValidUTF8(text, "\uFFFD"))
}

// canvas accumulates the elements of one SVG document.
type canvas struct {
	width, height float64
	body          strings.Builder
}

func newCanvas(chart Chart) *canvas {
	c := &canvas{width: float64(chart.Width), height: float64(chart.Height)}
	if chart.Title != "" {
		c.text(c.width/2, 22, chart.Title, "middle", 15, "bold", 0)
	}
	return c
}

func (c *canvas) finish() string {
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif">`+
		`<rect x="0" y="0" width="%g" height="%g" fill="white"/>%s</svg>`,
		c.width, c.height, c.width, c.height, c.width, c.height, c.body.String())
}

func (c *canvas) text(x, y float64, content, anchor string, size float64, weight string, rotate float64) {
	transform := ""
	if rotate != 0 {
		transform = fmt.Sprintf(` transform="rotate(%g %.1f %.1f)"`, rotate, x, y)
	}
	fmt.Fprintf(&c.body, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%g" font-weight="%s"%s>%s</text>`,
		x, y, anchor, size, weight, transform, escapeXML(content))
}

func (c *canvas) line(x1, y1, x2, y2 float64, stroke string, width float64) {
	fmt.Fprintf(&c.body, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%g"/>`,
		x1, y1, x2, y2, stroke, width)
}

// plotArea returns the region inside the margins, leaving room for a legend
// row under the title when there are several series.
func (c *canvas) plotArea(numSeries int) *plotArea {
	top := marginTop
	if numSeries > 1 {
		top += legendRow
	}
	return &plotArea{left: marginLeft, top: top, right: c.width - marginRight, bottom: c.height - marginBottom}
}

// drawLegend writes the series names with their colours in one row under the title.
func (c *canvas) drawLegend(names []string, chart Chart) {
	if len(names) < 2 {
		return
	}
	x, y := marginLeft, marginTop+4
	for i, name := range names {
		fmt.Fprintf(&c.body, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/>`, x, y-9, seriesColor(i))
		c.text(x+14, y, name, "start", 11, "normal", 0)
		x += 24 + 6.5*float64(len([]rune(name)))
	}
}

// plotArea maps data coordinates to pixels.
type plotArea struct {
	left, top, right, bottom float64
	xMin, xMax, yMin, yMax   float64
	categoryRotation         float64 // degrees; 0 draws category labels level and centred
}

func (p *plotArea) setRange(xMin, xMax, yMin, yMax float64) {
	p.xMin, p.xMax, p.yMin, p.yMax = xMin, xMax, yMin, yMax
}

func (p *plotArea) px(x float64) float64 {
	return p.left + (x-p.xMin)/(p.xMax-p.xMin)*(p.right-p.left)
}

func (p *plotArea) py(y float64) float64 {
	return p.bottom - (y-p.yMin)/(p.yMax-p.yMin)*(p.bottom-p.top)
}

// drawAxes draws the frame, the y ticks and either numeric x ticks or
// category labels centred under each unit interval of the x-axis.
func (p *plotArea) drawAxes(c *canvas, chart Chart, xTicks []float64, categories []string) {
	c.line(p.left, p.bottom, p.right, p.bottom, "#333", 1)
	c.line(p.left, p.top, p.left, p.bottom, "#333", 1)

	for _, tick := range niceTicks(p.yMin, p.yMax, 5) {
		y := p.py(tick)
		c.line(p.left, y, p.right, y, "#e5e5e5", 1)
		c.text(p.left-6, y+4, formatNumber(tick), "end", 11, "normal", 0)
	}
	for _, tick := range xTicks {
		x := p.px(tick)
		c.line(x, p.bottom, x, p.bottom+4, "#333", 1)
		c.text(x, p.bottom+17, formatNumber(tick), "middle", 11, "normal", 0)
	}
	for i, category := range categories {
		if p.categoryRotation == 0 {
			c.text(p.px(float64(i)+0.5), p.bottom+17, category, "middle", 11, "normal", 0)
		} else {
			c.text(p.px(float64(i)+0.5), p.bottom+14, category, "end", 11, "normal", p.categoryRotation)
		}
	}

	if chart.XLabel != "" {
		c.text((p.left+p.right)/2, c.height-10, chart.XLabel, "middle", 12, "normal", 0)
	}
	if chart.YLabel != "" {
		c.text(16, (p.top+p.bottom)/2, chart.YLabel, "middle", 12, "normal", -90)
	}
}

// maxMarkedPoints is the longest series whose points get a marker with a
// tooltip; longer ones draw only the line, which keeps a 2048-position chart small.
const maxMarkedPoints = 200

func (p *plotArea) drawLine(c *canvas, s LineSeries, color string) {
	dash := ""
	if s.Dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	var segment []string
	flush := func() {
		if len(segment) > 1 {
			fmt.Fprintf(&c.body, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`,
				color, dash, strings.Join(segment, " "))
		}
		segment = segment[:0]
	}
	for i := range min(len(s.X), len(s.Y)) {
		if math.IsNaN(s.X[i]) || math.IsNaN(s.Y[i]) {
			flush()
			continue
		}
		x, y := p.px(s.X[i]), p.py(s.Y[i])
		segment = append(segment, fmt.Sprintf("%.1f,%.1f", x, y))
		if len(s.X) > maxMarkedPoints {
			continue
		}
		fmt.Fprintf(&c.body, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s</title></circle>`,
			x, y, color, escapeXML(fmt.Sprintf("%s: (%s, %s)", s.Name, formatNumber(s.X[i]), formatNumber(s.Y[i]))))
	}
	flush()
}

// drawBar draws a bar from the x-axis base (0, or the y range's edge when 0 is outside it) to value.
func (p *plotArea) drawBar(c *canvas, xLeft, xRight, value float64, color string, opacity float64, tooltip string) {
	base := math.Min(math.Max(0, p.yMin), p.yMax)
	clipped := math.Min(math.Max(value, p.yMin), p.yMax)
	top, bottom := p.py(math.Max(base, clipped)), p.py(math.Min(base, clipped))
	fmt.Fprintf(&c.body, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="%g"><title>%s</title></rect>`,
		p.px(xLeft), top, p.px(xRight)-p.px(xLeft), bottom-top, color, opacity, escapeXML(tooltip))
}
