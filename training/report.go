package training

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/mor"
)

// Provenance is recorded in every results file.
type Provenance struct {
	Command     []string  `json:"command"`
	GitCommit   string    `json:"git_commit"`
	Backend     string    `json:"backend"`
	WallSeconds float64   `json:"wall_seconds"`
	Finished    time.Time `json:"finished"`
}

// NewProvenance fills the command line, the gomor commit ("+dirty" when tracked files differed
// from it, "unknown" when neither the binary nor the working directory names one) and the backend.
func NewProvenance(backendName string, wall time.Duration) Provenance {
	return Provenance{
		Command:     os.Args,
		GitCommit:   gitCommit(),
		Backend:     backendName,
		WallSeconds: wall.Seconds(),
		Finished:    time.Now().UTC(),
	}
}

// gitCommit returns the commit the binary was built from (Go stamps it for builds inside the
// checkout), or else the commit of the checkout that holds the working directory.
func gitCommit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		revision, modified := "", false
		for _, setting := range info.Settings {
			switch setting.Key {
			case "vcs.revision":
				revision = setting.Value
			case "vcs.modified":
				modified = setting.Value == "true"
			}
		}
		if revision != "" && modified {
			return revision + "+dirty"
		}
		if revision != "" {
			return revision
		}
	}
	return checkoutCommit()
}

func checkoutCommit() string {
	root, err := repositoryRoot()
	if err != nil {
		return "unknown"
	}
	revParse := exec.Command("git", "rev-parse", "HEAD")
	revParse.Dir = root
	out, err := revParse.Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	status := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	status.Dir = root
	if changes, err := status.Output(); err == nil && len(changes) > 0 {
		commit += "+dirty"
	}
	return commit
}

// RunInfo is run.json: how a run directory was made, so eval finds its data and tokenizer.
type RunInfo struct {
	Preset         string            `json:"preset,omitempty"`
	Config         mor.Config        `json:"config"`
	Data           string            `json:"data"`
	PackDir        string            `json:"pack_dir"`
	TokenizerPath  string            `json:"tokenizer_path"`
	Tokenizer      TokenizerIdentity `json:"tokenizer"`
	SeqLen         int               `json:"seq_len"`
	BatchSize      int               `json:"batch_size"`
	Accumulation   int               `json:"accumulation"`
	Budget         string            `json:"budget"`
	TotalSteps     int               `json:"total_steps"`
	FLOPsPerToken  float64           `json:"forward_flops_per_token"`
	NonEmbedParams int64             `json:"non_embedding_params"`
	Provenance     Provenance        `json:"provenance"`
}

// RunInfoFile is the name of RunInfo inside a run directory.
const RunInfoFile = "run.json"

