package training

import (
	"bufio"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Checkpoint layout inside a run directory:
//
//	checkpoints/step-00000120/variables.gob   every variable of the store (model, optimiser, RNG)
//	checkpoints/step-00000120/state.json      TrainState: step, data position, config, tokenizer
//	checkpoints/step-00000120/MANIFEST.json   sha256 of the two files above, written last
//	checkpoints/latest                        name of the newest complete checkpoint
//
// A checkpoint is first written to a hidden temporary directory, each file is fsynced, the
// directory is renamed into place, and only then is "latest" replaced (write, fsync, rename).
// A crash at any point leaves the previous checkpoint and its "latest" pointer intact.
const (
	checkpointsDir       = "checkpoints"
	latestFile           = "latest"
	variablesFile        = "variables.gob"
	stateFile            = "state.json"
	manifestFile         = "MANIFEST.json"
	checkpointMagic      = "gomor-checkpoint"
	checkpointVersion    = 1
	checkpointNamePrefix = "step-"
)

// TokenizerIdentity names the tokenizer a model was trained with; sha256 is of its files.
type TokenizerIdentity struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// TrainState is everything besides variables that a resumed run needs.
type TrainState struct {
	Step         int               `json:"step"` // optimiser steps completed
	TokensSeen   int64             `json:"tokens_seen"`
	TotalSteps   int               `json:"total_steps"`
	DataPosition json.RawMessage   `json:"data_position"`
	Model        json.RawMessage   `json:"model"`
	Tokenizer    TokenizerIdentity `json:"tokenizer"`
	Options      json.RawMessage   `json:"options"`
	WallSeconds  float64           `json:"wall_seconds"`
}

type checkpointHeader struct {
	Magic     string
	Version   int
	Variables int
}

type variableRecord struct {
	Path      string
	Trainable bool
}

type manifest struct {
	Files map[string]string `json:"files"` // name → sha256
}

// crashHook lets tests stop a checkpoint write at a named stage ("variables", "manifest",
// "rename") to simulate a killed process. It is nil outside tests.
var crashHook func(stage string) error

// SaveCheckpoint writes the store's variables and state atomically under runDir and keeps the
// newest keep checkpoints (at least 2, so the previous one survives until the next is complete).
func SaveCheckpoint(runDir string, store *model.Store, state TrainState, keep int) (string, error) {
	root := filepath.Join(runDir, checkpointsDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("creating checkpoint directory: %w", err)
	}
	name := fmt.Sprintf("%s%08d", checkpointNamePrefix, state.Step)
	tmpDir, err := os.MkdirTemp(root, ".tmp-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("creating temporary checkpoint directory: %w", err)
	}
	defer os.RemoveAll(tmpDir) // a no-op after the rename succeeded

	if err := writeCheckpointFiles(tmpDir, store, state); err != nil {
		return "", err
	}
	if err := runCrashHook("rename"); err != nil {
		return "", err
	}
	finalDir := filepath.Join(root, name)
	if err := os.RemoveAll(finalDir); err != nil {
		return "", fmt.Errorf("removing stale checkpoint %s: %w", finalDir, err)
	}
	if err := os.Rename(tmpDir, finalDir); err != nil {
		return "", fmt.Errorf("moving checkpoint into place: %w", err)
	}
	if err := syncDir(root); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(root, latestFile), []byte(name+"\n")); err != nil {
		return "", err
	}
	pruneCheckpoints(root, max(keep, 2))
	return finalDir, nil
}

func runCrashHook(stage string) error {
	if crashHook == nil {
		return nil
	}
	return crashHook(stage)
}

func writeCheckpointFiles(dir string, store *model.Store, state TrainState) error {
	variablesSum, err := writeVariables(filepath.Join(dir, variablesFile), store)
	if err != nil {
		return err
	}
	stateJSON, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding training state: %w", err)
	}
	if err := writeFileSynced(filepath.Join(dir, stateFile), stateJSON); err != nil {
		return err
	}
	if err := runCrashHook("manifest"); err != nil {
		return err
	}
	stateSum := sha256.Sum256(stateJSON)
	manifestJSON, _ := json.MarshalIndent(manifest{Files: map[string]string{
		variablesFile: variablesSum,
		stateFile:     hex.EncodeToString(stateSum[:]),
	}}, "", "  ")
	if err := writeFileSynced(filepath.Join(dir, manifestFile), manifestJSON); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeVariables writes every variable with a value, in store order, and returns the file's sha256.
