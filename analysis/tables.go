package analysis

import (
	"fmt"
	"math"
	"strings"
)

// SetupLabel describes a setup in a few words, for table cells.
func SetupLabel(s Setup) string {
	switch s.Model {
	case ModelVanilla:
		return "vanilla"
	case ModelRecursive:
		return fmt.Sprintf("recursive, %s, N_r = %d", s.Sharing, s.NumRecursions)
	}
	parts := []string{fmt.Sprintf("MoR %s, %s, N_r = %d, KV %s", s.Router, s.Sharing, s.NumRecursions, s.KV)}
	switch {
	case s.Sampling == SamplingRandom:
		parts = append(parts, "random router")
	case s.Sampling == SamplingAuxRouter:
		parts = append(parts, "aux router")
	default:
		parts = append(parts, fmt.Sprintf("%s %g", s.Sampling, s.Coeff))
	}
	if s.Sampling != SamplingRandom {
		parts = append(parts, fmt.Sprintf("%s α %g, %s", s.ScoreFunc, s.Alpha, s.Architecture))
	}
	if s.Warmup {
		parts = append(parts, "warm-up")
	}
	if s.ZLoss {
		parts = append(parts, "z-loss")
	}
	return strings.Join(parts, ", ")
}

// ablationColumns are the metric columns of an ablation table: a name, how to
// read it from our row and from a paper row, and how to print it.
var ablationColumns = []struct {
	name    string
	ours    func(AblationRow) float64
	paper   func(PaperRow) float64
	percent bool
}{
	{"NLL (top-k)", func(r AblationRow) float64 { return r.NLL }, func(p PaperRow) float64 { return p.NLL }, false},
	{"NLL (causal)", func(r AblationRow) float64 { return r.CausalNLL }, func(PaperRow) float64 { return math.NaN() }, false},
	{"dead tokens", func(r AblationRow) float64 { return r.DeadTokenRatio }, func(p PaperRow) float64 { return p.DeadTokenRatio }, true},
	{"sampling acc.", func(r AblationRow) float64 { return r.SamplingAccuracy }, func(p PaperRow) float64 { return p.SamplingAccuracy }, true},
	{"MaxVio", func(r AblationRow) float64 { return r.MaxVio }, func(p PaperRow) float64 { return p.MaxVio }, false},
	{"entropy", func(r AblationRow) float64 { return r.Entropy }, func(p PaperRow) float64 { return p.Entropy }, false},
}

func formatCell(value float64, percent bool) string {
	switch {
	case math.IsNaN(value):
		return "–"
	case percent:
		return fmt.Sprintf("%.1f%%", 100*value)
	default:
		return fmt.Sprintf("%.4f", value)
	}
}

// tableLines returns the header and one line per run and per matched paper
// row: our run first, then each paper row it mirrors, marked with its table.
func tableLines(rows []AblationRow) [][]string {
	header := []string{"run", "setup"}
	for _, column := range ablationColumns {
		header = append(header, column.name)
	}
	lines := [][]string{header}
	for _, row := range rows {
		line := []string{row.Run, SetupLabel(row.Setup)}
		for _, column := range ablationColumns {
			line = append(line, formatCell(column.ours(row), column.percent))
		}
		lines = append(lines, line)
		for _, paper := range row.Paper {
			line := []string{"  paper " + paper.Table, paper.Label}
			for _, column := range ablationColumns {
				line = append(line, formatCell(column.paper(paper), column.percent))
			}
			lines = append(lines, line)
		}
	}
	return lines
}

// AblationMarkdown renders an ablation table as Markdown, each run followed by
// the PaperRows it mirrors.
func AblationMarkdown(rows []AblationRow) string {
	lines := tableLines(rows)
	var b strings.Builder
	for i, line := range lines {
		cells := make([]string, len(line))
		for j, cell := range line {
			cells[j] = strings.ReplaceAll(cell, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|" + strings.Repeat("---|", len(line)) + "\n")
		}
	}
	fmt.Fprintf(&b, "\nPaper numbers: %s. They come from 360M-parameter models trained on billions of tokens; compare orderings, not values.\n", PaperSource)
	return b.String()
}

// AblationHTML renders an ablation table as an HTML table; paper rows are grey
// and italic under the run they mirror. Every cell is escaped.
func AblationHTML(rows []AblationRow) string {
	lines := tableLines(rows)
	var b strings.Builder
	b.WriteString(`<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px">`)
	for i, line := range lines {
		style := ""
		if i > 0 && strings.HasPrefix(line[0], "  paper") {
			style = ` style="color:#777;font-style:italic"`
		}
		b.WriteString("<tr" + style + ">")
		for j, cell := range line {
			tag, align := "td", "right"
			if i == 0 {
				tag = "th"
			}
			if j < 2 {
				align = "left"
			}
			fmt.Fprintf(&b, `<%s style="border-bottom:1px solid #ddd;padding:3px 8px;text-align:%s">%s</%s>`,
				tag, align, escapeXML(strings.TrimSpace(cell)), tag)
		}
		b.WriteString("</tr>")
	}
	fmt.Fprintf(&b, `</table><p style="font-family:sans-serif;font-size:12px;color:#555">Paper numbers: %s. They come from 360M-parameter models trained on billions of tokens; compare orderings, not values.</p>`,
		escapeXML(PaperSource))
	return b.String()
}

// AblationNLLSVG draws our NLL per run next to the NLL of the first paper row
// each run mirrors, on separate y-axes because the scales differ: two bar
// charts with the runs in the same order.
func AblationNLLSVG(rows []AblationRow) (ours, paper string) {
	categories := make([]string, len(rows))
	oursValues := make([]float64, len(rows))
	paperValues := make([]float64, len(rows))
	for i, row := range rows {
		categories[i] = row.Run
		oursValues[i] = row.NLL
		paperValues[i] = math.NaN()
		if len(row.Paper) > 0 {
			paperValues[i] = row.Paper[0].NLL
		}
	}
	width := max(640, 90*len(rows))
	oursChart := Chart{Title: "Our validation NLL (top-k routing)", YLabel: "NLL (nats)", Width: width}
	oursChart.YMin, oursChart.YMax = zoomedRange(oursValues)
	paperChart := Chart{Title: "NLL of the paper row each run mirrors", YLabel: "NLL (nats)", Width: width}
	paperChart.YMin, paperChart.YMax = zoomedRange(paperValues)
	ours = BarChartSVG(oursChart, categories, []BarSeries{{Name: "ours", Values: oursValues}})
	paper = BarChartSVG(paperChart, categories, []BarSeries{{Name: "paper", Values: paperValues}})
	return ours, paper
}

// zoomedRange returns a y range that starts below the smallest value, so bars
// of close NLLs differ visibly instead of all reaching up from 0.
func zoomedRange(values []float64) (float64, float64) {
	low, high := dataRange(values, false)
	span := high - low
	return low - 0.5*span, high + 0.1*span
}
