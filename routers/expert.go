package routers

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Capacity returns the number of tokens k = max(1, floor(β·length)) that a
// step of capacity β processes in a sequence of the given length, clamped to
// the numCandidates tokens still active. length is the full sequence length,
// not the number of candidates, as in the reference code.
func Capacity(beta float64, length, numCandidates int) int {
	// The epsilon makes 0.29·100, which is 28.999… in float64, floor to 29.
	// The reference code's int(β·L) gives 28 there. The default capacities
	// (N_r−r+1)/N_r give the same k either way for L ≤ 4096 and N_r ≤ 7.
	k := int(math.Floor(beta*float64(length) + 1e-9))
	return min(max(1, k), numCandidates)
}

// StepCounts returns k_r for r = 1..numRecursions in a sequence of the given
// length: k_r = Capacity(β_r, length, k_{r−1}) with k_0 = length.
func (c Config) StepCounts(numRecursions, length int) []int {
	counts := make([]int, numRecursions)
	candidates := length
	for r, beta := range c.EffectiveCapacities(numRecursions) {
		counts[r] = Capacity(beta, length, candidates)
		candidates = counts[r]
	}
	return counts
}

// ExpertScores are the router outputs for the candidates of one expert-choice
// step, each [B, K] float32.
type ExpertScores struct {
	// Logits are z = router(x)/T, the input of the BCE and z-losses; nil for the random router.
	Logits *graph.Node
	// Scores are the score function of z: sigmoid(z), tanh(z) or z itself.
	Scores *graph.Node
	// Gates are α·Scores, the weights of the block outputs, and the top-k key.
	Gates *graph.Node
}

// stepScopeName is the scope of the step-r router under MainScopeName or AuxScopeName.
func stepScopeName(step int) string {
	return fmt.Sprintf("step_%d", step)
}

// ScoreExpertStep runs the router of recursion step `step` (1-based) on the
// candidate hidden states x [B, K, D]. Each step has its own router, with
// variables in "<root>/router/step_<step>". With RandomRouter the scores
// are uniform in [0, 1) and no variables are made.
func (c Config) ScoreExpertStep(root *model.Scope, step int, x *graph.Node, initStd float64) ExpertScores {
	if c.RandomRouter {
		return c.randomExpertScores(root, x)
	}
	scope := root.At("%s", MainScopeName).At("%s", stepScopeName(step))
	return c.scoresFromLogits(c.expertLogits(scope, x, initStd))
}

// ScoreAuxExpertStep runs the auxiliary router of step `step` on
// stop_gradient(x), so its training never changes the hidden states. Its
// variables live in "<root>/aux_router/step_<step>".
func (c Config) ScoreAuxExpertStep(root *model.Scope, step int, x *graph.Node, initStd float64) ExpertScores {
	scope := root.At("%s", AuxScopeName).At("%s", stepScopeName(step))
	return c.scoresFromLogits(c.expertLogits(scope, graph.StopGradient(x), initStd))
}

// expertLogits returns z = router(x)/T, [B, K] float32.
func (c Config) expertLogits(scope *model.Scope, x *graph.Node, initStd float64) *graph.Node {
	logits := routerLogits(scope, c.Architecture, x, 1, initStd) // [B, K, 1]
	logits = graph.Squeeze(logits, -1)                           // [B, K]
	return graph.DivScalar(logits, c.Temperature)
}

// scoresFromLogits applies the score function and α.
func (c Config) scoresFromLogits(logits *graph.Node) ExpertScores {
	var scores *graph.Node
	switch c.ScoreFunc {
	case Sigmoid:
		scores = graph.Sigmoid(logits)
	case Tanh:
		scores = graph.Tanh(logits)
	case NoScore:
		scores = logits
	default:
		exceptions.Panicf("routers: invalid expert-choice score_func %q: use %q, %q or %q", c.ScoreFunc, Sigmoid, Tanh, NoScore)
	}
	return ExpertScores{Logits: logits, Scores: scores, Gates: graph.MulScalar(scores, c.Alpha)}
}

