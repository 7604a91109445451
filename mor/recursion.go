package mor

import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// RoutingMode is how a routed model decides, at evaluation, which tokens continue.
type RoutingMode string

const (
	// SequenceTopK selects the top-k_r tokens of each whole sequence at each
	// step, as in training. It reads future tokens. The MoR paper (arXiv
	// 2507.10524) reported its NLLs with it.
	SequenceTopK RoutingMode = "top-k"
	// CausalRouting lets a token continue at step r when it was active at r−1
	// and its router score reaches a threshold; it never looks ahead.
	CausalRouting RoutingMode = "causal"
)

// ForwardOptions controls one forward pass.
type ForwardOptions struct {
	// Training enables training-only behaviour (auxiliary losses, random routers, warm-ups).
	Training bool

	// Routing is the evaluation routing mode; training always uses SequenceTopK.
	Routing RoutingMode

	// CausalScore is "router" or "aux-router": which router's score the causal mode thresholds.
	CausalScore string

	// Threshold is the score a token needs to continue under CausalRouting.
	Threshold float64

	// MaxDepth caps the number of recursion steps; 0 means N_r.
	MaxDepth int

	// Reference runs the masked full-length path instead of the compacted one.
	// It computes the same values for active tokens at full cost, as a test oracle.
	Reference bool

	// GlobalStep is the scalar training step, for capacity and balancing warm-ups; may be nil.
	GlobalStep *graph.Node
}

// LayerKV holds the keys and values one block layer attends to.
type LayerKV struct {
	Keys   *graph.Node // [B, Lkv, NumKVHeads, HeadDim], RoPE already applied
	Values *graph.Node // [B, Lkv, NumKVHeads, HeadDim]

	// Positions are the absolute positions of the keys, [B, Lkv] int32; the
	// causal mask allows key j for query i when Positions[j] ≤ position of i.
	Positions *graph.Node

	// Valid optionally masks keys out, [B, Lkv] bool; nil means all valid.
	Valid *graph.Node
}

// BlockAttention holds the options of the shared block's attention.
type BlockAttention struct {
	// SharedKV, when not nil, has one entry per block layer: that layer attends
	// to these keys and values and skips its own K/V projections (recursive KV sharing).
	SharedKV []LayerKV

	// UpdateShared makes active tokens overwrite their own slots of SharedKV with
	// freshly computed keys and values (the hybrid KV-sharing variant).
	UpdateShared bool

	// KeyMask optionally restricts, for the masked reference path, which of the
	// block's own tokens may be attended to: [B, K] bool.
	KeyMask *graph.Node

	// ReturnKV requests the keys and values each block layer computed.
	ReturnKV bool

	// Step is the 1-based recursion step of this call. It selects the norm
	// scales of the unrolled layers when norms are not shared; 0 means the
	// n-th call of the BlockFunc is step n.
	Step int
}

// BlockResult is the output of one pass through the shared block.
type BlockResult struct {
	Output *graph.Node // [B, K, D]: the block output, which includes its residual path
	KV     []LayerKV   // one per block layer, when BlockAttention.ReturnKV is set
}

// BlockFunc runs the shared K_b-layer block once on x [B, K, D], whose tokens
// sit at absolute positions [B, K] (int32, ascending in each row). RoPE uses
// these positions and the causal mask compares them, so a compacted sequence
// keeps each token's original position.
type BlockFunc func(x, positions *graph.Node, attention BlockAttention) BlockResult

// RecursionInput contains the inputs that the forward pass gives a routed recursion.
type RecursionInput struct {
	Scope     *model.Scope // the model's root scope; routers create their variables under it
	Config    Config
	Hidden    *graph.Node // [B, L, D]: the residual stream entering the recursion
	Positions *graph.Node // [B, L] int32: 0..L−1 in each row
	Options   ForwardOptions
	Block     BlockFunc
}

// StepRecord is the routing record of one recursion step.
type StepRecord struct {
	Candidates *graph.Node // [B, K_{r−1}] int32: positions eligible at this step
	Selected   *graph.Node // [B, k_r] int32: positions processed at this step, ascending
	Scores     *graph.Node // [B, K_{r−1}]: router score of each candidate
	Active     *graph.Node // [B, L] bool: tokens processed at this step

	// CandidateMask is [B, L] bool: the positions eligible at this step (the
	// tokens active at the previous step, all tokens at step 1). It is set on
	// every path, including those where Candidates is nil because the number
	// of candidates depends on the data.
	CandidateMask *graph.Node
}

// RecursionOutput contains the results of a routed recursion.
type RecursionOutput struct {
	Hidden *graph.Node  // [B, L, D]: the residual stream after the recursion
	Depth  *graph.Node  // [B, L] int32: recursion steps each token received
	Steps  []StepRecord // one per recursion step that ran

	// Losses are unweighted scalar auxiliary losses by name ("bce", "z", "balance", "aux_router_bce", ...).
	Losses map[string]*graph.Node
	// WeightedAuxLoss is the sum of the auxiliary losses times their coefficients,
	// to add to the LM loss; nil when there is none.
	WeightedAuxLoss *graph.Node
	// Metrics are diagnostics by name: scalars or [N_r] vectors.
	Metrics map[string]*graph.Node
}
