package analysis

import (
	"fmt"
	"math"
	"sort"
)

// DepthHistogram counts tokens per depth: Counts[d] is the number of tokens of depth d, d = 0..N_r.
type DepthHistogram struct {
	Counts []int `json:"counts"`
	Total  int   `json:"total"`
}

// Fractions returns Counts divided by Total (all zeros when Total is 0).
func (h DepthHistogram) Fractions() []float64 {
	fractions := make([]float64, len(h.Counts))
	if h.Total == 0 {
		return fractions
	}
	for d, count := range h.Counts {
		fractions[d] = float64(count) / float64(h.Total)
	}
	return fractions
}

// Mean returns the mean depth, NaN for an empty histogram.
func (h DepthHistogram) Mean() float64 {
	if h.Total == 0 {
		return math.NaN()
	}
	sum := 0
	for d, count := range h.Counts {
		sum += d * count
	}
	return float64(sum) / float64(h.Total)
}

func (h *DepthHistogram) add(depth int) {
	h.Counts[depth]++
	h.Total++
}

func newDepthHistogram(numRecursions int) DepthHistogram {
	return DepthHistogram{Counts: make([]int, numRecursions+1)}
}

// DepthHistogramOf counts the depths of every token of every trace.
func DepthHistogramOf(traces []Trace) DepthHistogram {
	h := newDepthHistogram(maxRecursions(traces))
	for _, tr := range traces {
		for _, token := range tr.Tokens {
			h.add(token.Depth)
		}
	}
	return h
}

// ClassDepths is the depth histogram of one token class.
type ClassDepths struct {
	Class     TokenClass     `json:"class"`
	Histogram DepthHistogram `json:"histogram"`
	MeanDepth float64        `json:"mean_depth"` // NaN when the class has no token
}

// DepthByClass returns one depth histogram per shape class (ShapeClasses
// order) and, when frequencies is not nil, one for frequent and one for rare
// tokens. Classes with no token are kept, with an empty histogram.
func DepthByClass(traces []Trace, frequencies *FrequencyTable) []ClassDepths {
	numRecursions := maxRecursions(traces)
	histograms := make(map[TokenClass]*DepthHistogram)
	order := append([]TokenClass{}, ShapeClasses...)
	if frequencies != nil {
		order = append(order, ClassFrequent, ClassRare)
	}
	for _, class := range order {
		h := newDepthHistogram(numRecursions)
		histograms[class] = &h
	}

	for _, tr := range traces {
		shapes := ClassifyShapes(tokenTexts(tr))
		for i, token := range tr.Tokens {
			histograms[shapes[i]].add(token.Depth)
			if frequencies != nil {
				histograms[frequencies.Class(token.ID)].add(token.Depth)
			}
		}
	}

	result := make([]ClassDepths, len(order))
	for i, class := range order {
		result[i] = ClassDepths{Class: class, Histogram: *histograms[class], MeanDepth: histograms[class].Mean()}
	}
	return result
}

func tokenTexts(tr Trace) []string {
	texts := make([]string, len(tr.Tokens))
	for i, token := range tr.Tokens {
		texts[i] = token.Text
	}
	return texts
}

// DepthLoss relates each token's depth to its next-token loss.
type DepthLoss struct {
	// MeanLoss[d] is the mean loss in nats of tokens of depth d, NaN where there is none.
	MeanLoss []float64 `json:"mean_loss"`
	// Count[d] is the number of tokens of depth d that have a loss.
	Count []int `json:"count"`
	// Pearson is the linear correlation between depth and loss over all tokens with a loss.
	Pearson float64 `json:"pearson"`
	// Spearman is the rank correlation (ties get their average rank).
	Spearman float64 `json:"spearman"`
}

