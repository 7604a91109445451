package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/routers"
	"github.com/gomor/gomor/training"
)

// Keys of Run.Eval, the flattened evaluation results of a run. Keep every
// name here, so that a change of the evaluation format is one edit.
const (
	// EvalNLL is the validation NLL with sequence-level top-k routing, the mode of PaperRows.
	EvalNLL = "top-k/nll"
	// EvalCausalNLL is the validation NLL with causal routing (routed models only).
	EvalCausalNLL = "causal/nll"
	// EvalDeadTokenRatio is the top-k dead-token ratio over the validation rows.
	EvalDeadTokenRatio = "top-k/dead_token_ratio"
	// EvalSamplingAccuracy, EvalMaxVio and EvalEntropy come from the last
	// record of metrics.jsonl, so they are measured on a training batch.
	EvalSamplingAccuracy = "train/sampling_accuracy"
	EvalMaxVio           = "train/max_vio"
	EvalEntropy          = "train/entropy"
)

// EvalDepthNLL returns the Run.Eval key of the top-k NLL with the recursion capped at maxDepth steps.
func EvalDepthNLL(maxDepth int) string { return fmt.Sprintf("top-k/depth-%d/nll", maxDepth) }

// Run is a training run read from its directory.
type Run struct {
	Name   string             `json:"name"` // the directory's base name
	Dir    string             `json:"dir"`
	Config mor.Config         `json:"config"`
	Setup  Setup              `json:"setup"`
	Eval   map[string]float64 `json:"eval"` // see the Eval* keys; empty when the run was not evaluated
}

// Metric returns an evaluation value and whether the run has it.
func (r Run) Metric(key string) (float64, bool) {
	value, ok := r.Eval[key]
	return value, ok
}

// NLL returns the run's validation NLL with top-k routing, as in PaperRows,
// or NaN when the run was not evaluated.
func (r Run) NLL() float64 {
	if value, ok := r.Eval[EvalNLL]; ok {
		return value
	}
	return math.NaN()
}

// DepthNLL returns the top-k NLL with the recursion capped at 1..N_r steps
// (index d−1; N_r is the uncapped NLL), NaN where the run has no such result.
func (r Run) DepthNLL() []float64 {
	numRecursions := max(r.Config.NumRecursions, 1)
	values := make([]float64, numRecursions)
	for d := 1; d <= numRecursions; d++ {
		values[d-1] = metricOrNaN(r, EvalDepthNLL(d))
	}
	if math.IsNaN(values[numRecursions-1]) {
		values[numRecursions-1] = r.NLL()
	}
	return values
}

