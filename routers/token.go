package routers

import (
	"fmt"

	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Token-choice variable names under "<root>/router".
const (
	tokenScopeName   = "token"
	lossFreeBiasName = "loss_free_bias"
)

// TokenRouting is the depth assignment of a token-choice router.
type TokenRouting struct {
	// Logits are z = router(x)/T, [B, L, N_r] float32.
	Logits *graph.Node
	// Probs are softmax(z) or sigmoid(z) before α, [B, L, N_r]: the P_i of the balancing loss.
	Probs *graph.Node
	// Choice is the chosen expert e ∈ 0..N_r−1 of each token, [B, L] int32;
	// the token's depth is e+1.
	Choice *graph.Node
	// Gates are α·Probs at Choice, [B, L] float32: the weight of the final
	// block output. The loss-free bias changes Choice but not the gate.
	Gates *graph.Node
}

// TokenOptions are the forward-pass settings that token-choice routing reads.
type TokenOptions struct {
	// Training enables the balancing warm-up.
	Training bool
	// GlobalStep is the scalar training step; the warm-up is skipped when nil.
	GlobalStep *graph.Node
}

// RouteTokens runs the token-choice router on x [B, L, D], the hidden state
// entering the recursion, and picks the top-1 of numRecursions depths per
// token. The router lives in "<root>/router/token". With a loss-free bias
// rate, the non-trainable bias "<root>/router/token/loss_free_bias" [N_r] is
// added to the probabilities for the argmax only. During the balancing
// warm-up (training, GlobalStep < BalanceWarmupSteps) every token gets the
// maximum depth and the bias is ignored.
func (c Config) RouteTokens(root *model.Scope, x *graph.Node, numRecursions int, initStd float64, options TokenOptions) TokenRouting {
	scope := root.At("%s", MainScopeName).At("%s", tokenScopeName)

	var routing TokenRouting
	if c.RandomRouter {
		routing.Probs = randomDistribution(root, x, numRecursions)
	} else {
		routing.Logits = graph.DivScalar(routerLogits(scope, c.Architecture, x, numRecursions, initStd), c.Temperature)
		routing.Probs = c.tokenProbs(routing.Logits)
	}
	weighted := graph.MulScalar(routing.Probs, c.Alpha) // [B, L, N_r]

	decision := weighted
	if c.LossFreeBiasRate > 0 {
		bias := lossFreeBiasVariable(scope, numRecursions).NodeValue(x.Graph())
		decision = graph.Add(weighted, graph.Reshape(bias, 1, 1, numRecursions)) // [B, L, N_r] + [1, 1, N_r]
	}
	routing.Choice = graph.ConvertDType(graph.ArgMax(decision, -1), dtypes.Int32) // [B, L]
	if c.BalanceWarmupSteps > 0 && options.Training && options.GlobalStep != nil {
		routing.Choice = forceMaxDepthDuringWarmup(routing.Choice, options.GlobalStep, c.BalanceWarmupSteps, numRecursions)
	}

	// gates: the unbiased weighted probability of the chosen depth, [B, L].
	chosen := graph.OneHot(routing.Choice, numRecursions, dtypes.Float32)
	routing.Gates = graph.ReduceSum(graph.Mul(weighted, chosen), -1)
	return routing
}

// tokenProbs applies the token-choice score function over the last axis.
func (c Config) tokenProbs(logits *graph.Node) *graph.Node {
	switch c.ScoreFunc {
	case Softmax:
		return graph.Softmax(logits, -1)
	case Sigmoid:
		return graph.Sigmoid(logits)
	}
	exceptions.Panicf("routers: invalid token-choice score_func %q: use %q or %q", c.ScoreFunc, Softmax, Sigmoid)
	return nil
}

// randomDistribution draws, per token, uniform numbers normalised to sum to
// 1 over the depths: the random-router ablation, whose argmax is a uniformly
// random depth.
func randomDistribution(root *model.Scope, x *graph.Node, numRecursions int) *graph.Node {
	dims := x.Shape().Dimensions
	draws := root.RandomUniform(x.Graph(), shapes.Make(dtypes.Float32, dims[0], dims[1], numRecursions))
	return graph.Div(draws, graph.ReduceAndKeep(draws, graph.ReduceSum, -1))
}

// forceMaxDepthDuringWarmup replaces every choice by the deepest expert while step < warmupSteps.
func forceMaxDepthDuringWarmup(choice, step *graph.Node, warmupSteps, numRecursions int) *graph.Node {
	g := choice.Graph()
	inWarmup := graph.LessThan(graph.ConvertDType(step, dtypes.Int64), graph.Scalar(g, dtypes.Int64, warmupSteps))
	deepest := graph.Scalar(g, dtypes.Int32, numRecursions-1)
	return graph.Where(inWarmup, graph.BroadcastToDims(deepest, choice.Shape().Dimensions...), choice)
}

// lossFreeBiasVariable returns the non-trainable bias [N_r], created with zeros.
func lossFreeBiasVariable(scope *model.Scope, numRecursions int) *model.Variable {
	variable := scope.VariableWithValue(lossFreeBiasName, make([]float32, numRecursions))
	variable.SetTrainable(false)
	return variable
}

// LossFreeBiasStep returns the loss-free balancing update of bias:
// b_i + rate·sign(mean_j load_j − load_i), so under-loaded depths gain and
// over-loaded ones lose. loads are the fractions of tokens routed to each
// depth, averaged over the micro-batches of the optimiser step.
func LossFreeBiasStep(bias, loads []float64, rate float64) ([]float64, error) {
	if len(bias) != len(loads) {
		return nil, fmt.Errorf("routers: loss-free bias has %d entries but loads has %d: pass one load per recursion depth", len(bias), len(loads))
	}
	mean := 0.0
	for _, load := range loads {
		mean += load
	}
	mean /= float64(len(loads))

	updated := make([]float64, len(bias))
	for i := range bias {
		updated[i] = bias[i] + rate*sign(mean-loads[i])
	}
	return updated, nil
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// UpdateLossFreeBias applies LossFreeBiasStep with c.LossFreeBiasRate to the
// bias variable of the token-choice router under root. The training loop
// calls it after each optimiser step with the observed loads (the
// "token_loads" metric averaged over the step's micro-batches), and skips it
// during the balancing warm-up. It returns an error when the variable does
// not exist yet (build the forward graph once first) or the loads do not fit.
func (c Config) UpdateLossFreeBias(root *model.Scope, loads []float64) error {
	if c.LossFreeBiasRate == 0 {
		return fmt.Errorf("routers: loss_free_bias_rate is 0, so there is no loss-free bias to update: set a positive rate (0.001 or 0.01 in the paper)")
	}
	path := model.JoinPath(root.Scope(), MainScopeName, tokenScopeName)
	variable := root.Store().GetVariable(model.JoinPath(path, lossFreeBiasName))
	if variable == nil {
		return fmt.Errorf("routers: loss-free bias variable %s not found: build and run the forward graph once before updating it",
			model.JoinPath(path, lossFreeBiasName))
	}

	value, err := variable.Value()
	if err != nil {
		return fmt.Errorf("routers: reading the loss-free bias %s failed: %w", variable.Path(), err)
	}
	current := tensors.MustCopyFlatData[float32](value)
	bias := make([]float64, len(current))
	for i, b := range current {
		bias[i] = float64(b)
	}

	updated, err := LossFreeBiasStep(bias, loads, c.LossFreeBiasRate)
	if err != nil {
		return err
	}
	next := make([]float32, len(updated))
	for i, b := range updated {
		next[i] = float32(b)
	}
	return variable.SetValue(tensors.FromValue(next))
}
