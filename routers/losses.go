package routers

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
)

// BCEWithLogits returns the mean binary cross-entropy between logits [B, K]
// and bool targets [B, K] over the entries where mask is true (all entries
// when mask is nil), as a float32 scalar. It uses the stable form
// max(z, 0) − z·y + log(1 + exp(−|z|)).
func BCEWithLogits(logits, targets, mask *graph.Node) *graph.Node {
	logits = graph.ConvertDType(logits, dtypes.Float32)
	y := graph.ConvertDType(targets, dtypes.Float32)

	positivePart := graph.MaxScalar(logits, 0.0)
	softplusTail := graph.Log1p(graph.Exp(graph.Neg(graph.Abs(logits))))
	perEntry := graph.Add(graph.Sub(positivePart, graph.Mul(logits, y)), softplusTail)
	return maskedMean(perEntry, mask)
}

// ExpertZLoss returns mean(z²) of the expert-choice router logits [B, K] over
// the entries where mask is true (all when nil). The logsumexp over a single
// logit is the logit itself, so this is the router z-loss of one step.
func ExpertZLoss(logits, mask *graph.Node) *graph.Node {
	logits = graph.ConvertDType(logits, dtypes.Float32)
	return maskedMean(graph.Square(logits), mask)
}

// TokenZLoss returns mean_t (logsumexp_i z_{t,i})² for token-choice router
// logits [..., N_r], a float32 scalar.
func TokenZLoss(logits *graph.Node) *graph.Node {
	logits = graph.ConvertDType(logits, dtypes.Float32)
	return graph.ReduceAllMean(graph.Square(logSumExp(logits)))
}

// logSumExp reduces the last axis of x stably.
func logSumExp(x *graph.Node) *graph.Node {
	maxima := graph.StopGradient(graph.ReduceAndKeep(x, graph.ReduceMax, -1))
	sums := graph.ReduceSum(graph.Exp(graph.Sub(x, maxima)), -1)
	return graph.Add(graph.Log(sums), graph.Squeeze(maxima, -1))
}

// BalancingLoss returns the Switch/GShard balancing loss Σ_i f_i·P_i over all
// tokens, where P_i is the mean router probability of depth i (probs
// [..., N_r]) and f_i = N_r · the fraction of tokens whose choice [...] is i.
// It is 1 for a perfectly balanced router with matching probabilities.
func BalancingLoss(probs, choice *graph.Node) *graph.Node {
	numExperts := probs.Shape().Dim(-1)
	probs = graph.ConvertDType(probs, dtypes.Float32)
	rows := probs.Shape().Size() / numExperts

	meanProbs := graph.ReduceMean(graph.Reshape(probs, rows, numExperts), 0) // [N_r]
	fractions := graph.MulScalar(Loads(choice, numExperts), float64(numExperts))
	return graph.ReduceAllSum(graph.Mul(fractions, meanProbs))
}

// maskedMean averages x over the entries where mask is true, or over all
// entries when mask is nil. A mask with no true entry gives 0.
func maskedMean(x, mask *graph.Node) *graph.Node {
	if mask == nil {
		return graph.ReduceAllMean(x)
	}
	weights := graph.ConvertDType(mask, x.DType())
	total := graph.ReduceAllSum(graph.Mul(x, weights))
	count := graph.MaxScalar(graph.ReduceAllSum(weights), 1.0)
	return graph.Div(total, count)
}
