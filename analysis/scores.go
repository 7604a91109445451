package analysis

import (
	"fmt"
	"math"
)

// ScoreHistogram splits the router scores of one recursion step into the
// candidates that step selected and those it did not.
type ScoreHistogram struct {
	Step       int       `json:"step"`  // 1-based recursion step
	Edges      []float64 `json:"edges"` // bin edges, len(Selected)+1, ascending
	Selected   []int     `json:"selected"`
	Unselected []int     `json:"unselected"`
}

// ScoreRange returns the range for score histograms: [0, 1] when every score
// lies in it (sigmoid and softmax scores), otherwise the smallest and largest
// score seen. It returns [0, 1] when there is no score.
func ScoreRange(traces []Trace) (low, high float64) {
	low, high = math.Inf(1), math.Inf(-1)
	for _, tr := range traces {
		for _, token := range tr.Tokens {
			for _, score := range token.Scores {
				if !math.IsNaN(score) {
					low, high = math.Min(low, score), math.Max(high, score)
				}
			}
		}
	}
	if low > high || (low >= 0 && high <= 1) {
		return 0, 1
	}
	if low == high {
		return low - 0.5, high + 0.5
	}
	return low, high
}

// ScoreDistributions bins the scores of the candidates of each recursion step
// into bins equal-width bins over [low, high]; scores outside the range go to
// the first or last bin. It returns one histogram per step, N_r in all.
func ScoreDistributions(traces []Trace, bins int, low, high float64) ([]ScoreHistogram, error) {
	if bins < 1 || !(high > low) {
		return nil, fmt.Errorf("score histogram: need bins ≥ 1 and high > low, got bins = %d over [%g, %g]", bins, low, high)
	}
	numRecursions := maxRecursions(traces)
	histograms := make([]ScoreHistogram, numRecursions)
	for step := range histograms {
		histograms[step] = ScoreHistogram{
			Step: step + 1, Edges: make([]float64, bins+1), Selected: make([]int, bins), Unselected: make([]int, bins),
		}
		for i := range histograms[step].Edges {
			histograms[step].Edges[i] = low + (high-low)*float64(i)/float64(bins)
		}
	}

	for _, tr := range traces {
		for _, token := range tr.Tokens {
			for step := range token.Scores {
				if !token.IsCandidate(step) {
					continue
				}
				bin := binIndex(token.Scores[step], bins, low, high)
				if token.Selected[step] {
					histograms[step].Selected[bin]++
				} else {
					histograms[step].Unselected[bin]++
				}
			}
		}
	}
	return histograms, nil
}

func binIndex(x float64, bins int, low, high float64) int {
	bin := int(math.Floor((x - low) / (high - low) * float64(bins)))
	return min(max(bin, 0), bins-1)
}

// Accuracy is the sampling accuracy of a router: how often a per-token
// threshold on its score agrees with the top-k selection it was trained for.
type Accuracy struct {
	// PerStep[r] is the fraction of step r+1's candidates for which
	// (score ≥ threshold) equals selected; NaN for a step with no candidate.
	PerStep []float64 `json:"per_step"`
	// Candidates[r] is the number of candidates at step r+1.
	Candidates []int `json:"candidates"`
	// Overall pools the candidates of every step.
	Overall float64 `json:"overall"`
}

// SamplingAccuracy measures, per recursion step, the fraction of candidates on
// which thresholding the router score agrees with the recorded selection. Use
// threshold 0.5 for sigmoid scores and 0 for tanh scores. In a trace made in
// the causal routing mode the selection is itself a threshold, so the accuracy
// is 1 by construction at every step of capacity below 1; measure it on top-k traces.
func SamplingAccuracy(traces []Trace, threshold float64) Accuracy {
	numRecursions := maxRecursions(traces)
	agree := make([]int, numRecursions)
	result := Accuracy{PerStep: make([]float64, numRecursions), Candidates: make([]int, numRecursions)}
	for _, tr := range traces {
		for _, token := range tr.Tokens {
			for step := range token.Scores {
				if !token.IsCandidate(step) {
					continue
				}
				result.Candidates[step]++
				if (token.Scores[step] >= threshold) == token.Selected[step] {
					agree[step]++
				}
			}
		}
	}

	totalAgree, totalCandidates := 0, 0
	for step := range agree {
		result.PerStep[step] = ratio(agree[step], result.Candidates[step])
		totalAgree += agree[step]
		totalCandidates += result.Candidates[step]
	}
	result.Overall = ratio(totalAgree, totalCandidates)
	return result
}

func ratio(numerator, denominator int) float64 {
	if denominator == 0 {
		return math.NaN()
	}
	return float64(numerator) / float64(denominator)
}
