package analysis

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomor/gomor/mor"
)

// scoredTrace is a 4-token trace, N_r = 3, with hand-chosen scores:
//
//	step 1: all selected,          scores 0.9 0.6 0.4 0.8  → 3 of 4 agree with score ≥ 0.5
//	step 2: tokens 0, 3 selected,  scores 0.7 0.6 0.1 0.3  → 2 of 4 agree
//	step 3: token 0 selected of 0, 3, scores 0.8 – – 0.2   → 2 of 2 agree
func scoredTrace() Trace {
	return Trace{Name: "scored", Routing: RoutingTopK, Router: RouterExpertChoice, NumRecursions: 3, ScoreThreshold: 0.5, Tokens: []TokenTrace{
		{ID: 0, Text: "a", Depth: 3, Scores: []float64{0.9, 0.7, 0.8}, Selected: []bool{true, true, true}, Loss: nan},
		{ID: 1, Text: "b", Depth: 1, Scores: []float64{0.6, 0.6, nan}, Selected: []bool{true, false, false}, Loss: nan},
		{ID: 2, Text: "c", Depth: 1, Scores: []float64{0.4, 0.1, nan}, Selected: []bool{true, false, false}, Loss: nan},
		{ID: 3, Text: "d", Depth: 2, Scores: []float64{0.8, 0.3, 0.2}, Selected: []bool{true, true, false}, Loss: nan},
	}}
}

func TestSamplingAccuracyHandComputed(t *testing.T) {
	tr := scoredTrace()
	if err := tr.Validate(); err != nil {
		t.Fatalf("the hand-built trace is invalid: %v", err)
	}
	accuracy := SamplingAccuracy([]Trace{tr}, 0.5)
	assertClose(t, "step 1 accuracy", accuracy.PerStep[0], 0.75, 1e-12)
	assertClose(t, "step 2 accuracy", accuracy.PerStep[1], 0.5, 1e-12)
	assertClose(t, "step 3 accuracy", accuracy.PerStep[2], 1, 1e-12)
	assertClose(t, "overall accuracy", accuracy.Overall, 7.0/10.0, 1e-12)
	assertInts(t, "candidates per step", accuracy.Candidates, []int{4, 4, 2})
}

func TestScoreDistributionsSplitBySelection(t *testing.T) {
	histograms, err := ScoreDistributions([]Trace{scoredTrace()}, 2, 0, 1)
	if err != nil {
		t.Fatalf("ScoreDistributions: %v", err)
	}
	assertInts(t, "step 1 selected", histograms[0].Selected, []int{1, 3})
	assertInts(t, "step 1 unselected", histograms[0].Unselected, []int{0, 0})
	assertInts(t, "step 2 selected", histograms[1].Selected, []int{1, 1})
	assertInts(t, "step 2 unselected", histograms[1].Unselected, []int{1, 1})
	assertInts(t, "step 3 selected", histograms[2].Selected, []int{0, 1})
	assertInts(t, "step 3 unselected", histograms[2].Unselected, []int{1, 0})
	if histograms[2].Step != 3 || len(histograms[2].Edges) != 3 || histograms[2].Edges[1] != 0.5 {
		t.Errorf("step 3 histogram: step %d, edges %v; want step 3, edges [0 0.5 1]", histograms[2].Step, histograms[2].Edges)
	}
}

func TestScoreDistributionsEdgeValues(t *testing.T) {
	tr := traceFromDepths("edges", 1, []int{1, 1, 1})
	tr.Tokens[0].Scores[0], tr.Tokens[1].Scores[0], tr.Tokens[2].Scores[0] = 1.0, -3, 0.5
	histograms, err := ScoreDistributions([]Trace{tr}, 4, 0, 1)
	if err != nil {
		t.Fatalf("ScoreDistributions: %v", err)
	}
	// 1.0 falls in the last bin, −3 is clamped into the first, 0.5 opens bin 3.
	assertInts(t, "selected per bin", histograms[0].Selected, []int{1, 0, 1, 1})
	if _, err := ScoreDistributions([]Trace{tr}, 0, 0, 1); err == nil {
		t.Errorf("0 bins: no error, want one")
	}
}

func TestScoreRange(t *testing.T) {
	low, high := ScoreRange([]Trace{scoredTrace()})
	if low != 0 || high != 1 {
		t.Errorf("sigmoid scores: range [%g, %g], want [0, 1]", low, high)
	}
	tanh := traceFromDepths("tanh", 1, []int{1, 1})
	tanh.Tokens[0].Scores[0], tanh.Tokens[1].Scores[0] = -0.8, 0.6
	low, high = ScoreRange([]Trace{tanh})
	if low != -0.8 || high != 0.6 {
		t.Errorf("tanh scores: range [%g, %g], want [-0.8, 0.6]", low, high)
	}
}

