package analysis

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// SummaryOptions controls Summarize.
type SummaryOptions struct {
	// Frequencies, when set, adds the frequent and rare classes to the depth-by-class statistics.
	Frequencies *FrequencyTable

	// ScoreBins is the number of bins of the score histograms; 0 means 20.
	ScoreBins int
}

// Summary collects every statistic of a set of traces made in one routing mode.
type Summary struct {
	Routing       string `json:"routing"`
	Router        string `json:"router"`
	NumRecursions int    `json:"num_recursions"`
	NumTraces     int    `json:"num_traces"`
	NumTokens     int    `json:"num_tokens"`

	DepthHistogram  DepthHistogram   `json:"depth_histogram"`
	MeanDepth       float64          `json:"mean_depth"`
	DepthByClass    []ClassDepths    `json:"depth_by_class"`
	DepthLoss       DepthLoss        `json:"depth_loss"`
	DeadTokenRatio  float64          `json:"dead_token_ratio"`
	SelectionCounts SelectionCounts  `json:"selection_counts"`
	Scores          []ScoreHistogram `json:"scores"`

	// SamplingAccuracy is measured for expert-choice traces only.
	SamplingAccuracy *Accuracy `json:"sampling_accuracy,omitempty"`

	// Loads, MaxVio and Entropy describe how token-choice traces spread over
	// the depths. They are NaN (and Loads empty) for expert-choice traces,
	// because the capacities fix those loads.
	Loads   []float64 `json:"loads,omitempty"`
	MaxVio  float64   `json:"max_vio"`
	Entropy float64   `json:"entropy"`
}

// Summarize runs every analysis on traces of one model in one routing mode.
func Summarize(traces []Trace, options SummaryOptions) (Summary, error) {
	if len(traces) == 0 {
		return Summary{}, fmt.Errorf("summary: no traces")
	}
	for _, tr := range traces {
		if err := tr.Validate(); err != nil {
			return Summary{}, err
		}
		if tr.Routing != traces[0].Routing || tr.Router != traces[0].Router || tr.ScoreThreshold != traces[0].ScoreThreshold {
			return Summary{}, fmt.Errorf("summary: trace %q is %s/%s but trace %q is %s/%s; summarize each routing mode separately",
				tr.Name, tr.Router, tr.Routing, traces[0].Name, traces[0].Router, traces[0].Routing)
		}
	}
	if options.ScoreBins <= 0 {
		options.ScoreBins = 20
	}

	summary := Summary{Routing: traces[0].Routing, Router: traces[0].Router, NumRecursions: traces[0].NumRecursions, NumTraces: len(traces)}
	summary.DepthHistogram = DepthHistogramOf(traces)
	summary.NumTokens = summary.DepthHistogram.Total
	summary.MeanDepth = summary.DepthHistogram.Mean()
	summary.DepthByClass = DepthByClass(traces, options.Frequencies)
	summary.DepthLoss = DepthVsLoss(traces)
	summary.SelectionCounts = SelectionCountsOf(traces)

	var err error
	if summary.DeadTokenRatio, err = DeadTokenRatio(traces); err != nil {
		return Summary{}, err
	}
	low, high := ScoreRange(traces)
	if summary.Scores, err = ScoreDistributions(traces, options.ScoreBins, low, high); err != nil {
		return Summary{}, err
	}

	summary.MaxVio, summary.Entropy = math.NaN(), math.NaN()
	if summary.Router == RouterTokenChoice {
		summary.Loads = DepthLoads(traces)
		summary.MaxVio, summary.Entropy = MaxVio(summary.Loads), RoutingEntropy(summary.Loads)
	} else {
		accuracy := SamplingAccuracy(traces, traces[0].ScoreThreshold)
		summary.SamplingAccuracy = &accuracy
	}
	return summary, nil
}

// Figure is one rendered figure: a file name and its content, SVG or an HTML fragment.
type Figure struct {
	Name    string // file name, e.g. "depth-histogram.svg"
	Title   string
	Content string
}

