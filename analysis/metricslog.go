package analysis

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
)

// Fields of a training run's metrics.jsonl that this package reads. Each line
// of the log is one JSON object (training.StepRecord). Keep every field name
// here, so that a change on the training side is one edit.
const (
	// MetricStep is the optimiser step of a record, top level.
	MetricStep = "step"
	// MetricLoss is the language-model loss in nats, top level.
	MetricLoss = "lm_loss"
	// MetricsGroup is the top-level object of the model's diagnostics, each an
	// array (scalars are arrays of one number). The names below live in it.
	MetricsGroup = "metrics"
	// MetricRouterLoad is the token-choice load, the fraction of tokens routed
	// to each depth, a [N_r] array (mor.MetricTokenLoads).
	MetricRouterLoad = "token_loads"
	// MetricMaxVio is the token-choice maximal load violation (mor.MetricMaxVio).
	MetricMaxVio = "max_vio"
	// MetricEntropy is the entropy in nats of the token-choice loads (mor.MetricEntropy).
	MetricEntropy = "entropy"
	// MetricSamplingAccuracy is the expert-choice sampling accuracy per step,
	// a [N_r] array (mor.MetricSamplingAccuracy).
	MetricSamplingAccuracy = "sampling_accuracy"
)

// MetricsRecord is one line of a metrics log, decoded generically.
type MetricsRecord map[string]any

// ReadMetricsLog reads a JSON-lines metrics log. Blank lines are skipped; a
// line that is not a JSON object is an error naming its line number.
func ReadMetricsLog(path string) ([]MetricsRecord, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading metrics log: %w", err)
	}
	defer file.Close()

	var records []MetricsRecord
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; scanner.Scan(); line++ {
		if len(scanner.Bytes()) == 0 {
			continue
		}
		var record MetricsRecord
		if err := json.Unmarshal(scanner.Bytes(), &record); err != nil {
			return nil, fmt.Errorf("metrics log %s, line %d: invalid JSON object: %w", path, line, err)
		}
		records = append(records, record)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading metrics log %s: %w", path, err)
	}
	return records, nil
}

// lookup returns a top-level field, or else the entry of that name in MetricsGroup.
func (r MetricsRecord) lookup(field string) any {
	if value, found := r[field]; found {
		return value
	}
	group, _ := r[MetricsGroup].(map[string]any)
	return group[field]
}

// Scalar returns a record's numeric field, top level or in MetricsGroup, and
// whether it is present. An array of one number counts as that number.
func (r MetricsRecord) Scalar(field string) (float64, bool) {
	switch value := r.lookup(field).(type) {
	case float64:
		return value, true
	case []any:
		if len(value) == 1 {
			number, ok := value[0].(float64)
			return number, ok
		}
	}
	return 0, false
}

// Vector returns a record's numeric array field, top level or in
// MetricsGroup, and whether it is present and an array of numbers (JSON null
// entries become NaN).
func (r MetricsRecord) Vector(field string) ([]float64, bool) {
	items, ok := r.lookup(field).([]any)
	if !ok {
		return nil, false
	}
	values := make([]float64, len(items))
	for i, item := range items {
		switch v := item.(type) {
		case float64:
			values[i] = v
		case nil:
			values[i] = math.NaN()
		default:
			return nil, false
		}
	}
	return values, true
}

// Series is a metric over training steps, sorted by step.
type Series struct {
	Name   string    `json:"name"`
	Steps  []float64 `json:"steps"`
	Values []float64 `json:"values"`
}

// ScalarSeries collects a scalar field over the records that have both it and a step.
func ScalarSeries(records []MetricsRecord, field string) Series {
	series := Series{Name: field}
	for _, record := range records {
		step, hasStep := record.Scalar(MetricStep)
		value, hasValue := record.Scalar(field)
		if hasStep && hasValue {
			series.Steps = append(series.Steps, step)
			series.Values = append(series.Values, value)
		}
	}
	series.sortByStep()
	return series
}

func (s *Series) sortByStep() {
	order := make([]int, len(s.Steps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return s.Steps[order[a]] < s.Steps[order[b]] })
	steps, values := make([]float64, len(order)), make([]float64, len(order))
	for i, index := range order {
		steps[i], values[i] = s.Steps[index], s.Values[index]
	}
	s.Steps, s.Values = steps, values
}

// LoadBalance is the token-choice balance of one logged training step.
type LoadBalance struct {
	Step    float64   `json:"step"`
	Load    []float64 `json:"load,omitempty"` // fraction of tokens per depth; empty when not logged
	MaxVio  float64   `json:"max_vio"`
	Entropy float64   `json:"entropy"`
}

// LoadBalanceOverTraining returns, for each record with a step and a load or
// balance metric, the load, MaxVio and entropy. When the load vector is
// logged, MaxVio and entropy are recomputed from it, so every run is measured
// by the same definition. Otherwise the logged scalars are used.
// Records without any of these fields (expert-choice runs) are skipped.
func LoadBalanceOverTraining(records []MetricsRecord) []LoadBalance {
	var points []LoadBalance
	for _, record := range records {
		step, hasStep := record.Scalar(MetricStep)
		if !hasStep {
			continue
		}
		if load, ok := record.Vector(MetricRouterLoad); ok {
			points = append(points, LoadBalance{Step: step, Load: load, MaxVio: MaxVio(load), Entropy: RoutingEntropy(load)})
			continue
		}
		maxVio, hasMaxVio := record.Scalar(MetricMaxVio)
		entropy, hasEntropy := record.Scalar(MetricEntropy)
		if !hasMaxVio && !hasEntropy {
			continue
		}
		point := LoadBalance{Step: step, MaxVio: math.NaN(), Entropy: math.NaN()}
		if hasMaxVio {
			point.MaxVio = maxVio
		}
		if hasEntropy {
			point.Entropy = entropy
		}
		points = append(points, point)
	}
	sort.SliceStable(points, func(a, b int) bool { return points[a].Step < points[b].Step })
	return points
}

// VectorSeries collects an array field over the records that have both it and
// a step: one Series per array index, named "field[i]" with i 1-based (the
// recursion step for per-step metrics).
func VectorSeries(records []MetricsRecord, field string) []Series {
	var series []Series
	for _, record := range records {
		step, hasStep := record.Scalar(MetricStep)
		values, hasValues := record.Vector(field)
		if !hasStep || !hasValues {
			continue
		}
		for len(series) < len(values) {
			series = append(series, Series{Name: fmt.Sprintf("%s[%d]", field, len(series)+1)})
		}
		for i, value := range values {
			series[i].Steps = append(series[i].Steps, step)
			series[i].Values = append(series[i].Values, value)
		}
	}
	for i := range series {
		series[i].sortByStep()
	}
	return series
}
