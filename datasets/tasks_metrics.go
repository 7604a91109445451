package datasets

import (
	"math"
	"sort"
)

// itemOutcome is one item's contribution to the metrics.
type itemOutcome struct {
	group         string
	correct       float64 // acc: 1 when the most likely choice is gold
	correctNorm   float64 // acc_norm: 1 when the most likely choice per byte is gold
	logLikelihood float64 // GreedyContinuation only
	greedy        float64 // GreedyContinuation only
}

// scoreItem turns the results of one item's choices into its outcome.
func scoreItem(task *Task, item TaskItem, results []Result) itemOutcome {
	outcome := itemOutcome{group: item.Group}
	if task.Kind == GreedyContinuation {
		outcome.logLikelihood = results[0].LogLikelihood
		if results[0].IsGreedy {
			outcome.greedy = 1
		}
		return outcome
	}

	best, bestNorm := 0, 0
	for i := range results {
		if results[i].LogLikelihood > results[best].LogLikelihood {
			best = i
		}
		if perByte(results[i], item.Choices[i]) > perByte(results[bestNorm], item.Choices[bestNorm]) {
			bestNorm = i
		}
	}
	if best == item.Gold {
		outcome.correct = 1
	}
	if bestNorm == item.Gold {
		outcome.correctNorm = 1
	}
	return outcome
}

// perByte returns the log-likelihood divided by the choice text's length in
// bytes, without the target delimiter, as lm-evaluation-harness's acc_norm does
// (it divides by characters, which equal bytes for ASCII text).
func perByte(result Result, choice Choice) float64 {
	return result.LogLikelihood / float64(max(len(choice.Continuation), 1))
}

// summarize computes the task's metrics from its item outcomes.
func summarize(task *Task, outcomes []itemOutcome, shots int) TaskResult {
	result := TaskResult{Task: task.Name, Shots: shots, Items: len(outcomes)}
	groups := groupOutcomes(outcomes)
	if len(groups) == 1 {
		result.Metrics = metricsOf(task, outcomes)
		return result
	}

	result.Groups = map[string]map[string]MetricValue{}
	names := make([]string, 0, len(groups))
	for name := range groups {
		names = append(names, name)
		result.Groups[name] = metricsOf(task, groups[name])
	}
	sort.Strings(names)
	result.Metrics = meanOverGroups(names, result.Groups)
	return result
}

func groupOutcomes(outcomes []itemOutcome) map[string][]itemOutcome {
	groups := map[string][]itemOutcome{}
	for _, outcome := range outcomes {
		groups[outcome.group] = append(groups[outcome.group], outcome)
	}
	return groups
}

// metricsOf returns the metrics of one set of item outcomes.
func metricsOf(task *Task, outcomes []itemOutcome) map[string]MetricValue {
	if task.Kind == GreedyContinuation {
		greedy := column(outcomes, func(o itemOutcome) float64 { return o.greedy })
		logLikelihoods := column(outcomes, func(o itemOutcome) float64 { return o.logLikelihood })
		meanLL, meanLLErr := meanAndStdErr(logLikelihoods)
		perplexity := math.Exp(-meanLL)
		return map[string]MetricValue{
			MetricAccuracy: meanValue(greedy),
			// The delta method: d exp(-m) = exp(-m) dm.
			MetricPerplexity: {Value: perplexity, StdErr: perplexity * meanLLErr},
		}
	}

	metrics := map[string]MetricValue{
		MetricAccuracy: meanValue(column(outcomes, func(o itemOutcome) float64 { return o.correct })),
	}
	if task.ReportNormalized {
		metrics[MetricNormalized] = meanValue(column(outcomes, func(o itemOutcome) float64 { return o.correctNorm }))
	}
	return metrics
}

// meanOverGroups averages each metric over groups. The standard error treats
// groups as independent: sqrt(sum of squared errors) / number of groups.
func meanOverGroups(names []string, groups map[string]map[string]MetricValue) map[string]MetricValue {
	mean := map[string]MetricValue{}
	for metric := range groups[names[0]] {
		var sum, squaredErrors float64
		for _, name := range names {
			sum += groups[name][metric].Value
			squaredErrors += groups[name][metric].StdErr * groups[name][metric].StdErr
		}
		count := float64(len(names))
		mean[metric] = MetricValue{Value: sum / count, StdErr: math.Sqrt(squaredErrors) / count}
	}
	return mean
}

func column(outcomes []itemOutcome, field func(itemOutcome) float64) []float64 {
	values := make([]float64, len(outcomes))
	for i, outcome := range outcomes {
		values[i] = field(outcome)
	}
	return values
}

func meanValue(values []float64) MetricValue {
	mean, stdErr := meanAndStdErr(values)
	return MetricValue{Value: mean, StdErr: stdErr}
}

// meanAndStdErr returns the mean and its standard error, the sample standard
// deviation (n-1 in the denominator) over sqrt(n), as lm-evaluation-harness
// reports for means. One value has a standard error of zero.
func meanAndStdErr(values []float64) (mean, stdErr float64) {
	n := float64(len(values))
	for _, v := range values {
		mean += v
	}
	mean /= n
	if len(values) < 2 {
		return mean, 0
	}
	var squares float64
	for _, v := range values {
		squares += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(squares/(n-1)) / math.Sqrt(n)
}
