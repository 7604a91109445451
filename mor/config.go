// Package mor implements the Mixture-of-Recursions model: a Llama-style decoder
// whose shared block of layers is applied up to N_r times, with routers that
// choose per token how many recursion steps it gets.
package mor

import "github.com/gomor/gomor/routers"

// SharingScheme says how the unrolled layers map onto unique parameter sets.
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

// KVStrategy is how recursion steps after the first get their keys and values.
type KVStrategy string

const (
	// RecursionWiseKV attends only among the tokens active at each recursion step.
	RecursionWiseKV KVStrategy = "recursion-wise"
	// SharedKV reuses the step-1 keys and values of all tokens at steps ≥ 2.
	SharedKV KVStrategy = "shared"
	// SharedKVUpdate is SharedKV where active tokens overwrite their own slots
	// with freshly computed keys and values (the paper's hybrid variant).
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

	// ShareNorms ties the RMSNorm scales of shared layers too (the paper's default).
	ShareNorms bool `json:"share_norms"`

	// NumRecursions is N_r; 1 for a vanilla model.
	NumRecursions int `json:"num_recursions"`

	// DType is the parameter and activation type: "float32", "bfloat16" or "float16".
	DType string `json:"dtype"`

	// Router is nil for vanilla and recursive models.
	Router *routers.Config `json:"router,omitempty"`

	KV KVStrategy `json:"kv_strategy"`
}
