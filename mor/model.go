package mor

import (
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// MetricHiddenNorm is the Output.Metrics key of the mean L2 norm of the
// residual stream after each recursion step, a float32 [steps] vector.
// Recursive baselines always report it; routed models report what
// routedRecursion puts under this key.
const MetricHiddenNorm = "hidden_norm"

// Output is the result of one forward pass.
type Output struct {
	// Logits are the next-token logits [B, L, V], float32 (float64 for float64 models).
	Logits *graph.Node

	// Hidden is the residual stream after the last layer and the final norm,
	// [B, L, D] in the model dtype: the input of the LM head.
	Hidden *graph.Node

	// Depth is [B, L] int32: the recursion steps each token received. For
	// recursive baselines every token gets the number of steps that ran;
	// nil for models without a recursion block.
	Depth *graph.Node

	// Steps, Losses and WeightedAuxLoss come from routedRecursion for routed
	// models; they are empty for the others.
	Steps           []StepRecord
	Losses          map[string]*graph.Node
	WeightedAuxLoss *graph.Node

	// Metrics are diagnostics by name (see MetricHiddenNorm). Never nil.
	Metrics map[string]*graph.Node
}

// Forward runs the model of cfg on tokens [B, L] int32 and returns the logits
// and the diagnostics of the recursion. Variables are created under scope on
// first use and reused afterwards, so calling Forward twice in a graph (or
// once per graph) shares one set of weights.
//
// The model runs the layers of cfg.Layout(): the Prefix once (all layers of
// vanilla and Sequence models), then the shared block, then the Suffix.
// Without a router, the block runs on every token, H ← Block(H), N_r times
// or opts.MaxDepth times. A MaxDepth above N_r runs the shared block more
// often than it was trained for (test-time depth extrapolation). Extra steps
// reuse the norms of step N_r when norms are not shared. With a router, the
// block is handed to routedRecursion.
//
// Forward assumes a valid config: call Config.Validate before building the graph.
func Forward(scope *model.Scope, cfg Config, tokens *graph.Node, opts ForwardOptions) *Output {
	checkTokens(cfg, tokens)
	layout := cfg.Layout()
	if opts.MaxDepth < 0 {
		exceptions.Panicf("mor: ForwardOptions.MaxDepth is %d; use 0 for N_r or a positive step count", opts.MaxDepth)
	}
	if opts.MaxDepth > 0 && len(layout.Block) == 0 {
		exceptions.Panicf("mor: ForwardOptions.MaxDepth = %d needs a recursion block, and sharing scheme %q has none; use %q or %q",
			opts.MaxDepth, cfg.Sharing, Cycle, MiddleCycle)
	}

	out := &Output{Losses: map[string]*graph.Node{}, Metrics: map[string]*graph.Node{}}
	positions := sequencePositions(tokens)
	hidden := EmbedTokens(scope, cfg, tokens)

	for l, u := range layout.Prefix {
		hidden, _ = decoderLayer(scopesForLayer(scope, cfg, u, l), cfg, hidden, positions, LayerAttention{})
	}

	if len(layout.Block) > 0 {
		block := NewBlockFunc(scope, cfg)
		if cfg.Router != nil {
			hidden = runRouted(scope, cfg, hidden, positions, opts, block, out)
		} else {
			hidden = runRecursive(cfg, hidden, positions, opts, block, out)
		}
	}

	suffixStart := len(layout.Prefix) + layout.NumRecursions*len(layout.Block)
	for k, u := range layout.Suffix {
		hidden, _ = decoderLayer(scopesForLayer(scope, cfg, u, suffixStart+k), cfg, hidden, positions, LayerAttention{})
	}

	out.Hidden = RMSNorm(scope.At(scopeFinalNorm), cfg, hidden)
	out.Logits = lmHead(scope, cfg, out.Hidden)
	return out
}

// checkTokens panics with the shape and the fix when tokens cannot be a batch of sequences for cfg.
func checkTokens(cfg Config, tokens *graph.Node) {
	if tokens.Rank() != 2 || !tokens.DType().IsInt() {
		exceptions.Panicf("mor: Forward needs tokens of shape [batch, length] with an integer dtype, got %s", tokens.Shape())
	}
	if cfg.MaxSeqLen > 0 && tokens.Shape().Dimensions[1] > cfg.MaxSeqLen {
		exceptions.Panicf("mor: sequence length %d exceeds max_seq_len %d; cut the input or raise max_seq_len",
			tokens.Shape().Dimensions[1], cfg.MaxSeqLen)
	}
}

// sequencePositions returns 0..L−1 in each row, [B, L] int32.
func sequencePositions(tokens *graph.Node) *graph.Node {
	return graph.Iota(tokens.Graph(), shapes.Make(dtypes.Int32, tokens.Shape().Dimensions...), 1)
}

// recursionSteps returns how many times the recursive baseline runs its block.
func recursionSteps(cfg Config, opts ForwardOptions) int {
	if opts.MaxDepth > 0 {
		return opts.MaxDepth
	}
	return cfg.NumRecursions
}

// runRecursive applies the block to every token for each recursion step and
// records the depth and the hidden-state norm after each step. With KV
// sharing, steps ≥ 2 attend to the keys and values of step 1.
func runRecursive(cfg Config, hidden, positions *graph.Node, opts ForwardOptions, block BlockFunc, out *Output) *graph.Node {
	steps := recursionSteps(cfg, opts)
	sharing := cfg.KV == SharedKV || cfg.KV == SharedKVUpdate

	var firstStepKV []LayerKV
	norms := make([]*graph.Node, 0, steps)
	for r := 1; r <= steps; r++ {
		attention := BlockAttention{Step: r}
		switch {
		case sharing && r == 1:
			attention.ReturnKV = true
		case sharing:
			attention.SharedKV = firstStepKV
			attention.UpdateShared = cfg.KV == SharedKVUpdate
		}

		result := block(hidden, positions, attention)
		hidden = result.Output
		if r == 1 {
			firstStepKV = result.KV
		}
		norms = append(norms, meanTokenNorm(hidden))
	}

	out.Metrics[MetricHiddenNorm] = graph.Stack(norms, 0)
	out.Depth = graph.Add(graph.ZerosLike(positions), graph.Scalar(positions.Graph(), dtypes.Int32, steps))
	return hidden
}

// runRouted hands the recursion to routedRecursion and copies its results into out.
func runRouted(scope *model.Scope, cfg Config, hidden, positions *graph.Node, opts ForwardOptions, block BlockFunc, out *Output) *graph.Node {
	result := routedRecursion(RecursionInput{
		Scope:     scope,
		Config:    cfg,
		Hidden:    hidden,
		Positions: positions,
		Options:   opts,
		Block:     block,
	})

	out.Depth = result.Depth
	out.Steps = result.Steps
	out.WeightedAuxLoss = result.WeightedAuxLoss
	for name, loss := range result.Losses {
		out.Losses[name] = loss
	}
	for name, metric := range result.Metrics {
		out.Metrics[name] = metric
	}
	return result.Hidden
}

// meanTokenNorm returns the mean over batch and positions of the L2 norm of
// each token's hidden vector, a float32 scalar.
func meanTokenNorm(hidden *graph.Node) *graph.Node {
	squares := graph.Square(graph.ConvertDType(hidden, dtypes.Float32))
	return graph.ReduceAllMean(graph.Sqrt(graph.ReduceSum(squares, -1)))
}
