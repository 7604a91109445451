package mor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
)

// ConfigParam is the root-scope store parameter that holds the model config
// as a JSON string. GoMLX checkpoints save store parameters with the
// variables, so every checkpoint carries the config of its model.
const ConfigParam = "mor_config"

// SetConfigParam stores cfg in store as the ConfigParam parameter.
func SetConfigParam(store *model.Store, cfg Config) error {
	encoded, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding the model config failed: %w", err)
	}
	store.RootScope().SetParam(ConfigParam, string(encoded))
	return nil
}

// ConfigFromStore decodes the ConfigParam parameter of store.
func ConfigFromStore(store *model.Store) (Config, error) {
	value, found := store.RootScope().GetParam(ConfigParam)
	if !found {
		return Config{}, fmt.Errorf("store has no %q parameter: it was not saved by gomor, or SetConfigParam was not called", ConfigParam)
	}
	encoded, ok := value.(string)
	if !ok {
		return Config{}, fmt.Errorf("store parameter %q is a %T, want a JSON string", ConfigParam, value)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(encoded), &cfg); err != nil {
		return Config{}, fmt.Errorf("decoding store parameter %q failed: %w", ConfigParam, err)
	}
	return cfg, nil
}

// OpenCheckpoints returns a GoMLX checkpoint handler on dir for a model of
// config cfg, keeping the last keep checkpoints (−1 keeps all). When dir
// already contains checkpoints, the latest one must have been saved with a
// config equal to cfg, the name aside. Otherwise the error names the first
// differing field. The handler loads the saved variables into store as the
// model creates them. cfg is recorded in store, so every Save writes it.
func OpenCheckpoints(dir string, store *model.Store, cfg Config, keep int) (*checkpoint.Handler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating checkpoint directory failed: %w", err)
	}
	saved, found, err := ReadCheckpointConfig(dir)
	if err != nil {
		return nil, err
	}
	if found {
		if err := CompareConfigs(cfg, saved); err != nil {
			return nil, fmt.Errorf("checkpoint %s does not match the model: %w", dir, err)
		}
	}

	handler, err := checkpoint.Build(store).Dir(dir).Keep(keep).Done()
	if err != nil {
		return nil, fmt.Errorf("opening checkpoints in %s failed: %w", dir, err)
	}
	if err := SetConfigParam(store, cfg); err != nil {
		return nil, err
	}
	return handler, nil
}

// SaveCheckpoint writes the variables of store and cfg as a new checkpoint in
// dir, keeping older checkpoints. The file name carries the optimizer's
// global step when store has one. A training loop that saves often should
// keep the handler of OpenCheckpoints and call its Save instead.
//
// NOTE: opening a GoMLX checkpoint handler on a directory that already holds
// checkpoints loads the latest one into store, overwriting the current
// values. SaveCheckpoint therefore copies every variable to local memory
// first and puts the copies back, which briefly doubles the model's memory.
func SaveCheckpoint(dir string, store *model.Store, cfg Config) error {
	var current map[string]*tensors.Tensor
	if latest, err := latestCheckpoint(dir); err != nil {
		return err
	} else if latest != "" {
		if current, err = copyVariableValues(store); err != nil {
			return err
		}
	}

	previousLoader := store.Loader()
	handler, err := OpenCheckpoints(dir, store, cfg, -1)
	if err != nil {
		return err
	}
	defer store.SetLoader(previousLoader)
	if err := restoreVariableValues(store, current); err != nil {
		return err
	}

	if err := handler.Save(); err != nil {
		return fmt.Errorf("saving checkpoint in %s failed: %w", dir, err)
	}
	return nil
}

// copyVariableValues returns a local copy of the value of every variable of store that has one.
func copyVariableValues(store *model.Store) (map[string]*tensors.Tensor, error) {
	values := map[string]*tensors.Tensor{}
	for v := range store.IterVariables() {
		if !v.HasValue() {
			continue
		}
		value, err := v.MustValue().LocalClone()
		if err != nil {
			return nil, fmt.Errorf("copying variable %s failed: %w", v.Path(), err)
		}
		values[v.Path()] = value
	}
	return values, nil
}

// restoreVariableValues sets each variable of store named in values back to its copy.
func restoreVariableValues(store *model.Store, values map[string]*tensors.Tensor) error {
	for path, value := range values {
		if err := store.GetVariable(path).SetValue(value); err != nil {
			return fmt.Errorf("restoring variable %s failed: %w", path, err)
		}
	}
	return nil
}

