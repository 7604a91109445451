package training

import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// RoutingMode is the rule by which a routed model chooses, at evaluation, which tokens continue.
type RoutingMode string

const (
	// SequenceTopK selects the top-k_r tokens of each whole row, as in training. It reads future
	// tokens, and the MoR paper's NLL numbers used it.
	SequenceTopK RoutingMode = "top-k"
	// CausalRouting thresholds each token's router score and never looks ahead.
	CausalRouting RoutingMode = "causal"
)

// ForwardOptions controls one forward pass of a Model.
type ForwardOptions struct {
	Training bool

	// Routing is the evaluation routing mode; training always routes with SequenceTopK.
	Routing RoutingMode

	// MaxDepth caps the number of recursion steps; 0 means all N_r.
	MaxDepth int

	// GlobalStep is the scalar optimiser step, for warm-ups inside the model; it may be nil.
	GlobalStep *graph.Node
}

// Output is the result of one forward pass, for the trainer and the evaluator.
type Output struct {
	Logits *graph.Node // [B, L, V]

	// WeightedAuxLoss is the sum of the auxiliary losses times their coefficients, added to the
	// LM loss; nil when the model has none.
	WeightedAuxLoss *graph.Node

	// Losses are the unweighted scalar auxiliary losses by name, logged every step.
	Losses map[string]*graph.Node

	// Metrics are diagnostics by name, scalars or [N_r] vectors, logged every step.
	Metrics map[string]*graph.Node

	// LastStepActive is [B, L] bool: the positions processed at the last recursion step that
	// ran; nil for models without routing. The evaluator derives the dead-token ratio from it.
	LastStepActive *graph.Node

	// AfterStep, when set, runs in the training graph after the optimiser update, e.g. the
	// loss-free bias update of token-choice routing.
	AfterStep func(g *graph.Graph)
}

// Model is a language model the trainer can optimise and the evaluator can score.
type Model interface {
	// Forward runs the model on tokens [B, L] int32 with variables under scope.
	Forward(scope *model.Scope, tokens *graph.Node, options ForwardOptions) *Output

	// Description is the JSON-encodable configuration stored in checkpoints and results.
	Description() any

	// ForwardFLOPsPerToken is the forward cost of one token at sequence length seqLen, by the
	// MoR paper's accounting rule; FLOPs budgets are divided by it.
	ForwardFLOPsPerToken(seqLen int) float64

	// NumRecursions is N_r, or 1 for a model without recursion.
	NumRecursions() int

	// Routed reports whether the model routes tokens, so both routing modes are worth evaluating.
	Routed() bool
}
