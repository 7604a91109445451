package analysis

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestDepthHistogramCounts(t *testing.T) {
	traces := []Trace{
		traceFromDepths("a", 3, []int{1, 2, 3, 1, 1}),
		traceFromDepths("b", 3, []int{3, 2}),
	}
	h := DepthHistogramOf(traces)
	assertInts(t, "counts per depth 0..3", h.Counts, []int{0, 3, 2, 2})
	if h.Total != 7 {
		t.Errorf("total = %d, want 7", h.Total)
	}
	assertClose(t, "mean depth", h.Mean(), 13.0/7.0, 1e-12)
	assertClose(t, "share of depth 1", h.Fractions()[1], 3.0/7.0, 1e-12)
}

func TestDepthByClassGroupsTokens(t *testing.T) {
	tr := traceFromDepths("classes", 3, []int{3, 1, 1, 2, 2, 3})
	for i, text := range []string{" def", "ens", ",", " 4", " cat", "."} {
		tr.Tokens[i].Text = text
	}
	frequencies := NewFrequencyTableFromCounts(map[int]int{0: 10, 1: 9, 2: 1}, 0.5)

	byClass := make(map[TokenClass]ClassDepths)
	for _, class := range DepthByClass([]Trace{tr}, frequencies) {
		byClass[class.Class] = class
	}
	assertInts(t, "word-start depths", byClass[ClassWordStart].Histogram.Counts, []int{0, 0, 0, 1})
	assertInts(t, "continuation depths", byClass[ClassContinuation].Histogram.Counts, []int{0, 1, 0, 0})
	assertInts(t, "punctuation depths", byClass[ClassPunctuation].Histogram.Counts, []int{0, 1, 0, 1})
	assertInts(t, "digit depths", byClass[ClassDigits].Histogram.Counts, []int{0, 0, 1, 0})
	assertInts(t, "whole-word depths", byClass[ClassWholeWord].Histogram.Counts, []int{0, 0, 1, 0})
	// Id 0 alone covers 10 of 20 counted tokens, so it is the only frequent id at mass 0.5.
	assertInts(t, "frequent depths", byClass[ClassFrequent].Histogram.Counts, []int{0, 0, 0, 1})
	assertInts(t, "rare depths", byClass[ClassRare].Histogram.Counts, []int{0, 2, 2, 1})
	assertClose(t, "punctuation mean depth", byClass[ClassPunctuation].MeanDepth, 2, 1e-12)
	assertClose(t, "empty class mean depth", byClass[ClassOther].MeanDepth, math.NaN(), 0)
}

func TestDepthVsLossHandComputed(t *testing.T) {
	tr := traceFromDepths("loss", 3, []int{1, 1, 2, 3, 2})
	for i, loss := range []float64{1, 3, 4, 6, nan} {
		tr.Tokens[i].Loss = loss
	}
	result := DepthVsLoss([]Trace{tr})
	assertClose(t, "mean loss at depth 1", result.MeanLoss[1], 2, 1e-12)
	assertClose(t, "mean loss at depth 2", result.MeanLoss[2], 4, 1e-12)
	assertClose(t, "mean loss at depth 3", result.MeanLoss[3], 6, 1e-12)
	assertClose(t, "mean loss at depth 0", result.MeanLoss[0], math.NaN(), 0)
	assertInts(t, "tokens with a loss per depth", result.Count, []int{0, 2, 1, 1})
	// By hand: cov 5.5, var(depth) 2.75, var(loss) 13 (sums of squares).
	assertClose(t, "Pearson", result.Pearson, 5.5/math.Sqrt(2.75*13), 1e-12)
	// Ranks: depth (1.5, 1.5, 3, 4), loss (1, 2, 3, 4): cov 4.5, variances 4.5 and 5.
	assertClose(t, "Spearman", result.Spearman, 4.5/math.Sqrt(4.5*5), 1e-12)
}

func TestPearsonConstantInputIsNaN(t *testing.T) {
	assertClose(t, "Pearson of a constant", Pearson([]float64{2, 2, 2}, []float64{1, 2, 3}), math.NaN(), 0)
	assertClose(t, "Pearson of one point", Pearson([]float64{1}, []float64{1}), math.NaN(), 0)
	assertClose(t, "Pearson of a perfect inverse", Pearson([]float64{1, 2, 3}, []float64{6, 4, 2}), -1, 1e-12)
}