// ReadRun reads a run directory written by `mor train`: the model
// configuration from run.json, the validation results from the eval.json of
// the newest evaluated checkpoint, and the router metrics of the last record
// of metrics.jsonl. A run without eval.json or metrics.jsonl has fewer Eval entries.
func ReadRun(dir string) (Run, error) {
	info, err := training.ReadRunInfo(dir)
	if err != nil {
		return Run{}, err
	}
	run := Run{Name: filepath.Base(filepath.Clean(dir)), Dir: dir, Config: info.Config, Setup: SetupFromConfig(info.Config),
		Eval: map[string]float64{}}

	if path, found := newestEvalFile(dir); found {
		if err := addEvalReport(path, run.Eval); err != nil {
			return Run{}, err
		}
	}
	records, err := ReadMetricsLog(filepath.Join(dir, RunMetricsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Run{}, err
	}
	if len(records) > 0 {
		addTrainingMetrics(records[len(records)-1], info.Config, run.Eval)
	}
	return run, nil
}

// RunMetricsFile is the training log inside a run directory.
const RunMetricsFile = "metrics.jsonl"

// newestEvalFile returns the eval.json of the checkpoint named by
// checkpoints/latest, or else of the newest checkpoint that has one.
func newestEvalFile(dir string) (string, bool) {
	root := filepath.Join(dir, "checkpoints")
	var candidates []string
	if latest, err := os.ReadFile(filepath.Join(root, "latest")); err == nil {
		candidates = append(candidates, filepath.Join(root, strings.TrimSpace(string(latest)), training.EvalFile))
	}
	matches, _ := filepath.Glob(filepath.Join(root, "step-*", training.EvalFile))
	sort.Sort(sort.Reverse(sort.StringSlice(matches))) // zero-padded step numbers sort by name
	candidates = append(candidates, matches...)
	for _, path := range candidates {
		if _, err := os.Stat(path); err == nil {
			return path, true
		}
	}
	return "", false
}

// addEvalReport stores each NLL result of an eval.json under "<routing>/nll",
// or "<routing>/depth-<d>/nll" for a depth cap d, with its dead-token ratio.
func addEvalReport(path string, eval map[string]float64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading evaluation: %w", err)
	}
	var report training.EvalReport
	if err := json.Unmarshal(data, &report); err != nil {
		return fmt.Errorf("%s is not a valid evaluation report: %w", path, err)
	}
	for _, result := range report.NLL {
		if result.Error != "" {
			continue
		}
		prefix := string(result.Routing)
		if result.MaxDepth > 0 {
			prefix = fmt.Sprintf("%s/depth-%d", result.Routing, result.MaxDepth)
		}
		eval[prefix+"/nll"] = result.NLL
		if result.DeadTokenRatio != nil {
			eval[prefix+"/dead_token_ratio"] = *result.DeadTokenRatio
		}
	}
	return nil
}

// addTrainingMetrics stores the router metrics of one training-log record.
// The sampling accuracy is the mean over steps weighted by each step's
// number of candidates, which is β_{r−1}·L for top-k routing (β_0 = 1), so it
// counts every candidate once like the per-step definition.
func addTrainingMetrics(record MetricsRecord, config mor.Config, eval map[string]float64) {
	if accuracies, ok := record.Vector(MetricSamplingAccuracy); ok && config.Router != nil {
		capacities := config.Router.EffectiveCapacities(config.NumRecursions)
		weighted, total := 0.0, 0.0
		for step, accuracy := range accuracies {
			weight := 1.0
			if step > 0 && step-1 < len(capacities) {
				weight = capacities[step-1]
			}
			weighted += weight * accuracy
			total += weight
		}
		if total > 0 {
			eval[EvalSamplingAccuracy] = weighted / total
		}
	}
	if maxVio, ok := record.Scalar(MetricMaxVio); ok {
		eval[EvalMaxVio] = maxVio
	}
	if entropy, ok := record.Scalar(MetricEntropy); ok {
		eval[EvalEntropy] = entropy
	}
}

// SetupFromConfig returns the paper-matching setup of a model configuration.
func SetupFromConfig(c mor.Config) Setup {
	if c.Sharing == mor.NoSharing || c.NumRecursions <= 1 {
		return Setup{Model: ModelVanilla}
	}
	if c.Router == nil {
		return Setup{Model: ModelRecursive, Sharing: string(c.Sharing), NumRecursions: c.NumRecursions}
	}

	r := *c.Router
	setup := Setup{Model: ModelMoR, Sharing: string(c.Sharing), NumRecursions: c.NumRecursions, KV: string(c.KV), Router: string(r.Kind)}
	if r.RandomRouter {
		setup.Sampling = SamplingRandom
		return setup
	}
	setup.ScoreFunc, setup.Alpha, setup.Architecture = r.ScoreFunc, r.Alpha, r.Architecture
	if r.ScoreFunc == "none" {
		setup.Alpha = 0
	}
	setup.ZLoss = r.ZLossCoeff > 0

	switch {
	case r.Kind == routers.ExpertChoice && r.AuxRouter:
		setup.Sampling = SamplingAuxRouter
		setup.Warmup = r.CapacityWarmupSteps > 0
	case r.Kind == routers.ExpertChoice:
		setup.Sampling, setup.Coeff = SamplingAuxLoss, r.BCECoeff
		setup.Warmup = r.CapacityWarmupSteps > 0
	case r.LossFreeBiasRate > 0:
		setup.Sampling, setup.Coeff = SamplingLossFree, r.LossFreeBiasRate
		setup.Warmup = r.BalanceWarmupSteps > 0
	default:
		setup.Sampling, setup.Coeff = SamplingBalanceLoss, r.BalanceCoeff
		setup.Warmup = r.BalanceWarmupSteps > 0
	}
	return setup
}

