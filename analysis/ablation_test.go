package analysis

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/training"
)

// writeRun writes a run directory as `mor train` does: run.json with the
// preset's config, and, when results is not nil, an eval.json in the newest
// checkpoint plus a one-record metrics.jsonl.
func writeRun(t *testing.T, root, name, preset string, results []training.NLLResult, metricsLine string) string {
	t.Helper()
	config, err := mor.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Join(dir, "checkpoints", "step-00000010"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := training.WriteJSON(filepath.Join(dir, training.RunInfoFile), training.RunInfo{Preset: preset, Config: config}); err != nil {
		t.Fatal(err)
	}
	if results != nil {
		report := training.EvalReport{Model: config, NLL: results}
		if err := training.WriteJSON(filepath.Join(dir, "checkpoints", "step-00000010", training.EvalFile), report); err != nil {
			t.Fatal(err)
		}
	}
	if metricsLine != "" {
		if err := os.WriteFile(filepath.Join(dir, RunMetricsFile), []byte(metricsLine+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func ratioPointer(x float64) *float64 { return &x }

func TestSetupFromPresetsMatchesPaperRows(t *testing.T) {
	cases := []struct {
		preset string
		tables []string // the tables of the matched rows, in table order
		label  string   // a label that must be among the matched rows
	}{
		{"mor-ec-tiny-r3", []string{"Table 3", "Table 13"}, "aux loss 0.001, σ, α 0.1, linear (chosen)"},
		{"mor-ec-tiny-r2", []string{"Table 3"}, "MoR expert, cache, N_r = 2"},
		{"mor-ec-tiny-r3-kvshare", []string{"Table 3"}, "MoR expert, KV share, N_r = 3"},
		{"mor-tc-tiny-r3", []string{"Table 3", "Table 14"}, "loss 0.1, softmax, linear"},
		{"recursive-tiny-r3", []string{"Table 3"}, "Recursive, N_r = 3"},
		{"vanilla-tiny", []string{"Table 3"}, "Vanilla"},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			config, err := mor.Preset(c.preset)
			if err != nil {
				t.Fatalf("preset: %v", err)
			}
			matches := MatchPaperRows(SetupFromConfig(config))
			var tables []string
			found := false
			for _, row := range matches {
				tables = append(tables, row.Table)
				found = found || row.Label == c.label
			}
			if strings.Join(tables, ",") != strings.Join(c.tables, ",") {
				t.Errorf("matched tables %v, want %v (setup %+v)", tables, c.tables, SetupFromConfig(config))
			}
			if !found {
				t.Errorf("no matched row labelled %q among %d matches", c.label, len(matches))
			}
		})
	}
}

func TestSetupOfAblatedRouters(t *testing.T) {
	config, err := mor.Preset("mor-ec-tiny-r3")
	if err != nil {
		t.Fatal(err)
	}
	router := *config.Router
	router.ScoreFunc, router.Architecture, router.BCECoeff = "tanh", "mlp", 0.01
	config.Router = &router
	matches := MatchPaperRows(SetupFromConfig(config))
	if len(matches) != 1 || matches[0].NLL != 2.9426 {
		t.Errorf("tanh, MLP, coeff 0.01: matches %+v, want the Table 13 row with NLL 2.9426", matches)
	}

	router.RandomRouter = true
	matches = MatchPaperRows(SetupFromConfig(config))
	if len(matches) != 1 || matches[0].NLL != 2.9335 {
		t.Errorf("random router: matches %+v, want the Table 13 random row with NLL 2.9335", matches)
	}

	token, err := mor.Preset("mor-tc-tiny-r3")
	if err != nil {
		t.Fatal(err)
	}
	tokenRouter := *token.Router
	tokenRouter.LossFreeBiasRate, tokenRouter.Architecture = 0.001, "mlp"
	token.Router = &tokenRouter
	matches = MatchPaperRows(SetupFromConfig(token))
	if len(matches) != 1 || matches[0].MaxVio != 0.852 {
		t.Errorf("loss-free 0.001, softmax, MLP: matches %+v, want the Table 14 row with MaxVio 0.852", matches)
	}
}

func TestPaperRowsAreConsistent(t *testing.T) {
	counts := map[string]int{}
	for _, row := range PaperRows {
		counts[row.Table]++
		if row.Setup.Model == "" {
			t.Errorf("%s %q has no model family", row.Table, row.Label)
		}
		if row.DeadTokenRatio > 1 || row.SamplingAccuracy > 1 {
			t.Errorf("%s %q: rates %g, %g must be fractions", row.Table, row.Label, row.DeadTokenRatio, row.SamplingAccuracy)
		}
	}
	// The paper's Table 3 has 12 rows, Table 13 has 18 and Table 14 has 12.
	for table, want := range map[string]int{"Table 3": 12, "Table 13": 18, "Table 14": 12} {
		if counts[table] != want {
			t.Errorf("%s has %d rows, want %d", table, counts[table], want)
		}
	}
}

func TestReadRunsAndAblationTable(t *testing.T) {
	root := t.TempDir()
	writeRun(t, root, "b-recursive", "recursive-tiny-r3", []training.NLLResult{
		{Routing: training.SequenceTopK, NLL: 3.9},
		{Routing: training.SequenceTopK, MaxDepth: 1, NLL: 4.4},
		{Routing: training.SequenceTopK, MaxDepth: 2, NLL: 4.1},
	}, "")
	writeRun(t, root, "a-mor", "mor-ec-tiny-r3", []training.NLLResult{
		{Routing: training.SequenceTopK, NLL: 3.7, DeadTokenRatio: ratioPointer(0.01)},
		{Routing: training.CausalRouting, NLL: 3.8, DeadTokenRatio: ratioPointer(0.2)},
		{Routing: training.SequenceTopK, MaxDepth: 1, NLL: 0, Error: "failed"},
	}, `{"step": 10, "lm_loss": 3.6, "metrics": {"sampling_accuracy": [0.9, 1.0, 0.7]}}`)
	writeRun(t, root, "c-no-eval", "vanilla-tiny", nil, "")
	if err := os.MkdirAll(filepath.Join(root, "not-a-run"), 0o755); err != nil {
		t.Fatal(err)
	}

	runs, err := ReadRuns(root)
	if err != nil {
		t.Fatalf("ReadRuns: %v", err)
	}
	if len(runs) != 3 || runs[0].Name != "a-mor" || runs[2].Name != "c-no-eval" {
		t.Fatalf("runs %v, want a-mor, b-recursive, c-no-eval", runNames(runs))
	}
	if _, found := runs[0].Metric(EvalDepthNLL(1)); found {
		t.Errorf("a result with an error was stored")
	}
	depthNLL := runs[1].DepthNLL()
	if len(depthNLL) != 3 || depthNLL[0] != 4.4 || depthNLL[1] != 4.1 || depthNLL[2] != 3.9 {
		t.Errorf("b-recursive NLL per depth cap %v, want [4.4 4.1 3.9]", depthNLL)
	}

	rows := AblationTable(runs)
	assertClose(t, "a-mor NLL", rows[0].NLL, 3.7, 0)
	assertClose(t, "a-mor causal NLL", rows[0].CausalNLL, 3.8, 0)
	assertClose(t, "a-mor dead-token ratio", rows[0].DeadTokenRatio, 0.01, 0)
	// Candidates per step are L, L and 2L/3, so the weights are 1, 1 and 2/3.
	assertClose(t, "a-mor sampling accuracy", rows[0].SamplingAccuracy, (0.9+1.0+0.7*2.0/3.0)/(2+2.0/3.0), 1e-12)
	assertClose(t, "b-recursive NLL", rows[1].NLL, 3.9, 0)
	assertClose(t, "c-no-eval NLL", rows[2].NLL, math.NaN(), 0)
	if len(rows[0].Paper) != 2 {
		t.Errorf("a-mor mirrors %d paper rows, want 2 (Table 3 and Table 13)", len(rows[0].Paper))
	}

	markdown := AblationMarkdown(rows)
	for _, want := range []string{"| a-mor |", "3.7000", "1.0%", "paper Table 13", "2.8667", "arXiv 2507.10524"} {
		if !strings.Contains(markdown, want) {
			t.Errorf("Markdown table lacks %q:\n%s", want, markdown)
		}
	}
	parseXML(t, "<div>"+AblationHTML(rows)+"</div>")
	ours, paper := AblationNLLSVG(rows)
	parseXML(t, ours)
	parseXML(t, paper)
}

func TestReadRunErrors(t *testing.T) {
	if _, err := ReadRun(t.TempDir()); err == nil || !strings.Contains(err.Error(), training.RunInfoFile) {
		t.Errorf("empty directory: error %v, want one naming %s", err, training.RunInfoFile)
	}
	dir := writeRun(t, t.TempDir(), "bad-eval", "vanilla-tiny", nil, "")
	path := filepath.Join(dir, "checkpoints", "step-00000010", training.EvalFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRun(dir); err == nil || !strings.Contains(err.Error(), "eval.json") {
		t.Errorf("broken eval.json: error %v, want one naming eval.json", err)
	}
}

func TestOrderAgreement(t *testing.T) {
	rows := []AblationRow{
		{Run: "a", NLL: 3.1, Paper: []PaperRow{{Table: "Table 13", NLL: 2.90}}},
		{Run: "b", NLL: 3.3, Paper: []PaperRow{{Table: "Table 13", NLL: 2.95}}},
		{Run: "c", NLL: 3.0, Paper: []PaperRow{{Table: "Table 13", NLL: 2.87}}},
		{Run: "d", NLL: 3.2, Paper: []PaperRow{{Table: "Table 3", NLL: 2.8}}},
	}
	agreement := OrderAgreement(rows)
	assertClose(t, "Table 13 rank agreement", agreement["Table 13"], 1, 1e-12)
	if _, found := agreement["Table 3"]; found {
		t.Errorf("Table 3 has one matched run and should be left out, got %v", agreement)
	}
	rows[2].NLL = 3.4 // now our order is a < b < c, the paper's c < a < b
	assertClose(t, "Table 13 rank agreement after the swap", OrderAgreement(rows)["Table 13"], -0.5, 1e-12)
}

func runNames(runs []Run) []string {
	names := make([]string, len(runs))
	for i, run := range runs {
		names[i] = run.Name
	}
	return names
}
