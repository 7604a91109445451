package main

import (
	"errors"
	"flag"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"

	"github.com/gomor/gomor/analysis"
)

func init() {
	register(command{
		name:    "analyse",
		summary: "trace how a trained MoR routes tokens and write depth, score and load figures",
		run:     runAnalyse,
	})
}

type analyseFlags struct {
	run       string
	texts     string
	rows      int
	routings  string
	out       string
	maxTokens int
	maxTexts  int
	freqRows  int
}

func parseAnalyseFlags(args []string) (analyseFlags, error) {
	var f analyseFlags
	flags := flag.NewFlagSet("analyse", flag.ContinueOnError)
	flags.StringVar(&f.run, "run", "", "run directory written by mor train (its newest complete checkpoint is used) or one checkpoint directory (required)")
	flags.StringVar(&f.texts, "text", "", "comma-separated UTF-8 text files to trace; each is cut into rows of the run's sequence length")
	flags.IntVar(&f.rows, "rows", 32, "validation rows of the run's packed data to trace as well; 0 traces none (then --text is required)")
	flags.StringVar(&f.routings, "routing", "top-k,causal", "comma-separated routing modes: top-k (sequence-level, as in training) and causal (router threshold, no look-ahead)")
	flags.StringVar(&f.out, "out", "", "output folder; empty means <run>/analysis; each routing mode gets a subfolder")
	flags.IntVar(&f.maxTokens, "max-tokens", 240, "tokens shown per coloured text (first two thirds and last third); 0 shows all")
	flags.IntVar(&f.maxTexts, "max-texts", 8, "traces shown as coloured text in each report")
	flags.IntVar(&f.freqRows, "freq-rows", 2000, "training rows counted to split tokens into frequent and rare (the frequent ids cover half of those tokens); 0 skips the frequency classes")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: mor analyse --run DIR [--text FILE[,FILE...]] [flags]

Runs a trained MoR model over texts and validation rows in each routing mode and records,
for every token, its recursion depth, its router score at each step and whether each step
selected it. It writes, per routing mode, the text coloured by depth (HTML), the token ×
step grid, depth histograms overall and by token class, depth vs next-token loss,
selections per position with the dead-token ratio, router score histograms per step
(SVG), report.html with all of them, summary.json and traces.json. For token-choice runs
it also draws MaxVio and routing entropy over training from metrics.jsonl.

Flags:
`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return f, err
	}
	if flags.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q; run `mor analyse --help`", flags.Args())
	}
	switch {
	case f.run == "":
		return f, errors.New("missing --run: pass the run directory of `mor train` or a checkpoint directory")
	case f.rows < 0:
		return f, fmt.Errorf("invalid --rows %d: use 0 or a positive number", f.rows)
	case f.rows == 0 && f.texts == "":
		return f, errors.New("nothing to trace: pass --text FILE or --rows above 0")
	case f.maxTokens < 0 || f.maxTexts < 0 || f.freqRows < 0:
		return f, errors.New("invalid --max-tokens, --max-texts or --freq-rows: use 0 or a positive number")
	}
	for _, mode := range splitList(f.routings) {
		if mode != analysis.RoutingTopK && mode != analysis.RoutingCausal {
			return f, fmt.Errorf("invalid --routing %q: use top-k, causal or both separated by a comma", mode)
		}
	}
	return f, nil
}

func runAnalyse(args []string) error {
	f, err := parseAnalyseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	texts, err := readTexts(splitList(f.texts))
	if err != nil {
		return err
	}
	run, err := analysis.OpenRun(f.run)
	if err != nil {
		return err
	}
	b, _, err := newBackend()
	if err != nil {
		return err
	}
	out := f.out
	if out == "" {
		out = filepath.Join(run.RunDir(), "analysis")
	}

	var frequencies *analysis.FrequencyTable
	if f.freqRows > 0 {
		if frequencies, err = run.TrainingFrequencies(f.freqRows); err != nil {
			return err
		}
	}
	records, err := run.MetricsLog()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	summaries := map[string]analysis.Summary{}
	for _, mode := range splitList(f.routings) {
		summary, err := analyseMode(b, run, f, texts, mode, frequencies, records, filepath.Join(out, mode))
		if err != nil {
			return fmt.Errorf("%s routing: %w", mode, err)
		}
		summaries[mode] = summary
	}
	return writeIndex(out, run, summaries)
}

// readTexts reads each file as one text.
func readTexts(paths []string) ([]string, error) {
	texts := make([]string, len(paths))
	for i, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading --text: %w", err)
		}
		texts[i] = string(data)
	}
	return texts, nil
}

// analyseMode traces the texts and validation rows in one routing mode, writes its report
// into dir and prints its headline numbers.
func analyseMode(b compute.Backend, run *analysis.TrainedRun, f analyseFlags, texts []string, mode string,
	frequencies *analysis.FrequencyTable, records []analysis.MetricsRecord, dir string) (analysis.Summary, error) {
	options := analysis.ExtractOptions{Routing: mode}
	var traces []analysis.Trace
	if len(texts) > 0 {
		textTraces, err := run.TextTraces(b, texts, options)
		if err != nil {
			return analysis.Summary{}, err
		}
		traces = append(traces, textTraces...)
	}
	if f.rows > 0 {
		rowTraces, err := run.ValidationTraces(b, f.rows, options)
		if err != nil {
			return analysis.Summary{}, err
		}
		traces = append(traces, rowTraces...)
	}

	summary, err := analysis.Summarize(traces, analysis.SummaryOptions{Frequencies: frequencies})
	if err != nil {
		return analysis.Summary{}, err
	}
	figures := analysis.Figures(summary, traces, f.maxTexts, f.maxTokens)
	figures = append(figures, analysis.LoadBalanceFigures(records, run.Model.Config.NumRecursions)...)
	title := fmt.Sprintf("Routing of %s (%s routing)", run.Model.Config.Name, mode)
	written, err := analysis.WriteReport(dir, title, summary, traces, figures)
	if err != nil {
		return analysis.Summary{}, err
	}
	printSummary(summary, dir, len(written))
	return summary, nil
}

func printSummary(s analysis.Summary, dir string, files int) {
	fmt.Printf("%s routing: %d traces, %d tokens, mean depth %.3f, depth shares %s\n",
		s.Routing, s.NumTraces, s.NumTokens, s.MeanDepth, formatShares(s.DepthHistogram.Fractions()))
	fmt.Printf("  dead-token ratio %.3f, depth–loss Spearman %.3f", s.DeadTokenRatio, s.DepthLoss.Spearman)
	if s.SamplingAccuracy != nil {
		fmt.Printf(", sampling accuracy %.3f", s.SamplingAccuracy.Overall)
	}
	if len(s.Loads) > 0 {
		fmt.Printf(", MaxVio %.3f, entropy %.3f nats", s.MaxVio, s.Entropy)
	}
	fmt.Printf("\n  wrote %d files to %s (open report.html)\n", files, dir)
}

// formatShares prints the shares of depths 1..N_r as "d1 0.33 / d2 0.33 / ...".
func formatShares(fractions []float64) string {
	var parts []string
	for d := 1; d < len(fractions); d++ {
		parts = append(parts, fmt.Sprintf("d%d %.2f", d, fractions[d]))
	}
	return strings.Join(parts, " / ")
}

// writeIndex writes summary.json with every mode's summary and index.html linking the reports.
func writeIndex(out string, run *analysis.TrainedRun, summaries map[string]analysis.Summary) error {
	data, err := analysis.MarshalIndentSafe(map[string]any{
		"checkpoint": run.Checkpoint.Dir,
		"model":      run.Model.Config.Name,
		"summaries":  summaries,
	})
	if err != nil {
		return fmt.Errorf("encoding the summaries: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "summary.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing summary.json: %w", err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gomor routing analysis</title></head><body style=\"font-family:sans-serif\">\n"+
		"<h1>Routing analysis of %s</h1>\n<p>Checkpoint %s</p>\n<ul>\n", html.EscapeString(run.Model.Config.Name), html.EscapeString(run.Checkpoint.Dir))
	for _, mode := range []string{analysis.RoutingTopK, analysis.RoutingCausal} {
		if _, found := summaries[mode]; found {
			fmt.Fprintf(&b, "<li><a href=\"%s/report.html\">%s routing</a></li>\n", mode, mode)
		}
	}
	b.WriteString("</ul>\n</body></html>\n")
	return os.WriteFile(filepath.Join(out, "index.html"), []byte(b.String()), 0o644)
}