// Figures renders the figures of a summary and of its traces: the text of up
// to maxTexts traces coloured by depth (HTML), the step grid of the first
// trace, and the SVG charts. maxTokens caps each rendered text (0 shows all).
func Figures(summary Summary, traces []Trace, maxTexts, maxTokens int) []Figure {
	var figures []Figure
	var texts strings.Builder
	for i, tr := range traces {
		if i >= maxTexts {
			fmt.Fprintf(&texts, `<p style="font-family:sans-serif;color:#777">%d more traces not shown.</p>`, len(traces)-maxTexts)
			break
		}
		texts.WriteString(DepthHTML(tr, TextOptions{MaxTokens: maxTokens}))
	}
	figures = append(figures, Figure{Name: "depth-text.html", Title: "Text coloured by recursion depth", Content: texts.String()})
	if len(traces) > 0 {
		figures = append(figures, Figure{Name: "step-grid.svg", Title: "Token × recursion-step grid",
			Content: StepGridSVG(traces[0], TextOptions{MaxTokens: min(max(maxTokens, 1), 180)})})
	}

	title := fmt.Sprintf("Depth histogram (%s routing)", summary.Routing)
	figures = append(figures,
		Figure{Name: "depth-histogram.svg", Title: "Depth histogram", Content: DepthHistogramSVG(summary.DepthHistogram, title)},
		Figure{Name: "depth-by-class.svg", Title: "Depth by token class", Content: DepthByClassSVG(summary.DepthByClass)},
		Figure{Name: "depth-loss.svg", Title: "Depth vs next-token loss", Content: DepthLossSVG(summary.DepthLoss)},
		Figure{Name: "selection-counts.svg", Title: "Selection counts per position", Content: SelectionCountsSVG(summary.SelectionCounts)},
	)
	for i, svg := range ScoreDistributionSVGs(summary.Scores) {
		figures = append(figures, Figure{Name: fmt.Sprintf("scores-step-%d.svg", i+1), Title: fmt.Sprintf("Router scores at step %d", i+1), Content: svg})
	}
	return figures
}

// LoadBalanceFigures renders MaxVio and entropy over training from a metrics
// log; it returns nothing when the log has no token-choice balance metric.
func LoadBalanceFigures(records []MetricsRecord, numRecursions int) []Figure {
	points := LoadBalanceOverTraining(records)
	if len(points) == 0 {
		return nil
	}
	maxVio, entropy := LoadBalanceSVGs(points, numRecursions)
	return []Figure{
		{Name: "train-max-vio.svg", Title: "MaxVio over training", Content: maxVio},
		{Name: "train-entropy.svg", Title: "Routing entropy over training", Content: entropy},
	}
}

// ReportHTML assembles figures into one self-contained HTML page.
func ReportHTML(title string, summary Summary, figures []Figure) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n"+
		`<body style="font-family:sans-serif;max-width:1100px;margin:20px auto">`+"\n<h1>%s</h1>\n",
		escapeXML(title), escapeXML(title))
	b.WriteString(SummaryHTML(summary))
	for _, figure := range figures {
		fmt.Fprintf(&b, "<h2>%s</h2>\n%s\n", escapeXML(figure.Title), figure.Content)
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// SummaryHTML renders the headline numbers of a summary as a small HTML table.
func SummaryHTML(s Summary) string {
	rows := [][2]string{
		{"router, routing mode", fmt.Sprintf("%s, %s", s.Router, s.Routing)},
		{"traces, tokens", fmt.Sprintf("%d, %d", s.NumTraces, s.NumTokens)},
		{"mean depth", formatNumber(s.MeanDepth)},
		{"depth–loss correlation (Pearson, Spearman)", fmt.Sprintf("%s, %s", formatNumber(s.DepthLoss.Pearson), formatNumber(s.DepthLoss.Spearman))},
		{"dead-token ratio", formatCell(s.DeadTokenRatio, true)},
	}
	if s.SamplingAccuracy != nil {
		rows = append(rows, [2]string{"sampling accuracy", formatCell(s.SamplingAccuracy.Overall, true)})
	}
	if len(s.Loads) > 0 {
		rows = append(rows, [2]string{"MaxVio, entropy (nats)", fmt.Sprintf("%s, %s", formatNumber(s.MaxVio), formatNumber(s.Entropy))})
	}
	var b strings.Builder
	b.WriteString(`<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px">`)
	for _, row := range rows {
		fmt.Fprintf(&b, `<tr><td style="padding:2px 10px 2px 0;color:#555">%s</td><td style="padding:2px 0">%s</td></tr>`,
			escapeXML(row[0]), escapeXML(row[1]))
	}
	b.WriteString(`</table>`)
	return b.String()
}

// WriteReport writes into dir: every figure as its own file, report.html with
// all of them, summary.json and traces.json. It creates dir when missing and
// returns the paths it wrote.
func WriteReport(dir, title string, summary Summary, traces []Trace, figures []Figure) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating report folder: %w", err)
	}
	var written []string
	write := func(name string, data []byte) error {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		written = append(written, path)
		return nil
	}

	for _, figure := range figures {
		content := figure.Content
		if strings.HasSuffix(figure.Name, ".html") {
			content = fmt.Sprintf("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head><body>%s</body></html>\n",
				escapeXML(figure.Title), content)
		}
		if err := write(figure.Name, []byte(content)); err != nil {
			return written, err
		}
	}
	if err := write("report.html", []byte(ReportHTML(title, summary, figures))); err != nil {
		return written, err
	}

	summaryJSON, err := MarshalIndentSafe(summary)
	if err != nil {
		return written, fmt.Errorf("encoding the summary: %w", err)
	}
	if err := write("summary.json", append(summaryJSON, '\n')); err != nil {
		return written, err
	}
	tracesJSON, err := MarshalIndentSafe(traces)
	if err != nil {
		return written, fmt.Errorf("encoding the traces: %w", err)
	}
	return written, write("traces.json", append(tracesJSON, '\n'))
}
