package analysis

import (
	"fmt"
	"math"
)

// DepthHistogramSVG draws the share of tokens at each depth 1..N_r, with the
// share 1/N_r of a balanced split as a reference in the title.
func DepthHistogramSVG(h DepthHistogram, title string) string {
	fractions := h.Fractions()
	var categories []string
	var values []float64
	for d := 1; d < len(fractions); d++ {
		categories = append(categories, fmt.Sprintf("depth %d", d))
		values = append(values, fractions[d])
	}
	if len(fractions) > 0 && h.Counts[0] > 0 {
		categories = append([]string{"depth 0"}, categories...)
		values = append([]float64{fractions[0]}, values...)
	}
	chart := Chart{
		Title:  fmt.Sprintf("%s (%d tokens, mean depth %.2f)", title, h.Total, h.Mean()),
		XLabel: "recursion depth", YLabel: "share of tokens",
	}
	return BarChartSVG(chart, categories, []BarSeries{{Name: "tokens", Values: values}})
}

// DepthByClassSVG draws, for each token class with at least one token, the
// share of its tokens at each depth (one bar per depth), with the class size in its label.
func DepthByClassSVG(classes []ClassDepths) string {
	numRecursions := 0
	for _, class := range classes {
		numRecursions = max(numRecursions, len(class.Histogram.Counts)-1)
	}
	var categories []string
	series := make([]BarSeries, numRecursions)
	for d := range series {
		series[d].Name = fmt.Sprintf("depth %d", d+1)
	}
	for _, class := range classes {
		if class.Histogram.Total == 0 {
			continue
		}
		categories = append(categories, fmt.Sprintf("%s (%d)", class.Class, class.Histogram.Total))
		fractions := class.Histogram.Fractions()
		for d := range series {
			series[d].Values = append(series[d].Values, fractions[d+1])
		}
	}
	chart := Chart{
		Title: "Depth by token class", XLabel: "token class (number of tokens)", YLabel: "share of the class",
		Width: max(640, 110*len(categories)),
	}
	return BarChartSVG(chart, categories, series)
}

// DepthLossSVG draws the mean next-token loss of the tokens at each depth, with
// the depth–loss correlations in the title.
func DepthLossSVG(result DepthLoss) string {
	var categories []string
	var values []float64
	for d := 1; d < len(result.MeanLoss); d++ {
		categories = append(categories, fmt.Sprintf("depth %d (%d)", d, result.Count[d]))
		values = append(values, result.MeanLoss[d])
	}
	chart := Chart{
		Title:  fmt.Sprintf("Next-token loss by depth (Pearson %s, Spearman %s)", formatNumber(result.Pearson), formatNumber(result.Spearman)),
		XLabel: "recursion depth (number of tokens)", YLabel: "mean loss (nats)",
	}
	return BarChartSVG(chart, categories, []BarSeries{{Name: "mean loss", Values: values}})
}

// SelectionCountsSVG draws, per recursion step, the share of rows that
// selected each position. A flat line at β_r means no position is favoured;
// lines pinned at 0 and 1 show positional collapse.
func SelectionCountsSVG(counts SelectionCounts) string {
	var series []LineSeries
	for step, perPosition := range counts.Counts {
		s := LineSeries{Name: fmt.Sprintf("step %d", step+1)}
		for pos, count := range perPosition {
			s.X = append(s.X, float64(pos))
			s.Y = append(s.Y, float64(count)/float64(max(counts.Rows[pos], 1)))
		}
		series = append(series, s)
	}
	chart := Chart{
		Title: "Share of rows selecting each position", XLabel: "position", YLabel: "share of rows",
		YMin: 0, YMax: 1.05,
	}
	return LineChartSVG(chart, series)
}

// ScoreDistributionSVGs draws one histogram per recursion step of the router
// scores of selected and unselected candidates, each normalised to sum to 1.
func ScoreDistributionSVGs(histograms []ScoreHistogram) []string {
	figures := make([]string, len(histograms))
	for i, h := range histograms {
		chart := Chart{
			Title:  fmt.Sprintf("Router scores at step %d", h.Step),
			XLabel: "router score", YLabel: "share of the group", Width: 420, Height: 300,
		}
		figures[i] = HistogramSVG(chart, h.Edges, []BarSeries{
			{Name: fmt.Sprintf("selected (%d)", sum(h.Selected)), Values: normalised(h.Selected)},
			{Name: fmt.Sprintf("unselected (%d)", sum(h.Unselected)), Values: normalised(h.Unselected)},
		})
	}
	return figures
}

func sum(counts []int) int {
	total := 0
	for _, count := range counts {
		total += count
	}
	return total
}

func normalised(counts []int) []float64 {
	total := sum(counts)
	values := make([]float64, len(counts))
	for i, count := range counts {
		if total > 0 {
			values[i] = float64(count) / float64(total)
		}
	}
	return values
}

// LoadBalanceSVGs draws MaxVio and the routing entropy over training. The
// entropy chart has the maximum ln N_r as a dashed line.
func LoadBalanceSVGs(points []LoadBalance, numRecursions int) (maxVio, entropy string) {
	maxVioSeries := LineSeries{Name: "MaxVio"}
	entropySeries := LineSeries{Name: "entropy"}
	for _, point := range points {
		maxVioSeries.X = append(maxVioSeries.X, point.Step)
		maxVioSeries.Y = append(maxVioSeries.Y, point.MaxVio)
		entropySeries.X = append(entropySeries.X, point.Step)
		entropySeries.Y = append(entropySeries.Y, point.Entropy)
	}
	maxVio = LineChartSVG(Chart{
		Title: "Token-choice MaxVio over training (0 = balanced)", XLabel: "training step", YLabel: "MaxVio", YFromZero: true,
	}, []LineSeries{maxVioSeries})

	entropyChart := Chart{Title: "Token-choice routing entropy over training", XLabel: "training step", YLabel: "entropy (nats)", YFromZero: true}
	entropyCurves := []LineSeries{entropySeries}
	if numRecursions > 1 && len(points) > 0 {
		bound := math.Log(float64(numRecursions))
		entropyChart.YMin, entropyChart.YMax = 0, 1.05*bound
		entropyCurves = append(entropyCurves, LineSeries{
			Name: fmt.Sprintf("maximum ln %d", numRecursions), Dashed: true,
			X: []float64{points[0].Step, points[len(points)-1].Step}, Y: []float64{bound, bound},
		})
	}
	entropy = LineChartSVG(entropyChart, entropyCurves)
	return maxVio, entropy
}
