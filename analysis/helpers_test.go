package analysis

import (
	"math"
	"testing"
)

var nan = math.NaN()

// traceFromDepths builds an expert-choice top-k trace in which every token is a
// candidate at steps 1..depth+1 (capped at N_r) and selected at steps 1..depth.
// Scores are 0.9 where selected and 0.1 where a candidate is not selected.
func traceFromDepths(name string, numRecursions int, depths []int) Trace {
	tr := Trace{Name: name, Routing: RoutingTopK, Router: RouterExpertChoice, NumRecursions: numRecursions, ScoreThreshold: 0.5}
	for i, depth := range depths {
		token := TokenTrace{ID: i, Text: " t", Depth: depth, Loss: nan,
			Scores: make([]float64, numRecursions), Selected: make([]bool, numRecursions)}
		for step := range numRecursions {
			switch {
			case step < depth:
				token.Selected[step] = true
				token.Scores[step] = 0.9
			case step == depth:
				token.Scores[step] = 0.1
			default:
				token.Scores[step] = nan
			}
		}
		tr.Tokens = append(tr.Tokens, token)
	}
	return tr
}

func assertClose(t *testing.T, name string, got, want, tolerance float64) {
	t.Helper()
	if math.IsNaN(want) {
		if !math.IsNaN(got) {
			t.Errorf("%s = %g, want NaN", name, got)
		}
		return
	}
	if math.IsNaN(got) || math.Abs(got-want) > tolerance {
		t.Errorf("%s = %.6g, want %.6g (tolerance %g)", name, got, want, tolerance)
	}
}

func assertInts(t *testing.T, name string, got, want []int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %v, want %v (first difference at index %d)", name, got, want, i)
			return
		}
	}
}