// LoadCheckpoint loads the latest checkpoint of dir into store, after
// checking that it was saved for a model with config cfg. Every saved
// variable is created in store with its value, so the next Forward on
// store's root scope uses them.
func LoadCheckpoint(dir string, store *model.Store, cfg Config) error {
	saved, found, err := ReadCheckpointConfig(dir)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no gomor checkpoint in %s: save one with SaveCheckpoint or check the directory", dir)
	}
	if err := CompareConfigs(cfg, saved); err != nil {
		return fmt.Errorf("checkpoint %s does not match the model: %w", dir, err)
	}
	if _, err := checkpoint.Load(store).Dir(dir).Immediate().Done(); err != nil {
		return fmt.Errorf("loading checkpoint %s failed: %w", dir, err)
	}
	return nil
}

// savedParams is the part of a GoMLX checkpoint's JSON metadata that holds store parameters.
type savedParams struct {
	Params []struct {
		Scope, Key string
		Value      any
	}
}

// ReadCheckpointConfig returns the config saved with the latest checkpoint in
// dir; found is false when dir holds no checkpoint.
func ReadCheckpointConfig(dir string) (cfg Config, found bool, err error) {
	latest, err := latestCheckpoint(dir)
	if err != nil || latest == "" {
		return Config{}, false, err
	}

	data, err := os.ReadFile(latest)
	if err != nil {
		return Config{}, false, fmt.Errorf("reading checkpoint metadata failed: %w", err)
	}
	var metadata savedParams
	if err := json.Unmarshal(data, &metadata); err != nil {
		return Config{}, false, fmt.Errorf("checkpoint metadata %s is not valid JSON: %w", latest, err)
	}
	for _, param := range metadata.Params {
		if param.Key != ConfigParam || param.Scope != model.RootScopePath {
			continue
		}
		encoded, ok := param.Value.(string)
		if !ok {
			return Config{}, false, fmt.Errorf("checkpoint %s: parameter %q is a %T, want a JSON string", latest, ConfigParam, param.Value)
		}
		if err := json.Unmarshal([]byte(encoded), &cfg); err != nil {
			return Config{}, false, fmt.Errorf("checkpoint %s: decoding the model config failed: %w", latest, err)
		}
		return cfg, true, nil
	}
	return Config{}, false, fmt.Errorf("checkpoint %s has no %q parameter: it was not saved by gomor", latest, ConfigParam)
}

// latestCheckpoint returns the JSON metadata file of the newest checkpoint in
// dir, or "" when there is none. GoMLX numbers checkpoint names, so the
// lexically last name is the newest.
func latestCheckpoint(dir string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "checkpoint-*"+checkpoint.JsonNameSuffix))
	if err != nil {
		return "", fmt.Errorf("listing checkpoints in %s failed: %w", dir, err)
	}
	if len(matches) == 0 {
		if _, statErr := os.Stat(dir); statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
			return "", fmt.Errorf("reading checkpoint directory failed: %w", statErr)
		}
		return "", nil
	}
	sort.Strings(matches)
	return matches[len(matches)-1], nil
}

// CompareConfigs returns nil when want and saved describe the same model, or
// an error naming the first differing JSON field (nested router fields as
// "router.alpha") with both values. The name field is ignored.
func CompareConfigs(want, saved Config) error {
	wantFields, err := configFields(want)
	if err != nil {
		return err
	}
	savedFields, err := configFields(saved)
	if err != nil {
		return err
	}
	delete(wantFields, "name")
	delete(savedFields, "name")
	return compareFields("", wantFields, savedFields)
}

// configFields returns cfg as a generic JSON object.
func configFields(cfg Config) (map[string]any, error) {
	encoded, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the model config failed: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(encoded, &fields); err != nil {
		return nil, fmt.Errorf("decoding the model config failed: %w", err)
	}
	return fields, nil
}

// compareFields walks two JSON objects in key order and reports the first difference.
func compareFields(prefix string, want, saved map[string]any) error {
	keys := make([]string, 0, len(want)+len(saved))
	for key := range want {
		keys = append(keys, key)
	}
	for key := range saved {
		if _, ok := want[key]; !ok {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)

	for _, key := range keys {
		wantValue, savedValue := want[key], saved[key]
		wantObject, wantIsObject := wantValue.(map[string]any)
		savedObject, savedIsObject := savedValue.(map[string]any)
		if wantIsObject && savedIsObject {
			if err := compareFields(prefix+key+".", wantObject, savedObject); err != nil {
				return err
			}
			continue
		}
		if !reflect.DeepEqual(wantValue, savedValue) {
			return fmt.Errorf("config field %s is %s in the checkpoint but %s in the requested config",
				prefix+key, jsonText(savedValue), jsonText(wantValue))
		}
	}
	return nil
}

// jsonText renders a decoded JSON value for an error message; a missing value is "absent".
func jsonText(value any) string {
	if value == nil {
		return "absent"
	}
	encoded, err := json.Marshal(value)
	if err != nil {
		return fmt.Sprint(value)
	}
	return string(encoded)
}