// ReadRuns reads every run directory directly under root (a directory with
// run.json), sorted by name. Subdirectories that are not runs are skipped,
// and a run that fails to read is an error.
func ReadRuns(root string) ([]Run, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("reading runs: %w", err)
	}
	var runs []Run
	for _, entry := range entries {
		dir := filepath.Join(root, entry.Name())
		if !entry.IsDir() || !isRunDir(dir) {
			continue
		}
		run, err := ReadRun(dir)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	sort.Slice(runs, func(a, b int) bool { return runs[a].Name < runs[b].Name })
	return runs, nil
}

func isRunDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, training.RunInfoFile))
	return err == nil
}

// AblationRow is one run of an ablation table with the PaperRows it mirrors.
type AblationRow struct {
	Run              string     `json:"run"`
	Setup            Setup      `json:"setup"`
	NLL              float64    `json:"nll"`
	CausalNLL        float64    `json:"causal_nll"`
	DeadTokenRatio   float64    `json:"dead_token_ratio"`
	SamplingAccuracy float64    `json:"sampling_accuracy"`
	MaxVio           float64    `json:"max_vio"`
	Entropy          float64    `json:"entropy"`
	Paper            []PaperRow `json:"paper"`
}

// AblationTable builds one row per run, with every metric the run was
// evaluated on (NaN otherwise) and the PaperRows whose setup it matches.
func AblationTable(runs []Run) []AblationRow {
	rows := make([]AblationRow, len(runs))
	for i, run := range runs {
		rows[i] = AblationRow{
			Run: run.Name, Setup: run.Setup, NLL: run.NLL(),
			CausalNLL:        metricOrNaN(run, EvalCausalNLL),
			DeadTokenRatio:   metricOrNaN(run, EvalDeadTokenRatio),
			SamplingAccuracy: metricOrNaN(run, EvalSamplingAccuracy),
			MaxVio:           metricOrNaN(run, EvalMaxVio),
			Entropy:          metricOrNaN(run, EvalEntropy),
			Paper:            MatchPaperRows(run.Setup),
		}
	}
	return rows
}

func metricOrNaN(run Run, key string) float64 {
	if value, ok := run.Metric(key); ok {
		return value
	}
	return math.NaN()
}

// OrderAgreement compares the NLL ordering of our runs with that of PaperRows: for
// each table, the Spearman correlation between the NLLs of the runs that
// mirror a row of it and the NLLs of those rows. It needs at least three
// matched runs per table; tables with fewer are left out. The scale differs
// by orders of magnitude, so the ordering, not the values, is what can
// reproduce.
func OrderAgreement(rows []AblationRow) map[string]float64 {
	ours := map[string][]float64{}
	paper := map[string][]float64{}
	for _, row := range rows {
		seen := map[string]bool{}
		for _, match := range row.Paper {
			if seen[match.Table] || math.IsNaN(row.NLL) || math.IsNaN(match.NLL) {
				continue
			}
			seen[match.Table] = true
			ours[match.Table] = append(ours[match.Table], row.NLL)
			paper[match.Table] = append(paper[match.Table], match.NLL)
		}
	}
	agreement := map[string]float64{}
	for table := range ours {
		if len(ours[table]) >= 3 {
			agreement[table] = Pearson(ranks(ours[table]), ranks(paper[table]))
		}
	}
	return agreement
}
