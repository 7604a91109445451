package mor

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomor/gomor/routers"
)

// expertChoiceRecursion runs N_r expert-choice steps. At step r the router
// of that step scores the candidates (the tokens selected at step r−1, all
// tokens at step 1), the top-k_r of each sequence are selected, and each
// selected token is updated as H ← H + g·Block(H), where g = α·score and
// Block's output already contains its residual path, so a selected token
// becomes (1+g)·H + g·Δ(H). The MoR paper's released code does this, its
// authors confirm it is intended, and gomor reproduces it rather than
// computing H + g·Δ(H). Unselected tokens are unchanged.
//
// Two paths compute it:
//   - The compacted path (the default) gathers the k_r selected tokens into a
//     [B, k_r, D] sequence at their original positions and runs the block on
//     it, so the block's cost shrinks with capacity. It then scatter-adds the
//     gated output back into [B, L, D]. Attention among the gathered tokens
//     is recursion-wise KV caching.
//   - The masked path keeps [B, L, D], runs the block on every token with a
//     key mask of the active tokens, and adds only the active rows. It costs
//     a full-length block per step. It runs for ForwardOptions.Reference (the
//     test oracle), for CausalRouting (counts depend on the data) and during
//     capacity warm-up (k_r depends on the training step).
func expertChoiceRecursion(in RecursionInput, router routers.Config) RecursionOutput {
	run := newExpertRun(in, router)
	var steps []expertStep
	if run.masked {
		steps = run.maskedSteps()
	} else {
		steps = run.compactedSteps()
	}
	return run.output(steps)
}

// expertRun holds the static plan of one expert-choice recursion.
type expertRun struct {
	in         RecursionInput
	router     routers.Config
	numSteps   int
	length     int
	capacities []float64
	counts     []int // k_r for r = 1..N_r at this sequence length

	causal bool // CausalRouting at evaluation
	warmup bool // capacity warm-up in training
	masked bool // the masked full-length path runs

	hidden *graph.Node // [B, L, D], updated step by step
}

// expertStep is the outcome of one step that the losses, metrics and record
// read. Scores and masks cover the candidate axis: [B, K_{r−1}] on the
// compacted path, [B, L] on the masked path where candidateMask marks the
// candidates.
type expertStep struct {
	record          StepRecord
	scores          routers.ExpertScores
	candidateMask   *graph.Node // nil on the compacted path: every entry is a candidate
	selectedMask    *graph.Node
	aux             *routers.ExpertScores
	auxSelectedMask *graph.Node
	hiddenNorm      *graph.Node
}

func newExpertRun(in RecursionInput, router routers.Config) *expertRun {
	run := &expertRun{
		in:         in,
		router:     router,
		numSteps:   routedSteps(in),
		length:     in.Hidden.Shape().Dim(1),
		capacities: router.EffectiveCapacities(in.Config.NumRecursions),
		hidden:     in.Hidden,
	}
	run.counts = router.StepCounts(in.Config.NumRecursions, run.length)

	options := in.Options
	switch options.Routing {
	case "", SequenceTopK:
	case CausalRouting:
		run.causal = !options.Training
	default:
		exceptions.Panicf("mor: invalid ForwardOptions.Routing %q: use %q or %q", options.Routing, SequenceTopK, CausalRouting)
	}
	if run.causal && options.CausalScore == CausalScoreAuxRouter && !router.AuxRouter {
		exceptions.Panicf("mor: ForwardOptions.CausalScore is %q but the router config has no auxiliary router: set router.aux_router or use %q",
			CausalScoreAuxRouter, CausalScoreRouter)
	}
	switch options.CausalScore {
	case "", CausalScoreRouter, CausalScoreAuxRouter:
	default:
		exceptions.Panicf("mor: invalid ForwardOptions.CausalScore %q: use %q or %q", options.CausalScore, CausalScoreRouter, CausalScoreAuxRouter)
	}

	// NOTE: GlobalStep is a graph value, so a config with capacity warm-up
	// takes the full-cost masked path in every training step, also after the
	// warm-up ends. Rebuilding the training graph without warm-up would avoid it.
	run.warmup = router.CapacityWarmupSteps > 0 && options.Training && options.GlobalStep != nil
	run.masked = options.Reference || run.causal || run.warmup
	return run
}