// WriteJSON writes value as indented JSON to path atomically.
func WriteJSON(path string, value any) error {
	data, err := json.MarshalIndent(value, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// ReadRunInfo reads run.json from a run directory.
func ReadRunInfo(runDir string) (RunInfo, error) {
	var info RunInfo
	data, err := os.ReadFile(filepath.Join(runDir, RunInfoFile))
	if err != nil {
		return info, fmt.Errorf("%s is not a training run directory (%w): pass the --run-dir of `mor train`", runDir, err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("invalid %s: %w", filepath.Join(runDir, RunInfoFile), err)
	}
	return info, nil
}

// LoadedRun is a trained model ready for evaluation.
type LoadedRun struct {
	Info       RunInfo
	Model      MoRModel
	Store      *model.Store
	Checkpoint *Checkpoint
}

// LoadRun loads run.json and the newest complete checkpoint of runDir, or the checkpoint
// directory given instead (then its run directory is two levels up).
func LoadRun(path string) (*LoadedRun, error) {
	runDir := path
	var checkpoint *Checkpoint
	var err error
	if _, statErr := os.Stat(filepath.Join(path, manifestFile)); statErr == nil {
		runDir = filepath.Dir(filepath.Dir(path))
		checkpoint, err = LoadCheckpoint(path)
	} else {
		checkpoint, err = LoadLatestCheckpoint(path)
	}
	if err != nil {
		return nil, err
	}
	info, err := ReadRunInfo(runDir)
	if err != nil {
		return nil, err
	}
	var cfg mor.Config
	if err := json.Unmarshal(checkpoint.State.Model, &cfg); err != nil {
		return nil, fmt.Errorf("checkpoint %s: invalid model config: %w", checkpoint.Dir, err)
	}
	store := model.NewStore()
	if err := checkpoint.Restore(store); err != nil {
		return nil, err
	}
	return &LoadedRun{Info: info, Model: MoRModel{Config: cfg}, Store: store, Checkpoint: checkpoint}, nil
}

// EvalRequest configures EvaluateRun.
type EvalRequest struct {
	Backend     compute.Backend
	BackendName string
	Rows        int // validation rows; 0 means all
	BatchSize   int
	Plan        *EvalPlan // nil means DefaultEvalPlan
	Tasks       []string
	TaskLimit   int
	EvalDir     string // folder of the task files (GOMOR_DATA/eval)
	TaskRouting RoutingMode

	// Output is the file the report is written to; "" means eval.json beside the checkpoint,
	// replacing the one there.
	Output string
}

// EvalReport is eval.json.
type EvalReport struct {
	Checkpoint     string                `json:"checkpoint"`
	Step           int                   `json:"step"`
	TokensSeen     int64                 `json:"tokens_seen"`
	Model          mor.Config            `json:"model"`
	Tokenizer      TokenizerIdentity     `json:"tokenizer"`
	SeqLen         int                   `json:"seq_len"`
	ValidationRows int                   `json:"validation_rows"`
	NLL            []NLLResult           `json:"nll"`
	Tasks          []datasets.TaskResult `json:"tasks,omitempty"`
	TaskErrors     map[string]string     `json:"task_errors,omitempty"`
	Provenance     Provenance            `json:"provenance"`
}

// EvalFile is the name of EvalReport inside a checkpoint directory.
const EvalFile = "eval.json"

// EvaluateRun evaluates a loaded run on its validation split and the requested tasks and writes
// eval.json beside the checkpoint. It returns the report and the path written.
func EvaluateRun(run *LoadedRun, request EvalRequest) (*EvalReport, string, error) {
	start := time.Now()
	val, err := openValidation(run.Info)
	if err != nil {
		return nil, "", err
	}
	defer val.Close()
	rows, err := ReadRows(val, request.Rows)
	if err != nil {
		return nil, "", err
	}

	plan := DefaultEvalPlan(run.Model, run.Model.HasRecursionBlock())
	if request.Plan != nil {
		plan = *request.Plan
	}
	batch := max(request.BatchSize, 1)
	report := &EvalReport{
		Checkpoint: run.Checkpoint.Dir, Step: run.Checkpoint.State.Step, TokensSeen: run.Checkpoint.State.TokensSeen,
		Model: run.Model.Config, Tokenizer: run.Info.Tokenizer, SeqLen: run.Info.SeqLen, ValidationRows: len(rows),
	}
	report.NLL, _ = RunEvalPlan(request.Backend, run.Store, run.Model, rows, batch, plan)
	if err := run.checkAllVariablesLoaded(); err != nil {
		return nil, "", err
	}

	if len(request.Tasks) > 0 {
		report.Tasks, report.TaskErrors = runTasks(run, request)
	}
	report.Provenance = NewProvenance(request.BackendName, time.Since(start))
	path := request.Output
	if path == "" {
		path = filepath.Join(run.Checkpoint.Dir, EvalFile)
	}
	if err := WriteJSON(path, report); err != nil {
		return nil, "", err
	}
	return report, path, nil
}

// checkAllVariablesLoaded returns an error when the forward pass created a trainable variable
// that the checkpoint lacks: the evaluation would then have used freshly initialised weights.
func (r *LoadedRun) checkAllVariablesLoaded() error {
	saved := make(map[string]bool, len(r.Checkpoint.Variables))
	for _, v := range r.Checkpoint.Variables {
		saved[v.Path] = true
	}
	var missing []string
	for v := range r.Store.IterVariables() {
		if v.Trainable && !saved[v.Path()] {
			missing = append(missing, v.Path())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("checkpoint %s lacks %d model variables, e.g. %s: the model code changed since training; evaluate with the gomor commit that trained it (%s) or train again",
			r.Checkpoint.Dir, len(missing), missing[0], r.Info.Provenance.GitCommit)
	}
	return nil
}

func openValidation(info RunInfo) (*datasets.ShardSet, error) {
	_, val, err := openSplits(info.PackDir)
	if err != nil {
		return nil, fmt.Errorf("opening the validation split of %s: %w", info.PackDir, err)
	}
	return val, nil
}

// runTasks scores each task with the model; a task that fails is reported by name and the others still run.
func runTasks(run *LoadedRun, request EvalRequest) ([]datasets.TaskResult, map[string]string) {
	tokenizer, _, err := LoadTokenizer(run.Info.TokenizerPath)
	failures := map[string]string{}
	if err != nil {
		for _, name := range request.Tasks {
			failures[name] = err.Error()
		}
		return nil, failures
	}
	scorer := &ModelScorer{
		Backend: request.Backend, Store: run.Store, Model: run.Model, SeqLen: run.Info.SeqLen,
		BatchSize: max(request.BatchSize, 1), Routing: request.TaskRouting, PadID: tokenizer.EOS(),
	}
	var results []datasets.TaskResult
	for _, name := range request.Tasks {
		task, err := datasets.LoadTask(name, request.EvalDir)
		if err != nil {
			failures[name] = err.Error()
			continue
		}
		result, err := datasets.EvaluateTask(task, scorer, tokenizer, datasets.EvalOptions{Limit: request.TaskLimit, MaxLength: scorer.MaxLength()})
		if err != nil {
			failures[name] = err.Error()
			continue
		}
		results = append(results, result)
	}
	if len(failures) == 0 {
		failures = nil
	}
	return results, failures
}

// WriteText writes text to path atomically.
func WriteText(path, text string) error {
	return writeFileAtomic(path, []byte(text))
}

// ReadJSON decodes the JSON file at path into value.
func ReadJSON(path string, value any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, value)
}
