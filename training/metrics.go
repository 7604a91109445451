package training

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// StepRecord is one line of metrics.jsonl.
type StepRecord struct {
	Step              int                  `json:"step"` // 1-based: the number of updates done
	Tokens            int64                `json:"tokens"`
	LR                float64              `json:"lr"`
	LMLoss            float64              `json:"lm_loss"`
	Loss              float64              `json:"loss"` // LM loss plus weighted auxiliary losses
	AuxLosses         map[string]float64   `json:"aux_losses,omitempty"`
	Metrics           map[string][]float64 `json:"metrics,omitempty"`
	GradNorm          float64              `json:"grad_norm"`
	AuxRouterGradNorm float64              `json:"aux_router_grad_norm,omitempty"`
	TokensPerSecond   float64              `json:"tokens_per_second"`
	StepSeconds       float64              `json:"step_seconds"`
}

// diagnosticsLayout records where each named value sits in the packed diagnostics vector.
type diagnosticsLayout struct {
	names   []string
	offsets []int
	sizes   []int
}

// Names of the packed entries that are not auxiliary losses or model metrics.
const (
	lmLossEntry    = "lm_loss"
	totalLossEntry = "loss"
	auxLossPrefix  = "aux/"
	metricPrefix   = "metric/"
)

// packDiagnostics flattens named scalars and vectors into one float32 vector, in name order,
// and returns the layout to unpack it.
func packDiagnostics(values map[string]*graph.Node) (*graph.Node, diagnosticsLayout) {
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	var layout diagnosticsLayout
	parts := make([]*graph.Node, 0, len(names))
	offset := 0
	for _, name := range names {
		flat := graph.Reshape(graph.ConvertDType(values[name], dtypes.Float32), -1) // [size]
		size := flat.Shape().Dim(0)
		layout.names = append(layout.names, name)
		layout.offsets = append(layout.offsets, offset)
		layout.sizes = append(layout.sizes, size)
		parts = append(parts, flat)
		offset += size
	}
	return graph.Concatenate(parts, 0), layout
}

// unpack splits a packed vector back into named values.
func (l diagnosticsLayout) unpack(packed []float32) map[string][]float64 {
	values := make(map[string][]float64, len(l.names))
	for i, name := range l.names {
		slice := make([]float64, l.sizes[i])
		for j := range slice {
			slice[j] = float64(packed[l.offsets[i]+j])
		}
		values[name] = slice
	}
	return values
}

// diagnosticsMetric hands the packed diagnostics vector to GoMLX's Trainer as a metric, so every
// TrainStep returns it.
type diagnosticsMetric struct{}

func (diagnosticsMetric) Name() string       { return "Diagnostics" }
func (diagnosticsMetric) ShortName() string  { return "diag" }
func (diagnosticsMetric) ScopeName() string  { return "diagnostics" }
func (diagnosticsMetric) MetricType() string { return "diagnostics" }
func (diagnosticsMetric) Reset(*model.Scope) {}
func (diagnosticsMetric) PrettyPrint(value *tensors.Tensor) string {
	return fmt.Sprint(value.Value())
}
func (diagnosticsMetric) UpdateGraph(_ *model.Scope, _, predictions []*graph.Node) *graph.Node {
	return predictions[0]
}

// metricsLog appends StepRecords to metrics.jsonl.
type metricsLog struct {
	file   *os.File
	writer *bufio.Writer
}

// openMetricsLog opens path for appending after dropping every record with a step above
// keepThrough, so a resumed run continues the curve from its checkpoint without duplicates.
func openMetricsLog(path string, keepThrough int) (*metricsLog, error) {
	if err := truncateMetrics(path, keepThrough); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening metrics log: %w", err)
	}
	return &metricsLog{file: file, writer: bufio.NewWriter(file)}, nil
}

func truncateMetrics(path string, keepThrough int) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading metrics log: %w", err)
	}
	var kept []byte
	for _, line := range splitLines(data) {
		var record struct {
			Step int `json:"step"`
		}
		if json.Unmarshal(line, &record) == nil && record.Step <= keepThrough {
			kept = append(append(kept, line...), '\n')
		}
	}
	return writeFileAtomic(path, kept)
}

func splitLines(data []byte) [][]byte {
	var lines [][]byte
	start := 0
	for i, b := range data {
		if b == '\n' {
			if i > start {
				lines = append(lines, data[start:i])
			}
			start = i + 1
		}
	}
	if start < len(data) {
		lines = append(lines, data[start:])
	}
	return lines
}

func (l *metricsLog) write(record StepRecord) error {
	line, err := json.Marshal(record)
	if err != nil {
		return fmt.Errorf("encoding metrics of step %d: %w", record.Step, err)
	}
	if _, err := l.writer.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing metrics log: %w", err)
	}

	// Hand each record to the operating system at once, so the log can be followed during the
	// run. flush, called before each checkpoint, also syncs it to disk.
	if err := l.writer.Flush(); err != nil {
		return fmt.Errorf("writing metrics log: %w", err)
	}
	return nil
}

// flush writes buffered records through to the file; it runs before every checkpoint.
func (l *metricsLog) flush() error {
	if err := l.writer.Flush(); err != nil {
		return fmt.Errorf("writing metrics log: %w", err)
	}
	return l.file.Sync()
}

func (l *metricsLog) close() error {
	err := l.flush()
	if closeErr := l.file.Close(); err == nil {
		err = closeErr
	}
	return err
}

// ReadMetrics reads every record of a metrics.jsonl file. A last line without its newline that
// does not parse is skipped: it is a record a killed run was still writing.
func ReadMetrics(path string) ([]StepRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading metrics log: %w", err)
	}
	lines := splitLines(data)
	partialLast := len(data) > 0 && data[len(data)-1] != '\n'
	var records []StepRecord
	for i, line := range lines {
		var record StepRecord
		if err := json.Unmarshal(line, &record); err != nil {
			if partialLast && i == len(lines)-1 {
				break
			}
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		records = append(records, record)
	}
	return records, nil
}