func TestSelectionCountsPerPosition(t *testing.T) {
	traces := []Trace{
		traceFromDepths("a", 2, []int{2, 1, 2}),
		traceFromDepths("b", 2, []int{2, 2}),
	}
	counts := SelectionCountsOf(traces)
	assertInts(t, "rows per position", counts.Rows, []int{2, 2, 1})
	assertInts(t, "step 1 selections", counts.Counts[0], []int{2, 2, 1})
	assertInts(t, "step 2 selections", counts.Counts[1], []int{2, 1, 1})
}

func TestDeadTokenRatio(t *testing.T) {
	// Last-step selections: row 1 {0}, row 2 {0, 2}, row 3 {2}: positions 1 and 3 are dead.
	traces := []Trace{
		traceFromDepths("r1", 3, []int{3, 1, 2, 1}),
		traceFromDepths("r2", 3, []int{3, 2, 3, 1}),
		traceFromDepths("r3", 3, []int{1, 2, 3, 2}),
	}
	ratio, err := DeadTokenRatio(traces)
	if err != nil {
		t.Fatalf("DeadTokenRatio: %v", err)
	}
	assertClose(t, "dead-token ratio of 3 rows", ratio, 0.5, 1e-12)

	// A longer row adds positions 4 and 5, of which it selects only 5 at the last step.
	longer := append(traces, traceFromDepths("r4", 3, []int{1, 1, 1, 1, 2, 3}))
	ratio, err = DeadTokenRatio(longer)
	if err != nil {
		t.Fatalf("DeadTokenRatio: %v", err)
	}
	assertClose(t, "dead-token ratio with a longer row", ratio, 3.0/6.0, 1e-12)

	collapsed := []Trace{traceFromDepths("c1", 3, []int{3, 2, 1}), traceFromDepths("c2", 3, []int{3, 1, 2})}
	ratio, _ = DeadTokenRatio(collapsed)
	assertClose(t, "dead-token ratio under positional collapse", ratio, 2.0/3.0, 1e-12)
}

func TestDeadTokenRatioRejectsMixedRecursions(t *testing.T) {
	_, err := DeadTokenRatio([]Trace{traceFromDepths("a", 3, []int{1}), traceFromDepths("b", 2, []int{1})})
	if err == nil || !strings.Contains(err.Error(), "N_r") {
		t.Errorf("mixed N_r: error %v, want one that names N_r", err)
	}
	if _, err := DeadTokenRatio(nil); err == nil {
		t.Errorf("no traces: no error, want one")
	}
}

func TestTraceValidate(t *testing.T) {
	good := traceFromDepths("good", 3, []int{1, 3})
	if err := good.Validate(); err != nil {
		t.Errorf("valid trace: %v", err)
	}
	badDepth := traceFromDepths("bad", 3, []int{1, 3})
	badDepth.Tokens[1].Depth = 2
	if err := badDepth.Validate(); err == nil || !strings.Contains(err.Error(), "position 1") {
		t.Errorf("depth 2 with 3 selected steps: error %v, want one naming position 1", err)
	}
	gap := traceFromDepths("gap", 3, []int{1})
	gap.Tokens[0].Selected = []bool{true, false, true}
	if err := gap.Validate(); err == nil {
		t.Errorf("selected at steps 1 and 3 but not 2: no error, want one")
	}
	short := traceFromDepths("short", 3, []int{1})
	short.Tokens[0].Scores = short.Tokens[0].Scores[:2]
	if err := short.Validate(); err == nil {
		t.Errorf("2 scores for N_r = 3: no error, want one")
	}
}

func TestTokenTraceJSONKeepsNaN(t *testing.T) {
	token := TokenTrace{ID: 7, Text: "<a>", Depth: 1, Scores: []float64{0.75, nan}, Selected: []bool{true, false}, Loss: nan}
	data, err := json.Marshal(token)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !strings.Contains(string(data), `"scores":[0.75,null]`) || !strings.Contains(string(data), `"loss":null`) {
		t.Errorf("JSON %s: want NaN score and loss written as null", data)
	}
	var back TokenTrace
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if back.Scores[0] != 0.75 || !math.IsNaN(back.Scores[1]) || !math.IsNaN(back.Loss) || back.Text != "<a>" {
		t.Errorf("round trip: %+v, want scores [0.75 NaN], loss NaN, text <a>", back)
	}
}