func writeVariables(path string, store *model.Store) (string, error) {
	file, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("creating %s: %w", path, err)
	}
	defer file.Close()
	hash := sha256.New()
	buffered := bufio.NewWriter(io.MultiWriter(file, hash))
	encoder := gob.NewEncoder(buffered)

	var variables []*model.Variable
	for v := range store.IterVariables() {
		if v.HasValue() && !isTransientVariable(v.Path()) {
			variables = append(variables, v)
		}
	}
	if err := encoder.Encode(checkpointHeader{Magic: checkpointMagic, Version: checkpointVersion, Variables: len(variables)}); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	for i, v := range variables {
		if i == len(variables)/2 {
			if err := runCrashHook("variables"); err != nil {
				_ = buffered.Flush()
				return "", err
			}
		}
		if err := encoder.Encode(variableRecord{Path: v.Path(), Trainable: v.Trainable}); err != nil {
			return "", fmt.Errorf("writing variable %s: %w", v.Path(), err)
		}
		value, err := v.Value()
		if err != nil {
			return "", fmt.Errorf("reading variable %s: %w", v.Path(), err)
		}
		if err := value.GobSerialize(encoder); err != nil {
			return "", fmt.Errorf("writing variable %s: %w", v.Path(), err)
		}
	}
	if err := buffered.Flush(); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := file.Sync(); err != nil {
		return "", fmt.Errorf("syncing %s: %w", path, err)
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

// isTransientVariable reports variables that a checkpoint leaves out: GoMLX's training metrics
// live under /metrics with a fresh random name per Trainer, so a resumed run cannot reuse them.
func isTransientVariable(path string) bool {
	return strings.HasPrefix(path, "/metrics/")
}

// Checkpoint is a loaded checkpoint: the directory, its state and its variables in store order.
type Checkpoint struct {
	Dir       string
	State     TrainState
	Variables []LoadedVariable
}

// LoadedVariable is one saved variable.
type LoadedVariable struct {
	Path      string
	Trainable bool
	Value     *tensors.Tensor
}

// ErrNoCheckpoint is returned by LoadLatestCheckpoint when a run directory has no complete checkpoint.
var ErrNoCheckpoint = errors.New("no complete checkpoint found")

// LoadLatestCheckpoint loads the checkpoint named by "latest", or, when that one is missing or
// fails its manifest, the newest checkpoint that passes it.
func LoadLatestCheckpoint(runDir string) (*Checkpoint, error) {
	root := filepath.Join(runDir, checkpointsDir)
	var candidates []string
	if latest, err := os.ReadFile(filepath.Join(root, latestFile)); err == nil {
		candidates = append(candidates, filepath.Join(root, strings.TrimSpace(string(latest))))
	}
	candidates = append(candidates, listCheckpoints(root)...)
	var failures []string
	for _, dir := range candidates {
		checkpoint, err := LoadCheckpoint(dir)
		if err == nil {
			if len(failures) > 0 {
				slog.Warn("skipped damaged checkpoints; using an older one", "using", dir, "skipped", strings.Join(failures, "; "))
			}
			return checkpoint, nil
		}
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 {
		return nil, fmt.Errorf("%w in %s (%s)", ErrNoCheckpoint, root, strings.Join(failures, "; "))
	}
	return nil, fmt.Errorf("%w in %s", ErrNoCheckpoint, root)
}

// listCheckpoints returns the complete-looking checkpoint directories, newest first.
func listCheckpoints(root string) []string {
	entries, _ := os.ReadDir(root)
	type numbered struct {
		step int
		dir  string
	}
	var found []numbered
	for _, entry := range entries {
		stepText, ok := strings.CutPrefix(entry.Name(), checkpointNamePrefix)
		if !ok || !entry.IsDir() {
			continue
		}
		step, err := strconv.Atoi(stepText)
		if err != nil {
			continue
		}
		found = append(found, numbered{step, filepath.Join(root, entry.Name())})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].step > found[j].step })
	dirs := make([]string, len(found))
	for i, f := range found {
		dirs[i] = f.dir
	}
	return dirs
}

