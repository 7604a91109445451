// Package mor implements the Mixture-of-Recursions model: a Llama-style decoder
// whose shared block of layers is applied up to N_r times, with routers that
// choose per token how many recursion steps it gets.
package mor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomor/gomor/routers"
)

// SharingScheme is the mapping of unrolled layers onto unique parameter sets.
type SharingScheme string

const (
	// NoSharing is a vanilla transformer: every layer has its own parameters.
	NoSharing SharingScheme = "none"
	// Cycle reuses the K_b-layer block in order: (0,1,2)(0,1,2)(0,1,2).
	Cycle SharingScheme = "cycle"
	// Sequence repeats each unique layer N_r times in a row: (0,0,0)(1,1,1)(2,2,2).
	Sequence SharingScheme = "sequence"
	// MiddleCycle is Cycle with a unique first and last layer: F (1,2,3)(1,2,3) L.
	MiddleCycle SharingScheme = "middle-cycle"
	// MiddleSequence is Sequence with a unique first and last layer: F (1,1)(2,2) L.
	MiddleSequence SharingScheme = "middle-sequence"
)

// KVStrategy is the source of keys and values at recursion steps after the first.
type KVStrategy string

const (
	// RecursionWiseKV attends only among the tokens active at each recursion step.
	RecursionWiseKV KVStrategy = "recursion-wise"
	// SharedKV reuses the step-1 keys and values of all tokens at steps ≥ 2.
	SharedKV KVStrategy = "shared"
	// SharedKVUpdate is SharedKV where active tokens overwrite their own slots
	// with freshly computed keys and values (the hybrid variant of the MoR paper, arXiv 2507.10524).
	SharedKVUpdate KVStrategy = "shared-update"
)

// Config describes a model. Presets fill every field; JSON files are decoded on
// top of a preset or of DefaultConfig, so a field given as 0 stays 0 and is
// then rejected or accepted by Validate.
type Config struct {
	Name string `json:"name,omitempty"`

	VocabSize  int `json:"vocab_size"`
	DModel     int `json:"d_model"`
	NumHeads   int `json:"num_heads"`
	NumKVHeads int `json:"num_kv_heads"`
	HeadDim    int `json:"head_dim"`
	FFNSize    int `json:"ffn_size"`

	// NumLayers is the unrolled (effective) depth N_L, counting every recursion.
	NumLayers int `json:"num_layers"`

	MaxSeqLen      int     `json:"max_seq_len"`
	RoPETheta      float64 `json:"rope_theta"`
	NormEpsilon    float64 `json:"norm_epsilon"`
	TiedEmbeddings bool    `json:"tied_embeddings"`
	InitStd        float64 `json:"init_std"`

	Sharing SharingScheme `json:"sharing"`

	// ShareNorms ties the RMSNorm scales of shared layers too (the MoR reference code's default).
	ShareNorms bool `json:"share_norms"`

	// NumRecursions is N_r; 1 for a vanilla model.
	NumRecursions int `json:"num_recursions"`

	// DType is the parameter and activation type: "float32", "bfloat16" or "float16".
	DType string `json:"dtype"`

	// Router is nil for vanilla and recursive models.
	Router *routers.Config `json:"router,omitempty"`

	KV KVStrategy `json:"kv_strategy"`
}

// DefaultConfig returns the "vanilla-tiny" preset: an 8-layer Llama-style
// model of the tiny CPU family with no sharing and no router. JSON files
// without a "base" are decoded on top of it. Because it has no router, and
// Config omits a nil router from JSON, a saved config of any model decodes
// back to the same Config.
func DefaultConfig() Config {
	c, err := Preset("vanilla-tiny")
	if err != nil {
		panic(fmt.Sprintf("mor: the default preset is broken: %v", err))
	}
	return c
}

// LoadConfig reads a JSON config file. The file may name a preset to start
// from with "base": "<preset>"; otherwise its fields are decoded on top of
// DefaultConfig. Only the fields present in the file change, so a field given
// as 0 stays 0. An unknown field is an error that names it. A config left
// without a name (see ParseConfig) is named after the file, "model" for
// model.json. LoadConfig does not call Validate.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if c.Name == "" {
		c.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return c, nil
}

// ParseConfig decodes a JSON config as LoadConfig does, from memory. When the
// JSON changes fields of its base but gives no "name", the name of the base
// no longer describes the model, so the result has an empty name.
func ParseConfig(data []byte) (Config, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return Config{}, fmt.Errorf("invalid JSON: %w", err)
	}

	c, err := baseConfig(fields)
	if err != nil {
		return Config{}, err
	}
	delete(fields, "base")

	if err := seedRouter(&c, fields); err != nil {
		return Config{}, err
	}

	// Re-encode without "base", because the strict decoder below accepts only Config fields.
	rest, err := json.Marshal(fields)
	if err != nil {
		return Config{}, fmt.Errorf("re-encode config: %w", err)
	}
	decoder := json.NewDecoder(bytes.NewReader(rest))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&c); err != nil {
		return Config{}, explainDecodeError(err)
	}

	if _, named := fields["name"]; !named && len(fields) > 0 {
		c.Name = ""
	}
	return c, nil
}

// baseConfig returns the preset named by the "base" field, or DefaultConfig.
func baseConfig(fields map[string]json.RawMessage) (Config, error) {
	raw, found := fields["base"]
	if !found {
		return DefaultConfig(), nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return Config{}, fmt.Errorf(`field "base" must be a preset name string, got %s`, raw)
	}
	return Preset(name)
}

// seedRouter prepares c.Router for a "router" object in the file. When the
// base has no router, or one of another kind, it starts from the defaults of
// the file's kind instead of zero values. So a file may give only "kind" and
// the options it changes.
func seedRouter(c *Config, fields map[string]json.RawMessage) error {
	raw, found := fields["router"]
	if !found || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	var header struct {
		Kind *routers.Kind `json:"kind"`
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		return fmt.Errorf(`field "router" must be a JSON object: %w`, err)
	}

	kind := routers.ExpertChoice
	switch {
	case header.Kind != nil:
		kind = *header.Kind
	case c.Router != nil:
		kind = c.Router.Kind
	}
	if c.Router != nil && c.Router.Kind == kind {
		return nil
	}
	defaults, err := defaultRouter(kind)
	if err != nil {
		return err
	}
	c.Router = &defaults
	return nil
}

// explainDecodeError rewords encoding/json errors so that the message names
// the JSON field and what to do.
func explainDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("field %q: cannot use a JSON %s as %s; write a value of that type",
			typeErr.Field, typeErr.Value, typeErr.Type)
	}
	message := err.Error()
	if field, found := strings.CutPrefix(message, "json: unknown field "); found {
		return fmt.Errorf("unknown field %s; check its spelling against the JSON tags of mor.Config and routers.Config", field)
	}
	return fmt.Errorf("invalid config JSON: %w", err)
}
