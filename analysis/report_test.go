package analysis

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarizeExpertChoice(t *testing.T) {
	traces := []Trace{scoredTrace(), hostileTrace()}
	traces[1].Tokens = traces[1].Tokens[:4]
	summary, err := Summarize(traces, SummaryOptions{ScoreBins: 4})
	if err != nil {
		t.Fatalf("Summarize: %v", err)
	}
	if summary.NumTraces != 2 || summary.NumTokens != 8 {
		t.Errorf("%d traces and %d tokens, want 2 and 8", summary.NumTraces, summary.NumTokens)
	}
	// Depths 3 1 1 2 and 1 2 3 1.
	assertInts(t, "depth histogram", summary.DepthHistogram.Counts, []int{0, 4, 2, 2})
	assertClose(t, "mean depth", summary.MeanDepth, 14.0/8.0, 1e-12)
	// Last-step selections: position 0 (first trace) and 2 (second): 2 of 4 positions dead.
	assertClose(t, "dead-token ratio", summary.DeadTokenRatio, 0.5, 1e-12)
	if summary.SamplingAccuracy == nil {
		t.Fatalf("no sampling accuracy for expert-choice traces")
	}
	if len(summary.Scores) != 3 || len(summary.Scores[0].Selected) != 4 {
		t.Errorf("%d score histograms, want 3 of 4 bins", len(summary.Scores))
	}
	assertClose(t, "MaxVio of expert-choice", summary.MaxVio, math.NaN(), 0)
}

func TestSummarizeTokenChoiceLoads(t *testing.T) {
	tr := traceFromDepths("tc", 3, []int{1, 1, 1, 2, 3, 3})
	tr.Router = RouterTokenChoice
	summary, err := Summarize([]Trace{tr}, SummaryOptions{})
	if err != nil {
		t.Fatalf("Summarize: %v", err)
	}
	// Loads (1/2, 1/6, 1/3): mean 1/3, so MaxVio = (1/2 − 1/3)/(1/3) = 0.5.
	assertClose(t, "MaxVio", summary.MaxVio, 0.5, 1e-12)
	assertClose(t, "entropy", summary.Entropy, -(0.5*math.Log(0.5) + math.Log(1.0/6)/6 + math.Log(1.0/3)/3), 1e-12)
	if summary.SamplingAccuracy != nil {
		t.Errorf("token-choice summary has a sampling accuracy %+v, want none", summary.SamplingAccuracy)
	}
}

func TestSummarizeRejectsMixedModes(t *testing.T) {
	topK := traceFromDepths("a", 3, []int{1})
	causal := traceFromDepths("b", 3, []int{1})
	causal.Routing = RoutingCausal
	if _, err := Summarize([]Trace{topK, causal}, SummaryOptions{}); err == nil || !strings.Contains(err.Error(), "separately") {
		t.Errorf("mixed routing modes: error %v, want one asking to summarize them separately", err)
	}
	if _, err := Summarize(nil, SummaryOptions{}); err == nil {
		t.Errorf("no traces: no error, want one")
	}
}

func TestWriteReportFiles(t *testing.T) {
	traces := []Trace{hostileTrace(), scoredTrace()}
	traces[1].Tokens = append(traces[1].Tokens, traces[1].Tokens[:3]...)
	summary, err := Summarize(traces, SummaryOptions{ScoreBins: 5})
	if err != nil {
		t.Fatalf("Summarize: %v", err)
	}
	records := []MetricsRecord{
		{"step": 1.0, "metrics": map[string]any{"token_loads": []any{0.5, 0.25, 0.25}}},
		{"step": 2.0, "metrics": map[string]any{"token_loads": []any{0.4, 0.3, 0.3}}},
	}
	figures := append(Figures(summary, traces, 1, 0), LoadBalanceFigures(records, 3)...)
	dir := filepath.Join(t.TempDir(), "report")
	written, err := WriteReport(dir, `<Report> "x"`, summary, traces, figures)
	if err != nil {
		t.Fatalf("WriteReport: %v", err)
	}
	names := map[string]bool{}
	for _, path := range written {
		names[filepath.Base(path)] = true
	}
	for _, want := range []string{"report.html", "summary.json", "traces.json", "depth-text.html", "step-grid.svg",
		"depth-histogram.svg", "scores-step-3.svg", "train-max-vio.svg", "train-entropy.svg"} {
		if !names[want] {
			t.Errorf("%s not written; wrote %v", want, written)
		}
	}

	for name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, ".svg"):
			parseXML(t, string(data))
		case strings.HasSuffix(name, ".html"):
			if strings.Contains(string(data), "<script") || strings.Contains(string(data), "<Report>") {
				t.Errorf("%s contains unescaped hostile text", name)
			}
		}
	}

	var decoded map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatalf("summary.json is not valid JSON: %v", err)
	}
	if decoded["max_vio"] != nil {
		t.Errorf("summary.json max_vio = %v, want null for expert-choice", decoded["max_vio"])
	}
	var back []Trace
	data, _ = os.ReadFile(filepath.Join(dir, "traces.json"))
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("traces.json does not decode into traces: %v", err)
	}
	if len(back) != 2 || back[0].Tokens[0].Text != hostileTexts[0] || !math.IsNaN(back[1].Tokens[1].Scores[2]) {
		t.Errorf("traces.json round trip lost data: %d traces", len(back))
	}
}

func TestMarshalIndentSafe(t *testing.T) {
	value := struct {
		A float64            `json:"a"`
		B []float64          `json:"b,omitempty"`
		C map[string]float64 `json:"c"`
		D string             `json:"-"`
		E *float64           `json:"e"`
		F float32
	}{A: math.NaN(), C: map[string]float64{"x": math.Inf(1), "y": 2}, D: "hidden", F: 1.5}
	data, err := MarshalIndentSafe(value)
	if err != nil {
		t.Fatalf("MarshalIndentSafe: %v", err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, data)
	}
	if v, found := decoded["a"]; !found || v != nil {
		t.Errorf("a = %v (present %v), want null", v, found)
	}
	if _, found := decoded["b"]; found {
		t.Errorf("empty b with omitempty was written")
	}
	if _, found := decoded["D"]; found {
		t.Errorf("field tagged \"-\" was written")
	}
	c := decoded["c"].(map[string]any)
	if c["x"] != nil || c["y"] != 2.0 {
		t.Errorf("c = %v, want x null and y 2", c)
	}
	if decoded["F"] != 1.5 {
		t.Errorf("F = %v, want 1.5 under its Go name", decoded["F"])
	}
}

func TestSaveAndLoadTraces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "traces.json")
	if err := SaveTraces(path, []Trace{scoredTrace()}); err != nil {
		t.Fatalf("SaveTraces: %v", err)
	}
	traces, err := LoadTraces(path)
	if err != nil {
		t.Fatalf("LoadTraces: %v", err)
	}
	if len(traces) != 1 || traces[0].ScoreThreshold != 0.5 || traces[0].Tokens[2].Scores[1] != 0.1 || !math.IsNaN(traces[0].Tokens[2].Scores[2]) {
		t.Errorf("round trip changed the trace: %+v", traces)
	}
	if err := os.WriteFile(path, []byte(`[{"num_recursions": 0}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTraces(path); err == nil {
		t.Errorf("a trace with N_r = 0: no error, want one")
	}
}