// compactedSteps runs the steps on gathered [B, k_r, D] sequences.
func (run *expertRun) compactedSteps() []expertStep {
	in := run.in
	initStd := in.Config.InitStd
	candidates := graph.ConvertDType(in.Positions, dtypes.Int32) // [B, L] at step 1
	var firstStepKV []LayerKV

	steps := make([]expertStep, 0, run.numSteps)
	for r := 1; r <= run.numSteps; r++ {
		// x: the candidates' hidden states [B, K, D]. At step 1 the candidates are all positions in order.
		x := run.hidden
		if r > 1 {
			x = routers.GatherRows(run.hidden, candidates)
		}

		scores := run.router.ScoreExpertStep(in.Scope, r, x, initStd)
		selection := routers.SelectTopK(scores.Gates, run.counts[r-1])

		// selected: absolute positions [B, k_r], ascending because candidates
		// and selection.Indices both are.
		selected := graph.Squeeze(routers.GatherRows(graph.InsertAxes(candidates, -1), selection.Indices), -1)
		compact := routers.GatherRows(x, selection.Indices) // [B, k_r, D]

		result := in.Block(compact, selected, kvAttention(in.Config.KV, r, firstStepKV, nil))
		if r == 1 {
			firstStepKV = result.KV
		}
		run.hidden = routers.ScatterAddRows(run.hidden, selected, gatedUpdate(selection.Gates, result.Output))

		step := expertStep{
			record: StepRecord{
				Candidates:    candidates,
				Selected:      selected,
				Scores:        scores.Scores,
				Active:        routers.RowMask(selected, run.length),
				CandidateMask: routers.RowMask(candidates, run.length),
			},
			scores:       scores,
			selectedMask: selection.Mask,
			hiddenNorm:   meanTokenNorm(run.hidden),
		}
		if run.router.AuxRouter {
			aux := run.router.ScoreAuxExpertStep(in.Scope, r, x, initStd)
			step.aux = &aux
			step.auxSelectedMask = routers.SelectTopK(aux.Gates, run.counts[r-1]).Mask
		}
		steps = append(steps, step)
		candidates = selected
	}
	return steps
}

// maskedSteps runs the steps at full length with key masks.
func (run *expertRun) maskedSteps() []expertStep {
	in := run.in
	initStd := in.Config.InitStd
	g := run.hidden.Graph()
	batch := run.hidden.Shape().Dim(0)
	candidateMask := graph.Ones(g, shapes.Make(dtypes.Bool, batch, run.length)) // all tokens at step 1
	var firstStepKV []LayerKV

	steps := make([]expertStep, 0, run.numSteps)
	for r := 1; r <= run.numSteps; r++ {
		scores := run.router.ScoreExpertStep(in.Scope, r, run.hidden, initStd) // [B, L]
		var aux *routers.ExpertScores
		if run.router.AuxRouter {
			auxScores := run.router.ScoreAuxExpertStep(in.Scope, r, run.hidden, initStd)
			aux = &auxScores
		}
		active := run.maskedSelection(r, scores, aux, candidateMask)

		result := in.Block(run.hidden, in.Positions, kvAttention(in.Config.KV, r, firstStepKV, active))
		if r == 1 {
			firstStepKV = result.KV
		}

		// Where, not a multiplication by the mask: inactive rows may hold
		// values that must not leak (a query with no allowed key).
		update := gatedUpdate(scores.Gates, result.Output)
		update = graph.Where(active, update, graph.ZerosLike(update)) // [B, L] broadcasts over D
		run.hidden = graph.Add(run.hidden, update)

		step := expertStep{
			record:        run.maskedRecord(r, scores, candidateMask, active),
			scores:        scores,
			candidateMask: candidateMask,
			selectedMask:  active,
			aux:           aux,
			hiddenNorm:    meanTokenNorm(run.hidden),
		}
		if aux != nil {
			step.auxSelectedMask = run.auxSelectionMasked(r, *aux, candidateMask, active)
		}
		steps = append(steps, step)
		candidateMask = active
	}
	return steps
}

// maskedSelection returns the [B, L] tokens active at step r on the masked path.
//
// Under CausalRouting a candidate continues when its score (the main or the
// auxiliary router's, before α) reaches ForwardOptions.Threshold, so a
// token's depth depends only on its own hidden state, which depends only on
// earlier tokens. A step of capacity 1 passes every candidate, as it does in
// training; with the default capacities that is step 1.
func (run *expertRun) maskedSelection(r int, scores routers.ExpertScores, aux *routers.ExpertScores, candidateMask *graph.Node) *graph.Node {
	options := run.in.Options
	switch {
	case run.causal:
		if run.capacities[r-1] >= 1 {
			return candidateMask
		}
		causalScores := scores.Scores
		if options.CausalScore == CausalScoreAuxRouter {
			causalScores = aux.Scores
		}
		threshold := graph.Scalar(causalScores.Graph(), causalScores.DType(), options.Threshold)
		return graph.LogicalAnd(candidateMask, graph.GreaterOrEqual(causalScores, threshold))

	case run.warmup:
		// Every row has the same number of candidates, so the maximum is that count.
		numCandidates := graph.ReduceAllMax(graph.ReduceSum(graph.ConvertDType(candidateMask, dtypes.Int32), -1))
		count := routers.WarmupCount(run.capacities[r-1], options.GlobalStep, run.router.CapacityWarmupSteps, run.length, numCandidates)
		return routers.SelectDynamicTopKMasked(scores.Gates, candidateMask, count)
	}
	return routers.SelectTopKMasked(scores.Gates, candidateMask, run.counts[r-1])
}

