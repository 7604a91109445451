package mor

import (
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
)

// Loss is the next-token cross-entropy of a batch, in nats, computed in
// float32 (float64 when the logits are float64).
type Loss struct {
	// Mean is the mean negative log-likelihood over all scored targets of the
	// batch (token-weighted), a scalar: the training loss.
	Mean *graph.Node

	// PerRow is the mean negative log-likelihood of each row over its scored
	// targets, [B]. A row with no scored target gets 0. The validation NLL of
	// the Mixture-of-Recursions paper (Bae et al., 2025) is the mean of these
	// over rows.
	PerRow *graph.Node

	// TargetLogProbs is log p(tokens[t+1] | tokens[≤t]) at each predicted
	// position t, [B, L−1], whether or not the target is scored.
	TargetLogProbs *graph.Node

	// Weights are the [B, L−1] weights (1 or 0) of the scored targets.
	Weights *graph.Node

	// Count is the number of scored targets, a scalar.
	Count *graph.Node
}

// LMLoss computes the next-token cross-entropy of logits [B, L, V] for
// tokens [B, L]: position t predicts tokens[t+1], so the last position has
// no target. mask is nil (score every target) or [B, L] bool or numeric,
// aligned with tokens: mask[b, t] is true when token t is scored as a
// target, so mask[:, 0] is ignored. The log-softmax subtracts the row
// maximum before exponentiating, so large logits do not overflow.
func LMLoss(logits, tokens, mask *graph.Node) Loss {
	checkLossShapes(logits, tokens, mask)
	dims := logits.Shape().Dimensions
	batch, length, vocab := dims[0], dims[1], dims[2]

	// predicting: [B, L−1, V], the logits of positions 0..L−2; targets: [B, L−1], tokens 1..L−1.
	wideDType := accumulationDType(logits.DType())
	predicting := graph.SliceAxis(graph.ConvertDType(logits, wideDType), 1, graph.AxisRange(0, length-1))
	targets := graph.ConvertDType(graph.SliceAxis(tokens, 1, graph.AxisRange(1, length)), dtypes.Int32)

	logNormalizer := logSumExp(predicting)
	targetLogits := gatherTargetLogits(predicting, targets, batch, length-1, vocab)
	targetLogProbs := graph.Sub(targetLogits, logNormalizer)

	weights := graph.OnesLike(targetLogProbs)
	if mask != nil {
		scored := graph.SliceAxis(mask, 1, graph.AxisRange(1, length))
		if scored.DType() != dtypes.Bool {
			scored = graph.NotEqual(scored, graph.ZerosLike(scored))
		}
		weights = graph.ConvertDType(scored, wideDType)
	}

	nll := graph.Neg(graph.Mul(targetLogProbs, weights))
	rowCounts := graph.ReduceSum(weights, 1)
	count := graph.ReduceAllSum(weights)
	one := graph.ScalarOne(nll.Graph(), wideDType)

	return Loss{
		Mean:           graph.Div(graph.ReduceAllSum(nll), graph.Max(count, one)),
		PerRow:         graph.Div(graph.ReduceSum(nll, 1), graph.Max(rowCounts, one)),
		TargetLogProbs: targetLogProbs,
		Weights:        weights,
		Count:          count,
	}
}

// checkLossShapes panics with the shapes when logits, tokens and mask do not line up.
func checkLossShapes(logits, tokens, mask *graph.Node) {
	if logits.Rank() != 3 || tokens.Rank() != 2 {
		exceptions.Panicf("mor: LMLoss needs logits [B, L, V] and tokens [B, L], got %s and %s", logits.Shape(), tokens.Shape())
	}
	dims, tokenDims := logits.Shape().Dimensions, tokens.Shape().Dimensions
	if dims[0] != tokenDims[0] || dims[1] != tokenDims[1] {
		exceptions.Panicf("mor: LMLoss logits %s and tokens %s disagree on [B, L]", logits.Shape(), tokens.Shape())
	}
	if dims[1] < 2 {
		exceptions.Panicf("mor: LMLoss needs sequences of at least 2 tokens to have a target, got length %d", dims[1])
	}
	if mask != nil && !mask.Shape().EqualDimensions(tokens.Shape()) {
		exceptions.Panicf("mor: LMLoss mask %s must have the shape of tokens %s", mask.Shape(), tokens.Shape())
	}
}

// logSumExp returns log Σ_v exp(x[..., v]) over the last axis, computed as
// max + log Σ exp(x − max). The max is a constant for the gradient, which
// leaves the gradient of the whole expression unchanged.
func logSumExp(x *graph.Node) *graph.Node {
	maxLogit := graph.StopGradient(graph.ReduceMax(x, -1))
	shifted := graph.Sub(x, graph.InsertAxes(maxLogit, -1))
	return graph.Add(maxLogit, graph.Log(graph.ReduceSum(graph.Exp(shifted), -1)))
}

// gatherTargetLogits picks logits[b, t, targets[b, t]] from logits [B, T, V]
// without a one-hot [B, T, V] tensor: it gathers from the flattened logits at
// (b·T + t)·V + target.
func gatherTargetLogits(logits, targets *graph.Node, batch, steps, vocab int) *graph.Node {
	g := logits.Graph()

	// flat: [B, T, V] → [B·T·V]; indices: [B, T] → [B·T, 1].
	flat := graph.Reshape(logits, batch*steps*vocab)
	rowStarts := graph.MulScalar(graph.Iota(g, targets.Shape(), 0), steps*vocab)
	stepStarts := graph.MulScalar(graph.Iota(g, targets.Shape(), 1), vocab)
	indices := graph.Add(graph.Add(rowStarts, stepStarts), targets)
	indices = graph.Reshape(indices, batch*steps, 1)

	// gathered: [B·T] → [B, T].
	return graph.Reshape(graph.Gather(flat, indices), batch, steps)
}
