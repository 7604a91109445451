package mor

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"

	"github.com/gomor/gomor/routers"
)

// tokenChoiceRecursion runs token-choice routing: one router reads the hidden
// state entering the recursion, H¹, and gives each token a depth d ∈ 1..N_r
// and a gate w (the router's probability of that depth, times α). Following
// the reference code, the intermediate steps are not gated: the running
// state of a token that continues is replaced by the block output,
// H ← Block(H). At its last step the token's output is H¹ + w·Block(H), a
// residual to the recursion input. The MoR paper (Bae et al., arXiv
// 2507.10524) writes a gate on the intermediate steps too, but its released
// code does not apply one, and gomor follows the code.
//
// Static shapes: each step's load (the tokens with d ≥ r) depends on the
// data, so gomor uses the masked full-length formulation. Every step runs
// the block on all L tokens, with a key mask that keeps attention among the
// tokens active at that step, and keeps only the active rows. Nothing is
// dropped, but every step costs a full-length pass, so token-choice costs as
// much block compute as the Recursive baseline with N_r steps.
//
// Each StepRecord has Active and CandidateMask, and Scores [B, L] holds the
// router's probability of depth r. Candidates and Selected are nil because
// their counts depend on the data.
//
// TODO: compact each step to a static capacity bound (max load per row) to
// make compute shrink like expert-choice; tokens above the bound would then
// have to be dropped or the bound set to L.
func tokenChoiceRecursion(in RecursionInput, router routers.Config) RecursionOutput {
	numRecursions := in.Config.NumRecursions
	steps := routedSteps(in)
	routing := router.RouteTokens(in.Scope, in.Hidden, numRecursions, in.Config.InitStd,
		routers.TokenOptions{Training: in.Options.Training, GlobalStep: in.Options.GlobalStep})

	// depth: [B, L] int32 in 1..steps; MaxDepth finishes deeper tokens at the last step that runs.
	depth := graph.AddScalar(routing.Choice, int32(1))
	depth = graph.MinScalar(depth, int32(steps))

	recursionInput := in.Hidden
	running := in.Hidden
	output := in.Hidden
	var firstStepKV []LayerKV
	var records []StepRecord
	var fractions, norms []*graph.Node

	candidateMask := graph.GreaterOrEqual(depth, graph.Scalar(depth.Graph(), dtypes.Int32, 1)) // every token
	for r := 1; r <= steps; r++ {
		rScalar := graph.Scalar(depth.Graph(), dtypes.Int32, r)
		active := graph.GreaterOrEqual(depth, rScalar)
		finishing := graph.Equal(depth, rScalar) // [B, L]: Where broadcasts it over D
		continuing := graph.GreaterThan(depth, rScalar)

		result := in.Block(running, in.Positions, kvAttention(in.Config.KV, r, firstStepKV, active))
		if r == 1 {
			firstStepKV = result.KV
		}

		finished := graph.Add(recursionInput, gatedUpdate(routing.Gates, result.Output))
		output = graph.Where(finishing, finished, output)
		running = graph.Where(continuing, result.Output, running)

		records = append(records, StepRecord{
			Scores:        graph.Squeeze(graph.Slice(routing.Probs, graph.AxisRange(), graph.AxisRange(), graph.AxisElem(r-1)), -1),
			Active:        active,
			CandidateMask: candidateMask,
		})
		fractions = append(fractions, routers.SelectedFraction(active))
		norms = append(norms, meanTokenNorm(graph.Where(continuing, running, output)))
		candidateMask = active
	}

	out := RecursionOutput{
		Hidden:  output,
		Depth:   depth,
		Steps:   records,
		Losses:  map[string]*graph.Node{},
		Metrics: map[string]*graph.Node{},
	}
	addTokenChoiceLosses(in, router, routing, &out)
	addTokenChoiceMetrics(routing, numRecursions, out.Metrics)
	putVector(out.Metrics, MetricSelectedFraction, fractions)
	putVector(out.Metrics, MetricHiddenNorm, norms)
	return out
}

// addTokenChoiceLosses adds the balancing loss and the z-loss in training.
// The random router has no logits and no gradient, so it has no losses.
func addTokenChoiceLosses(in RecursionInput, router routers.Config, routing routers.TokenRouting, out *RecursionOutput) {
	if !in.Options.Training || routing.Logits == nil {
		return
	}
	out.Losses[LossBalance] = routers.BalancingLoss(routing.Probs, routing.Choice)
	out.Losses[LossZ] = routers.TokenZLoss(routing.Logits)
	out.WeightedAuxLoss = weightedSum(out.Losses, []weightedLoss{
		{LossBalance, router.BalanceCoeff},
		{LossZ, router.ZLossCoeff},
	})
}

// addTokenChoiceMetrics adds the loads over the N_r depths, MaxVio and entropy.
// Loads count the router's choice before MaxDepth caps it.
func addTokenChoiceMetrics(routing routers.TokenRouting, numRecursions int, metrics map[string]*graph.Node) {
	loads := routers.Loads(routing.Choice, numRecursions)
	metrics[MetricTokenLoads] = loads
	metrics[MetricMaxVio] = routers.MaxVio(loads)
	metrics[MetricEntropy] = routers.Entropy(loads)
}
