package routers

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
)

// SamplingAccuracy returns the fraction of candidates whose score decision
// (score ≥ threshold) agrees with the top-k selection: scores and selected
// are [B, K], mask restricts the candidates (nil for all). With a sigmoid
// score the threshold is 0.5, with tanh it is 0 (see Config.ScoreThreshold).
func SamplingAccuracy(scores, selected, mask *graph.Node, threshold float64) *graph.Node {
	scores = graph.ConvertDType(scores, dtypes.Float32)
	predicted := graph.GreaterOrEqual(scores, graph.Scalar(scores.Graph(), dtypes.Float32, threshold))
	agree := graph.Equal(graph.ConvertDType(predicted, dtypes.Float32), graph.ConvertDType(selected, dtypes.Float32))
	return maskedMean(graph.ConvertDType(agree, dtypes.Float32), mask)
}

// TopKOverlap returns |A ∩ S| / |S| for two [B, K] bool selections: the
// fraction of the main router's selection S that the auxiliary router's own
// top-k A also chose (the auxiliary router's top-k accuracy).
func TopKOverlap(mainSelected, auxSelected *graph.Node) *graph.Node {
	both := graph.ConvertDType(graph.LogicalAnd(mainSelected, auxSelected), dtypes.Float32)
	mainCount := graph.MaxScalar(graph.ReduceAllSum(graph.ConvertDType(mainSelected, dtypes.Float32)), 1.0)
	return graph.Div(graph.ReduceAllSum(both), mainCount)
}

// SelectedFraction returns the fraction of all positions where active [B, L] is true.
func SelectedFraction(active *graph.Node) *graph.Node {
	return graph.ReduceAllMean(graph.ConvertDType(active, dtypes.Float32))
}

// Loads returns the fraction of tokens that chose each of the numExperts
// experts, [numExperts] float32, from integer choices of any shape.
func Loads(choice *graph.Node, numExperts int) *graph.Node {
	size := choice.Shape().Size()
	flat := graph.Reshape(graph.ConvertDType(choice, dtypes.Int32), size)
	oneHot := graph.OneHot(flat, numExperts, dtypes.Float32) // [tokens, N]
	return graph.ReduceMean(oneHot, 0)
}

// MaxVio returns (max_i load_i − mean load) / mean load for loads [N]: 0 when
// perfectly balanced.
func MaxVio(loads *graph.Node) *graph.Node {
	loads = graph.ConvertDType(loads, dtypes.Float32)
	mean := graph.ReduceAllMean(loads)
	return graph.Div(graph.Sub(graph.ReduceAllMax(loads), mean), mean)
}

// Entropy returns −Σ_i p_i·log p_i of a distribution p [N] (natural log, 0·log 0 = 0):
// ln N for uniform loads.
func Entropy(distribution *graph.Node) *graph.Node {
	p := graph.ConvertDType(distribution, dtypes.Float32)
	positive := graph.GreaterThan(p, graph.ScalarZero(p.Graph(), dtypes.Float32))
	safe := graph.Where(positive, p, graph.OnesLike(p))
	return graph.Neg(graph.ReduceAllSum(graph.Mul(p, graph.Log(safe))))
}