// LoadCheckpoint loads one checkpoint directory after checking its manifest.
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	if err := verifyManifest(dir); err != nil {
		return nil, err
	}
	stateJSON, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint state: %w", err)
	}
	checkpoint := &Checkpoint{Dir: dir}
	if err := json.Unmarshal(stateJSON, &checkpoint.State); err != nil {
		return nil, fmt.Errorf("invalid checkpoint state %s: %w", filepath.Join(dir, stateFile), err)
	}
	checkpoint.Variables, err = readVariables(filepath.Join(dir, variablesFile))
	if err != nil {
		return nil, err
	}
	return checkpoint, nil
}

func verifyManifest(dir string) error {
	manifestJSON, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return fmt.Errorf("checkpoint %s is incomplete (no %s): %w", dir, manifestFile, err)
	}
	var m manifest
	if err := json.Unmarshal(manifestJSON, &m); err != nil {
		return fmt.Errorf("checkpoint %s has an invalid %s: %w", dir, manifestFile, err)
	}
	for _, name := range []string{variablesFile, stateFile} {
		sum, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		if sum != m.Files[name] {
			return fmt.Errorf("checkpoint %s: %s has sha256 %s but the manifest lists %s", dir, name, sum, m.Files[name])
		}
	}
	return nil
}

func readVariables(path string) ([]LoadedVariable, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer file.Close()
	decoder := gob.NewDecoder(bufio.NewReader(file))
	var header checkpointHeader
	if err := decoder.Decode(&header); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if header.Magic != checkpointMagic || header.Version != checkpointVersion {
		return nil, fmt.Errorf("%s is not a gomor checkpoint of version %d (magic %q, version %d): train again or load it with the gomor version that wrote it", path, checkpointVersion, header.Magic, header.Version)
	}
	variables := make([]LoadedVariable, header.Variables)
	for i := range variables {
		var record variableRecord
		if err := decoder.Decode(&record); err != nil {
			return nil, fmt.Errorf("reading variable %d of %s: %w", i, path, err)
		}
		value, err := tensors.GobDeserialize(decoder)
		if err != nil {
			return nil, fmt.Errorf("reading variable %s of %s: %w", record.Path, path, err)
		}
		variables[i] = LoadedVariable{Path: record.Path, Trainable: record.Trainable, Value: value}
	}
	return variables, nil
}

// Restore creates or overwrites the checkpoint's variables in store, in their saved order.
func (c *Checkpoint) Restore(store *model.Store) error {
	for _, saved := range c.Variables {
		v := store.GetVariable(saved.Path)
		if v == nil {
			created, err := store.CreateVariable(saved.Path, saved.Value)
			if err != nil {
				return fmt.Errorf("restoring variable %s: %w", saved.Path, err)
			}
			v = created
		} else if err := v.SetValue(saved.Value); err != nil {
			return fmt.Errorf("restoring variable %s: %w", saved.Path, err)
		}
		v.SetTrainable(saved.Trainable)
	}
	return nil
}

func pruneCheckpoints(root string, keep int) {
	dirs := listCheckpoints(root)
	for i, dir := range dirs {
		if i >= keep {
			_ = os.RemoveAll(dir)
		}
	}
	entries, _ := os.ReadDir(root)
	for _, entry := range entries {
		if strings.HasPrefix(entry.Name(), ".tmp-") {
			_ = os.RemoveAll(filepath.Join(root, entry.Name()))
		}
	}
}

func fileSHA256(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, file); err != nil {
		return "", err
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

func writeFileSynced(path string, data []byte) error {
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := file.Write(data); err != nil {
		file.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return file.Close()
}

// writeFileAtomic replaces path with data: it writes a temporary file beside it, fsyncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := writeFileSynced(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	handle, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s to sync it: %w", dir, err)
	}
	defer handle.Close()
	if err := handle.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