// randomExpertScores draws scores uniformly in [0, 1) for the candidates of x [B, K, D].
func (c Config) randomExpertScores(root *model.Scope, x *graph.Node) ExpertScores {
	dims := x.Shape().Dimensions
	scores := root.RandomUniform(x.Graph(), shapes.Make(dtypes.Float32, dims[0], dims[1]))
	return ExpertScores{Scores: scores, Gates: graph.MulScalar(scores, c.Alpha)}
}

// ScoreThreshold returns the score at which a token counts as "selected" for
// the sampling accuracy: 0.5 for sigmoid, 0 for tanh and for raw logits.
func (c Config) ScoreThreshold() float64 {
	if c.ScoreFunc == Sigmoid {
		return 0.5
	}
	return 0
}

// Selection is the top-k choice of one expert-choice step among K candidates.
type Selection struct {
	// Indices are [B, k] int32 indices into the candidate axis, ascending, so
	// that the selected tokens keep their causal order.
	Indices *graph.Node
	// Gates are [B, k]: the gate of each selected candidate, in the order of Indices.
	Gates *graph.Node
	// Mask is [B, K] bool, true for selected candidates: the BCE targets.
	Mask *graph.Node
}

// maxRankElements bounds B·K² for the pairwise-rank selection. Larger
// selections sort with TopK instead, which needs only O(B·K) memory. On the
// pure-Go backend of compute v0.1.5, though, a sort runs a comparator
// closure per comparison: a [4, 192] top-k took about 65 ms on a 2-core
// Xeon. Two sorts at once can also deadlock that backend's worker pool.
var maxRankElements = 1 << 24

// useRanks reports whether the pairwise-rank selection fits for x [B, K].
func useRanks(x *graph.Node) bool {
	batch, width := x.Shape().Dim(0), x.Shape().Dim(1)
	return batch*width*width <= maxRankElements
}

// descendingRanks returns, for each entry of x [B, K], how many entries of
// its row come before it in a stable descending order: larger values, and
// equal values at earlier indices. The result is [B, K] int32, and an entry
// is among the top k exactly when its rank is below k.
func descendingRanks(x *graph.Node) *graph.Node {
	g := x.Graph()
	width := x.Shape().Dim(1)

	// Pairwise [B, K, K] comparisons: entry i on axis 1, entry j on axis 2.
	entryI := graph.InsertAxes(x, -1) // [B, K, 1]
	entryJ := graph.InsertAxes(x, 1)  // [B, 1, K]
	larger := graph.GreaterThan(entryJ, entryI)
	tied := graph.Equal(entryJ, entryI)
	earlier := graph.LessThan( // [1, K, K]: j < i
		graph.Iota(g, shapes.Make(dtypes.Int32, 1, width, width), 2),
		graph.Iota(g, shapes.Make(dtypes.Int32, 1, width, width), 1))

	before := graph.LogicalOr(larger, graph.LogicalAnd(tied, earlier))
	return graph.ReduceSum(graph.ConvertDType(before, dtypes.Int32), -1)
}

// SelectTopK selects, in each row of gates [B, K], the k largest gates. Ties
// go to the earlier candidate. The chosen indices are in ascending order and
// the gates are gathered in that order, so gradients reach the router
// through Gates while the indices carry none.
func SelectTopK(gates *graph.Node, k int) Selection {
	numCandidates := gates.Shape().Dim(1)

	var indices, mask *graph.Node
	if useRanks(gates) {
		mask = graph.LessThan(descendingRanks(gates), graph.Scalar(gates.Graph(), dtypes.Int32, k))
		indices = MaskPositions(mask, k) // [B, k], ascending
	} else {
		_, indices = graph.TopK(gates, k, -1)   // [B, k], by descending gate
		indices = graph.Sort(indices, -1, true) // [B, k], ascending
		mask = RowMask(indices, numCandidates)
	}

	// selectedGates: [B, K] → [B, k, 1] → [B, k].
	selectedGates := GatherRows(graph.InsertAxes(gates, -1), indices)
	selectedGates = graph.Squeeze(selectedGates, -1)
	return Selection{Indices: indices, Gates: selectedGates, Mask: mask}
}

