package analysis

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/training"
)

// TrainedRun is a trained model opened for routing analysis: its checkpoint,
// tokenizer and packed data, as `mor train` left them in the run directory.
type TrainedRun struct {
	*training.LoadedRun
	Tokenizer *datasets.BPE
}

// OpenRun loads the newest complete checkpoint of a run directory (or the
// checkpoint directory given) and the tokenizer recorded in its run.json (an
// empty path there means the tokenizer shipped with the tinytext corpus). It
// fails when that tokenizer's files changed since training.
func OpenRun(path string) (*TrainedRun, error) {
	loaded, err := training.LoadRun(path)
	if err != nil {
		return nil, err
	}
	if loaded.Model.Config.Router == nil {
		return nil, fmt.Errorf("run %s trained model %q, which has no router: routing analysis needs a MoR run", path, loaded.Model.Config.Name)
	}
	tokenizer, identity, err := training.LoadTokenizer(loaded.Info.TokenizerPath)
	if err != nil {
		return nil, fmt.Errorf("loading the run's tokenizer %q: %w", loaded.Info.TokenizerPath, err)
	}
	if identity.SHA256 != loaded.Info.Tokenizer.SHA256 {
		return nil, fmt.Errorf("tokenizer %q has sha256 %s but run %s was trained with %s: restore the tokenizer files the run used",
			loaded.Info.TokenizerPath, identity.SHA256, path, loaded.Info.Tokenizer.SHA256)
	}
	return &TrainedRun{LoadedRun: loaded, Tokenizer: tokenizer}, nil
}

// TextTraces traces texts through the run's model; rows default to the run's sequence length.
func (r *TrainedRun) TextTraces(backend compute.Backend, texts []string, options ExtractOptions) ([]Trace, error) {
	if options.SeqLen == 0 {
		options.SeqLen = r.Info.SeqLen
	}
	return ExtractTraces(backend, r.Store, r.Model.Config, r.Tokenizer, texts, options)
}

// ValidationRows reads up to n rows of the run's packed validation split (n ≤ 0 reads all).
func (r *TrainedRun) ValidationRows(n int) ([][]int32, error) {
	return r.readSplit(datasets.SplitValidation, n)
}

// ValidationTraces traces up to n validation rows, named "val row i".
func (r *TrainedRun) ValidationTraces(backend compute.Backend, n int, options ExtractOptions) ([]Trace, error) {
	rows, err := r.ValidationRows(n)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(rows))
	for i := range names {
		names[i] = fmt.Sprintf("val row %d", i)
	}
	return ExtractRowTraces(backend, r.Store, r.Model.Config, rows, names, r.Tokenizer.Decode, options)
}

// TrainingFrequencies counts token ids over up to n rows of the run's packed
// training split and splits them into frequent and rare at DefaultFrequentMass.
func (r *TrainedRun) TrainingFrequencies(n int) (*FrequencyTable, error) {
	rows, err := r.readSplit(datasets.SplitTrain, n)
	if err != nil {
		return nil, err
	}
	counts := make(map[int]int)
	for _, row := range rows {
		for _, id := range row {
			counts[int(id)]++
		}
	}
	return NewFrequencyTableFromCounts(counts, DefaultFrequentMass), nil
}

// MetricsLog reads the run's metrics.jsonl.
func (r *TrainedRun) MetricsLog() ([]MetricsRecord, error) {
	return ReadMetricsLog(filepath.Join(r.RunDir(), RunMetricsFile))
}

// RunDir returns the run directory, the folder two levels above the checkpoint.
func (r *TrainedRun) RunDir() string {
	return filepath.Dir(filepath.Dir(r.Checkpoint.Dir))
}

// readSplit reads rows of one split of the run's packed data, which is either
// both splits in one folder or train/ and val/ subfolders.
func (r *TrainedRun) readSplit(split string, n int) ([][]int32, error) {
	dir := r.Info.PackDir
	if _, err := os.Stat(filepath.Join(dir, split, datasets.PackResultFile)); err == nil {
		dir = filepath.Join(dir, split)
	}
	set, err := datasets.OpenShardSplit(dir, split)
	if err != nil {
		return nil, fmt.Errorf("opening the %s split of the run's packed data %s: %w", split, r.Info.PackDir, err)
	}
	defer set.Close()
	return training.ReadRows(set, n)
}
