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
)

// Files of a run directory that the ablation tables read.
const (
	// RunConfigFile is the model configuration of a run, a mor.Config in JSON.
	RunConfigFile = "config.json"
	// RunEvalFile is the evaluation summary of a run: a JSON object whose numeric
	// leaves are read under the Eval* keys below.
	RunEvalFile = "eval.json"
	// RunMetricsFile is the training log, one JSON object per line.
	RunMetricsFile = "metrics.jsonl"
)

// Keys of the flattened evaluation summary (nested objects joined with "/")
// that the ablation tables show. Keep every name here so that a change of the
// evaluation format is one edit.
const (
	EvalNLL              = "top-k/nll"  // validation NLL with sequence-level top-k routing, the mode of PaperRows
	EvalCausalNLL        = "causal/nll" // validation NLL with causal routing
	EvalDeadTokenRatio   = "top-k/dead_token_ratio"
	EvalSamplingAccuracy = "top-k/sampling_accuracy"
	EvalMaxVio           = "top-k/max_vio"
	EvalEntropy          = "top-k/entropy"
	// EvalPlainNLL is the NLL of a model without routing, which has one mode only.
	EvalPlainNLL = "nll"
)

// Run is a finished training run read from its directory.
type Run struct {
	Name   string             `json:"name"` // the directory's base name
	Dir    string             `json:"dir"`
	Config mor.Config         `json:"config"`
	Setup  Setup              `json:"setup"`
	Eval   map[string]float64 `json:"eval"` // flattened numeric leaves of eval.json; empty when the file is missing
}

// Metric returns a flattened evaluation value and whether the run has it.
func (r Run) Metric(key string) (float64, bool) {
	value, ok := r.Eval[key]
	return value, ok
}

// NLL returns the run's validation NLL with top-k routing, as in PaperRows, or its
// plain NLL when it has no routing; NaN when neither was evaluated.
func (r Run) NLL() float64 {
	if value, ok := r.Eval[EvalNLL]; ok {
		return value
	}
	if value, ok := r.Eval[EvalPlainNLL]; ok {
		return value
	}
	return math.NaN()
}

// ReadRun reads the configuration and evaluation summary of a run directory.
// The configuration comes from config.json, or else from the newest
// checkpoint's state.json ("model" field). A missing eval.json leaves Eval empty.
func ReadRun(dir string) (Run, error) {
	config, err := readRunConfig(dir)
	if err != nil {
		return Run{}, err
	}
	run := Run{Name: filepath.Base(filepath.Clean(dir)), Dir: dir, Config: config, Setup: SetupFromConfig(config), Eval: map[string]float64{}}

	data, err := os.ReadFile(filepath.Join(dir, RunEvalFile))
	if errors.Is(err, os.ErrNotExist) {
		return run, nil
	}
	if err != nil {
		return Run{}, fmt.Errorf("reading run %s: %w", dir, err)
	}
	var summary any
	if err := json.Unmarshal(data, &summary); err != nil {
		return Run{}, fmt.Errorf("run %s: %s is not valid JSON: %w", dir, RunEvalFile, err)
	}
	flattenNumbers("", summary, run.Eval)
	return run, nil
}

func readRunConfig(dir string) (mor.Config, error) {
	path := filepath.Join(dir, RunConfigFile)
	if _, err := os.Stat(path); err == nil {
		return mor.LoadConfig(path)
	}

	statePath, err := latestCheckpointState(dir)
	if err != nil {
		return mor.Config{}, fmt.Errorf("run %s has no %s and no readable checkpoint: %w", dir, RunConfigFile, err)
	}
	data, err := os.ReadFile(statePath)
	if err != nil {
		return mor.Config{}, fmt.Errorf("reading run state: %w", err)
	}
	var state struct {
		Model json.RawMessage `json:"model"`
	}
	if err := json.Unmarshal(data, &state); err != nil || len(state.Model) == 0 {
		return mor.Config{}, fmt.Errorf("run state %s has no \"model\" configuration (JSON error: %v)", statePath, err)
	}
	return mor.ParseConfig(state.Model)
}

// latestCheckpointState returns the state.json of the checkpoint named by
// checkpoints/latest, or else of the last checkpoint directory in name order.
func latestCheckpointState(dir string) (string, error) {
	root := filepath.Join(dir, "checkpoints")
	if latest, err := os.ReadFile(filepath.Join(root, "latest")); err == nil {
		path := filepath.Join(root, strings.TrimSpace(string(latest)), "state.json")
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	matches, err := filepath.Glob(filepath.Join(root, "step-*", "state.json"))
	if err != nil || len(matches) == 0 {
		return "", fmt.Errorf("no checkpoints/step-*/state.json under %s", dir)
	}
	sort.Strings(matches)
	return matches[len(matches)-1], nil
}

// flattenNumbers stores every numeric leaf of a decoded JSON value under its
// path, object keys and array indices joined with "/"; null becomes NaN.
func flattenNumbers(prefix string, value any, out map[string]float64) {
	join := func(key string) string {
		if prefix == "" {
			return key
		}
		return prefix + "/" + key
	}
	switch v := value.(type) {
	case float64:
		out[prefix] = v
	case nil:
		if prefix != "" {
			out[prefix] = math.NaN()
		}
	case map[string]any:
		for key, item := range v {
			flattenNumbers(join(key), item, out)
		}
	case []any:
		for i, item := range v {
			flattenNumbers(join(fmt.Sprint(i)), item, out)
		}
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
// config.json or checkpoints/), sorted by name. Subdirectories that are not
// runs are skipped; a run that fails to read is an error.
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
	for _, name := range []string{RunConfigFile, "checkpoints"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
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
// evaluated on (NaN otherwise) and the paper rows whose setup it matches.
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
