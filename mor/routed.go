package mor

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomor/gomor/routers"
)

// Loss names in RecursionOutput.Losses. The weighted sum of the first four,
// with the coefficients of routers.Config, is RecursionOutput.WeightedAuxLoss.
const (
	// LossBCE is Σ_r of the mean BCE between the expert-choice router logits
	// of step r's candidates and their top-k selection (step 1 only with
	// BCEIncludeFirst), weighted by BCECoeff.
	LossBCE = "bce"
	// LossZ is the router z-loss, weighted by ZLossCoeff.
	LossZ = "z"
	// LossBalance is the token-choice balancing loss Σ_i f_i·P_i, weighted by BalanceCoeff.
	LossBalance = "balance"
	// LossAuxRouterBCE is the BCE of the auxiliary routers against the same
	// targets. It is not in WeightedAuxLoss: the training loop minimises it
	// with a separate optimiser over the variables under routers.AuxScopeName.
	LossAuxRouterBCE = "aux_router_bce"
)

// Metric names in RecursionOutput.Metrics. Vectors have one entry per
// recursion step that ran.
const (
	// MetricSelectedFraction is the fraction of all positions active at each step, [steps].
	MetricSelectedFraction = "selected_fraction"
	// MetricSamplingAccuracy is, per expert-choice step, the fraction of
	// candidates where (score ≥ threshold) agrees with the selection, [steps].
	// The threshold is 0.5 for sigmoid and 0 for tanh or raw scores.
	MetricSamplingAccuracy = "sampling_accuracy"
	// MetricAuxSamplingAccuracy is MetricSamplingAccuracy of the auxiliary routers, [steps].
	MetricAuxSamplingAccuracy = "aux_sampling_accuracy"
	// MetricAuxTopKAccuracy is, per step, the fraction of the main selection
	// that the auxiliary router's own top-k also chose, [steps].
	MetricAuxTopKAccuracy = "aux_topk_accuracy"
	// MetricTokenLoads are the fractions of tokens routed to each depth by
	// token-choice, [N_r]. The loss-free bias update reads them.
	MetricTokenLoads = "token_loads"
	// MetricMaxVio is (max load − mean load)/mean load of the token-choice loads, a scalar.
	MetricMaxVio = "max_vio"
	// MetricEntropy is the entropy of the token-choice loads (ln N_r when balanced), a scalar.
	MetricEntropy = "entropy"
)

// CausalScore values of ForwardOptions.
const (
	CausalScoreRouter    = "router"
	CausalScoreAuxRouter = "aux-router"
)

// routedRecursion runs the recursion of a model with a router: expert-choice
// (one router per step, top-k_r selection) or token-choice (one router that
// assigns each token a depth up front). See expertChoiceRecursion and
// tokenChoiceRecursion for the semantics and the cost of each path.
func routedRecursion(in RecursionInput) RecursionOutput {
	router := *in.Config.Router
	if err := router.Validate(in.Config.NumRecursions); err != nil {
		exceptions.Panicf("mor: invalid router config: %v", err)
	}
	switch router.Kind {
	case routers.ExpertChoice:
		return expertChoiceRecursion(in, router)
	case routers.TokenChoice:
		return tokenChoiceRecursion(in, router)
	}
	exceptions.Panicf("mor: invalid router kind %q: use %q or %q", router.Kind, routers.ExpertChoice, routers.TokenChoice)
	return RecursionOutput{}
}

// routedSteps returns how many recursion steps a routed model runs: N_r,
// or MaxDepth when it is smaller. Routed models have one router per trained
// step, so a MaxDepth above N_r still runs N_r steps.
func routedSteps(in RecursionInput) int {
	steps := in.Config.NumRecursions
	if in.Options.MaxDepth > 0 {
		steps = min(steps, in.Options.MaxDepth)
	}
	return steps
}

// kvAttention returns the block attention settings of step r under the
// model's KV strategy. Recursion-wise caching needs nothing beyond the
// tokens the block receives, plus keyMask on the masked path. Recursive KV
// sharing runs step 1 with ReturnKV and makes steps ≥ 2 attend to those
// keys and values, so they skip their own K/V projections. In the hybrid
// variant the step's active tokens (keyMask, when set) also overwrite their slots.
func kvAttention(strategy KVStrategy, r int, firstStepKV []LayerKV, keyMask *graph.Node) BlockAttention {
	attention := BlockAttention{Step: r, KeyMask: keyMask}
	sharing := strategy == SharedKV || strategy == SharedKVUpdate
	switch {
	case sharing && r == 1:
		attention.ReturnKV = true
	case sharing:
		attention.SharedKV = firstStepKV
		attention.UpdateShared = strategy == SharedKVUpdate
	}
	return attention
}

// gatedUpdate returns gates [B, K] (float32) times the block output [B, K, D],
// in the dtype of the output.
func gatedUpdate(gates, blockOutput *graph.Node) *graph.Node {
	gates = graph.ConvertDType(gates, blockOutput.DType())
	return graph.Mul(graph.InsertAxes(gates, -1), blockOutput)
}

// depthFromActive sums the [B, L] bool active masks of the steps into an int32 depth.
func depthFromActive(positions *graph.Node, actives []*graph.Node) *graph.Node {
	depth := graph.ZerosLike(graph.ConvertDType(positions, dtypes.Int32))
	for _, active := range actives {
		depth = graph.Add(depth, graph.ConvertDType(active, dtypes.Int32))
	}
	return depth
}

// sumNodes adds scalar nodes; nil when there are none.
func sumNodes(nodes []*graph.Node) *graph.Node {
	var total *graph.Node
	for _, node := range nodes {
		if total == nil {
			total = node
		} else {
			total = graph.Add(total, node)
		}
	}
	return total
}

// weightedLoss pairs a loss name with its coefficient.
type weightedLoss struct {
	name        string
	coefficient float64
}

// weightedSum returns Σ coefficient·loss over the named losses present with
// a non-zero coefficient, in the given order, or nil when there is none.
func weightedSum(losses map[string]*graph.Node, terms []weightedLoss) *graph.Node {
	var weighted []*graph.Node
	for _, term := range terms {
		if term.coefficient == 0 {
			continue
		}
		if loss, found := losses[term.name]; found {
			weighted = append(weighted, graph.MulScalar(loss, term.coefficient))
		}
	}
	return sumNodes(weighted)
}