// auxSelectionMasked returns the auxiliary router's own top-k among the
// candidates, with as many tokens per row as the main selection has.
func (run *expertRun) auxSelectionMasked(r int, aux routers.ExpertScores, candidateMask, active *graph.Node) *graph.Node {
	if !run.causal && !run.warmup {
		return routers.SelectTopKMasked(aux.Gates, candidateMask, run.counts[r-1])
	}
	perRowCount := graph.ReduceAndKeep(graph.ConvertDType(active, dtypes.Int32), graph.ReduceSum, -1) // [B, 1]
	return routers.SelectDynamicTopKMasked(aux.Gates, candidateMask, perRowCount)
}

// maskedRecord fills the step record of the masked path. With static counts
// (sequence top-k without warm-up) it lists candidate and selected positions
// and the candidates' scores like the compacted path. Otherwise Candidates
// and Selected are nil and Scores covers all L positions.
func (run *expertRun) maskedRecord(r int, scores routers.ExpertScores, candidateMask, active *graph.Node) StepRecord {
	record := StepRecord{Scores: scores.Scores, Active: active, CandidateMask: candidateMask}
	if run.causal || run.warmup {
		return record
	}

	numCandidates := run.length
	if r > 1 {
		numCandidates = run.counts[r-2]
	}
	record.Candidates = routers.MaskPositions(candidateMask, numCandidates)
	record.Selected = routers.MaskPositions(active, run.counts[r-1])
	record.Scores = graph.Squeeze(routers.GatherRows(graph.InsertAxes(scores.Scores, -1), record.Candidates), -1)
	return record
}

// output assembles the recursion output: depth, records, losses and metrics.
func (run *expertRun) output(steps []expertStep) RecursionOutput {
	out := RecursionOutput{
		Hidden:  run.hidden,
		Losses:  map[string]*graph.Node{},
		Metrics: map[string]*graph.Node{},
	}
	actives := make([]*graph.Node, len(steps))
	for i, step := range steps {
		out.Steps = append(out.Steps, step.record)
		actives[i] = step.record.Active
	}
	out.Depth = depthFromActive(run.in.Positions, actives)

	if run.in.Options.Training {
		run.addLosses(steps, out.Losses)
		out.WeightedAuxLoss = weightedSum(out.Losses, []weightedLoss{
			{LossBCE, run.router.BCECoeff},
			{LossZ, run.router.ZLossCoeff},
		})
	}
	run.addMetrics(steps, out.Metrics)
	return out
}

// addLosses computes the BCE, z and auxiliary-router BCE losses. The BCE
// targets are the selection; step 1 counts only with BCEIncludeFirst. The
// random router has no logits and so no losses of its own.
func (run *expertRun) addLosses(steps []expertStep, losses map[string]*graph.Node) {
	var bce, z, auxBCE []*graph.Node
	for i, step := range steps {
		includeBCE := i > 0 || run.router.BCEIncludeFirst
		if step.scores.Logits != nil {
			z = append(z, routers.ExpertZLoss(step.scores.Logits, step.candidateMask))
			if includeBCE {
				bce = append(bce, routers.BCEWithLogits(step.scores.Logits, step.selectedMask, step.candidateMask))
			}
		}
		if step.aux != nil && includeBCE {
			auxBCE = append(auxBCE, routers.BCEWithLogits(step.aux.Logits, step.selectedMask, step.candidateMask))
		}
	}
	putLoss(losses, LossBCE, sumNodes(bce))
	putLoss(losses, LossZ, sumNodes(z))
	putLoss(losses, LossAuxRouterBCE, sumNodes(auxBCE))
}

// putLoss stores a loss when it exists.
func putLoss(losses map[string]*graph.Node, name string, loss *graph.Node) {
	if loss != nil {
		losses[name] = loss
	}
}

// addMetrics computes the per-step diagnostics.
func (run *expertRun) addMetrics(steps []expertStep, metrics map[string]*graph.Node) {
	threshold := run.router.ScoreThreshold()
	var fractions, norms, accuracies, auxAccuracies, auxTopK []*graph.Node
	for _, step := range steps {
		fractions = append(fractions, routers.SelectedFraction(step.record.Active))
		norms = append(norms, step.hiddenNorm)
		if !run.router.RandomRouter {
			accuracies = append(accuracies, routers.SamplingAccuracy(step.scores.Scores, step.selectedMask, step.candidateMask, threshold))
		}
		if step.aux != nil {
			auxAccuracies = append(auxAccuracies, routers.SamplingAccuracy(step.aux.Scores, step.selectedMask, step.candidateMask, threshold))
			auxTopK = append(auxTopK, routers.TopKOverlap(step.selectedMask, step.auxSelectedMask))
		}
	}
	putVector(metrics, MetricSelectedFraction, fractions)
	putVector(metrics, MetricHiddenNorm, norms)
	putVector(metrics, MetricSamplingAccuracy, accuracies)
	putVector(metrics, MetricAuxSamplingAccuracy, auxAccuracies)
	putVector(metrics, MetricAuxTopKAccuracy, auxTopK)
}

// putVector stacks per-step scalars into a [steps] metric when there are any.
func putVector(metrics map[string]*graph.Node, name string, values []*graph.Node) {
	if len(values) > 0 {
		metrics[name] = graph.Stack(values, 0)
	}
}