func TestMaxVioAndEntropy(t *testing.T) {
	// loads (0.5, 0.3, 0.2): mean 1/3, so MaxVio = (0.5 − 1/3)/(1/3) = 0.5.
	assertClose(t, "MaxVio of (0.5, 0.3, 0.2)", MaxVio([]float64{0.5, 0.3, 0.2}), 0.5, 1e-12)
	assertClose(t, "entropy of (0.5, 0.3, 0.2)", RoutingEntropy([]float64{0.5, 0.3, 0.2}), 1.0296530140645737, 1e-12)
	assertClose(t, "MaxVio of balanced counts", MaxVio([]float64{5, 5, 5}), 0, 1e-12)
	assertClose(t, "entropy of balanced counts", RoutingEntropy([]float64{5, 5, 5}), math.Log(3), 1e-12)
	assertClose(t, "MaxVio of one-hot loads", MaxVio([]float64{1, 0, 0}), 2, 1e-12)
	assertClose(t, "entropy of one-hot loads", RoutingEntropy([]float64{1, 0, 0}), 0, 1e-12)
	assertClose(t, "MaxVio of no load", MaxVio(nil), math.NaN(), 0)
	assertClose(t, "entropy of zero loads", RoutingEntropy([]float64{0, 0}), math.NaN(), 0)
}

func TestDepthLoads(t *testing.T) {
	loads := DepthLoads([]Trace{traceFromDepths("tc", 3, []int{1, 1, 2, 3})})
	if len(loads) != 3 {
		t.Fatalf("loads = %v, want 3 entries", loads)
	}
	assertClose(t, "load of depth 1", loads[0], 0.5, 1e-12)
	assertClose(t, "load of depth 3", loads[2], 0.25, 1e-12)
}

func TestLoadBalanceFromMetricsLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	log := strings.Join([]string{
		`{"step": 20, "lm_loss": 3.0, "metrics": {"token_loads": [0.5, 0.3, 0.2], "max_vio": [9]}}`,
		``,
		`{"step": 10, "lm_loss": 4.0, "metrics": {"max_vio": [1.5], "entropy": [0.7]}}`,
		`{"step": 30, "lm_loss": 2.5, "metrics": {"sampling_accuracy": [1, 0.9, 0.8]}}`,
		`{"lm_loss": 2.0, "metrics": {"token_loads": [1, 0, 0]}}`,
	}, "\n")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	records, err := ReadMetricsLog(path)
	if err != nil {
		t.Fatalf("ReadMetricsLog: %v", err)
	}
	if len(records) != 4 {
		t.Fatalf("read %d records, want 4 (the blank line skipped)", len(records))
	}

	points := LoadBalanceOverTraining(records)
	if len(points) != 2 {
		t.Fatalf("%d load points, want 2 (no balance field at step 30, no step in the last record)", len(points))
	}
	assertClose(t, "first point step", points[0].Step, 10, 0)
	assertClose(t, "logged MaxVio at step 10", points[0].MaxVio, 1.5, 0)
	assertClose(t, "logged entropy at step 10", points[0].Entropy, 0.7, 0)
	// The logged MaxVio of 9 at step 20 is ignored in favour of the load vector.
	assertClose(t, "MaxVio recomputed from the load at step 20", points[1].MaxVio, 0.5, 1e-12)
	assertClose(t, "entropy recomputed from the load at step 20", points[1].Entropy, 1.0296530140645737, 1e-12)

	accuracy := VectorSeries(records, MetricSamplingAccuracy)
	if len(accuracy) != 3 || accuracy[2].Name != "sampling_accuracy[3]" || len(accuracy[2].Steps) != 1 || accuracy[2].Values[0] != 0.8 {
		t.Errorf("sampling accuracy series %+v, want 3 series with step 3 at 0.8", accuracy)
	}

	loss := ScalarSeries(records, MetricLoss)
	if len(loss.Steps) != 3 || loss.Steps[0] != 10 || loss.Values[0] != 4.0 || loss.Values[2] != 2.5 {
		t.Errorf("loss series %+v, want steps 10, 20, 30 with losses 4, 3, 2.5", loss)
	}
}

func TestReadMetricsLogNamesBadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	if err := os.WriteFile(path, []byte("{\"step\": 1}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadMetricsLog(path)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v, want one naming line 2", err)
	}
}

func TestMetricNamesFollowModel(t *testing.T) {
	names := map[string][2]string{
		"token loads":       {MetricRouterLoad, mor.MetricTokenLoads},
		"MaxVio":            {MetricMaxVio, mor.MetricMaxVio},
		"entropy":           {MetricEntropy, mor.MetricEntropy},
		"sampling accuracy": {MetricSamplingAccuracy, mor.MetricSamplingAccuracy},
	}
	for metric, pair := range names {
		if pair[0] != pair[1] {
			t.Errorf("%s: analysis reads %q but the model logs %q", metric, pair[0], pair[1])
		}
	}
}