// DepthVsLoss computes mean loss per depth and the depth–loss correlations over
// every token whose Loss is not NaN. Correlations are NaN when fewer than two
// tokens have a loss or when depth or loss is constant.
func DepthVsLoss(traces []Trace) DepthLoss {
	numRecursions := maxRecursions(traces)
	sums := make([]float64, numRecursions+1)
	result := DepthLoss{MeanLoss: make([]float64, numRecursions+1), Count: make([]int, numRecursions+1)}
	var depths, losses []float64
	for _, tr := range traces {
		for _, token := range tr.Tokens {
			if math.IsNaN(token.Loss) {
				continue
			}
			sums[token.Depth] += token.Loss
			result.Count[token.Depth]++
			depths = append(depths, float64(token.Depth))
			losses = append(losses, token.Loss)
		}
	}
	for d := range sums {
		result.MeanLoss[d] = math.NaN()
		if result.Count[d] > 0 {
			result.MeanLoss[d] = sums[d] / float64(result.Count[d])
		}
	}
	result.Pearson = Pearson(depths, losses)
	result.Spearman = Pearson(ranks(depths), ranks(losses))
	return result
}

// Pearson returns the linear correlation coefficient of x and y, NaN when
// they have fewer than two points, different lengths, or zero variance.
func Pearson(x, y []float64) float64 {
	n := len(x)
	if n < 2 || len(y) != n {
		return math.NaN()
	}
	meanX, meanY := mean(x), mean(y)
	var covariance, varianceX, varianceY float64
	for i := range x {
		dx, dy := x[i]-meanX, y[i]-meanY
		covariance += dx * dy
		varianceX += dx * dx
		varianceY += dy * dy
	}
	if varianceX == 0 || varianceY == 0 {
		return math.NaN()
	}
	return covariance / math.Sqrt(varianceX*varianceY)
}

func mean(x []float64) float64 {
	sum := 0.0
	for _, v := range x {
		sum += v
	}
	return sum / float64(len(x))
}

// ranks returns the 1-based rank of each value, ties sharing their average rank.
func ranks(values []float64) []float64 {
	order := make([]int, len(values))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return values[order[a]] < values[order[b]] })
	result := make([]float64, len(values))
	for start := 0; start < len(order); {
		end := start
		for end < len(order) && values[order[end]] == values[order[start]] {
			end++
		}
		averageRank := float64(start+end+1) / 2 // mean of the ranks start+1..end
		for _, index := range order[start:end] {
			result[index] = averageRank
		}
		start = end
	}
	return result
}

// SelectionCounts holds, per recursion step and position, how many rows selected that position.
type SelectionCounts struct {
	// Counts[step][position] is the number of rows whose token at position was selected at step (0-based).
	Counts [][]int `json:"counts"`
	// Rows[position] is the number of rows at least position+1 tokens long.
	Rows []int `json:"rows"`
}

// SelectionCountsOf counts selections per step and position over rows that
// may differ in length.
func SelectionCountsOf(traces []Trace) SelectionCounts {
	numRecursions, length := maxRecursions(traces), 0
	for _, tr := range traces {
		length = max(length, tr.Length())
	}
	counts := SelectionCounts{Counts: make([][]int, numRecursions), Rows: make([]int, length)}
	for step := range counts.Counts {
		counts.Counts[step] = make([]int, length)
	}
	for _, tr := range traces {
		for pos, token := range tr.Tokens {
			counts.Rows[pos]++
			for step, selected := range token.Selected {
				if selected {
					counts.Counts[step][pos]++
				}
			}
		}
	}
	return counts
}

// DeadTokenRatio returns the fraction of positions never selected at the last
// recursion step (step N_r) in any row. A ratio near 1 − β_{N_r} (2/3 at
// N_r = 3) means the router always picks the same positions: positional
// collapse. Rows may differ in length; positions run up to the longest row.
// All traces must share one N_r.
func DeadTokenRatio(traces []Trace) (float64, error) {
	if len(traces) == 0 {
		return 0, fmt.Errorf("dead-token ratio: no traces")
	}
	numRecursions := traces[0].NumRecursions
	for _, tr := range traces {
		if tr.NumRecursions != numRecursions {
			return 0, fmt.Errorf("dead-token ratio: trace %q has N_r = %d but trace %q has %d; compute it per model",
				tr.Name, tr.NumRecursions, traces[0].Name, numRecursions)
		}
	}

	counts := SelectionCountsOf(traces)
	last := counts.Counts[numRecursions-1]
	if len(last) == 0 {
		return 0, fmt.Errorf("dead-token ratio: the traces have no tokens")
	}
	dead := 0
	for _, count := range last {
		if count == 0 {
			dead++
		}
	}
	return float64(dead) / float64(len(last)), nil
}