// SelectTopKMasked selects, in each row, the k largest gates among the
// candidates where candidates [B, L] is true, with ties to the earlier
// position: the full-length equivalent of SelectTopK. It returns a [B, L]
// bool mask. Every row must hold at least k candidates.
func SelectTopKMasked(gates, candidates *graph.Node, k int) *graph.Node {
	if useRanks(gates) {
		return SelectDynamicTopKMasked(gates, candidates, graph.Scalar(gates.Graph(), dtypes.Int32, k))
	}
	masked := graph.Where(candidates, gates, graph.Infinity(gates.Graph(), gates.DType(), -1))
	return graph.LogicalAnd(graph.TopKMask(masked, k, -1), candidates)
}

// SelectDynamicTopKMasked is SelectTopKMasked for a count k that is a graph
// value: an int32 scalar (as during capacity warm-up) or one count per row,
// [B, 1]. Each row keeps its k largest candidate gates.
func SelectDynamicTopKMasked(gates, candidates, k *graph.Node) *graph.Node {
	g := gates.Graph()
	batch, length := gates.Shape().Dim(0), gates.Shape().Dim(1)
	masked := graph.Where(candidates, gates, graph.Infinity(g, gates.DType(), -1))
	k = graph.ConvertDType(k, dtypes.Int32)
	if useRanks(gates) {
		return graph.LogicalAnd(graph.LessThan(descendingRanks(masked), k), candidates)
	}

	// Sort every row fully, then keep[b, i] = 1 where rank i < k; scattering
	// it to the sorted positions order[b, i] gives the mask.
	_, order := graph.TopK(masked, length, -1) // [B, L]: positions by descending gate
	rank := graph.Iota(g, shapes.Make(dtypes.Int32, batch, length), 1)
	keep := graph.ConvertDType(graph.LessThan(rank, k), dtypes.Float32)
	selected := ScatterAddRows(graph.Zeros(g, shapes.Make(dtypes.Float32, batch, length)), order, keep)
	return graph.LogicalAnd(graph.GreaterThan(selected, graph.ScalarZero(g, dtypes.Float32)), candidates)
}

// WarmupCapacity returns the capacity at training step `step` (a scalar node)
// under cosine capacity warm-up: β(t) = β + (1−β)·½(1 + cos(π·min(1, t/T_w))),
// which starts at 1 and reaches β after warmupSteps steps. The result is a
// float32 scalar.
func WarmupCapacity(beta float64, step *graph.Node, warmupSteps int) *graph.Node {
	t := graph.ConvertDType(step, dtypes.Float32)
	progress := graph.MinScalar(graph.DivScalar(t, float64(warmupSteps)), 1.0)
	cosine := graph.MulScalar(graph.OnePlus(graph.Cos(graph.MulScalar(progress, math.Pi))), 0.5)
	return graph.AddScalar(graph.MulScalar(cosine, 1-beta), beta)
}

// WarmupCount returns k(t) = max(1, floor(β(t)·length)) under capacity
// warm-up, clamped to numCandidates, an int32 scalar (numCandidates may be a
// graph value, as in the masked path where the previous count varies).
func WarmupCount(beta float64, step *graph.Node, warmupSteps, length int, numCandidates *graph.Node) *graph.Node {
	capacity := WarmupCapacity(beta, step, warmupSteps)
	count := graph.Floor(graph.AddScalar(graph.MulScalar(capacity, float64(length)), 1e-6))
	count = graph.ConvertDType(graph.MaxScalar(count, 1.0), dtypes.Int32)
	return graph.Min(count, graph.ConvertDType(numCandidates, dtypes.Int32))
}
