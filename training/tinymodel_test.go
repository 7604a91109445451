package training

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph-building code reads better unqualified
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// tinyModel is a small language model that exercises every part of the trainer's contract.
// It has an embedding with a tied LM head, one residual MLP and a router whose auxiliary loss and
// metrics are logged. An auxiliary router learns from a stop-gradient input, a non-trainable bias
// changes after each step, and training adds noise drawn from the store's RNG.
type tinyModel struct {
	vocab, dim int

	// deterministic turns off the training noise, so that runs with different batch splits match.
	deterministic bool
}

func (m tinyModel) Description() any { return map[string]int{"vocab": m.vocab, "dim": m.dim} }

// ForwardFLOPsPerToken counts 2 FLOPs per weight of the two MLP matrices, as the MoR paper's rule does.
func (m tinyModel) ForwardFLOPsPerToken(int) float64 { return 2 * 2 * float64(m.dim*4*m.dim) }
func (m tinyModel) NumRecursions() int               { return 1 }
func (m tinyModel) Routed() bool                     { return true }

func (m tinyModel) Forward(scope *model.Scope, tokens *Node, options ForwardOptions) *Output {
	g := tokens.Graph()
	normal := initializer.RandomNormalFn(scope, 0.02)
	embedding := scope.In("embedding").WithInitializer(normal).VariableWithShape("table", shapes.Make(dtypes.Float32, m.vocab, m.dim))
	table := embedding.NodeValue(g)
	h := Gather(table, ExpandAxes(tokens, -1)) // [B, L, D]
	if options.Training && !m.deterministic {
		h = Add(h, MulScalar(scope.RandomNormal(g, h.Shape()), 0.01))
	}

	// A causal prefix mean lets each position see earlier tokens, so the loss can fall below unigram.
	seqLen := tokens.Shape().Dim(1)
	prefixSum := CumSum(h, 1)
	counts := Reshape(Iota(g, shapes.Make(dtypes.Float32, seqLen), 0), 1, seqLen, 1)
	h = Add(h, Div(prefixSum, AddScalar(counts, 1)))

	mlp := scope.In("mlp").WithInitializer(normal)
	up := mlp.VariableWithShape("up", shapes.Make(dtypes.Float32, m.dim, 4*m.dim)).NodeValue(g)
	down := mlp.VariableWithShape("down", shapes.Make(dtypes.Float32, 4*m.dim, m.dim)).NodeValue(g)
	scale := mlp.WithInitializer(initializer.One).VariableWithShape("norm_scale", shapes.Make(dtypes.Float32, m.dim)).NodeValue(g)
	normed := Mul(Mul(h, Reciprocal(Sqrt(AddScalar(ReduceAndKeep(Square(h), ReduceMean, -1), 1e-5)))), Reshape(scale, 1, 1, m.dim))
	h = Add(h, Einsum("bld,de->ble", Tanh(Einsum("bld,de->ble", normed, up)), down))

	router := scope.In("router")
	routerWeights := router.WithInitializer(normal).VariableWithShape("weights", shapes.Make(dtypes.Float32, m.dim, 1)).NodeValue(g)
	biasVar := router.WithInitializer(initializer.Zero).VariableWithShape("bias", shapes.Make(dtypes.Float32)).SetTrainable(false)
	score := Sigmoid(Add(Squeeze(Einsum("bld,de->ble", h, routerWeights), -1), biasVar.NodeValue(g))) // [B, L]
	selected := ReduceAllMean(ConvertDType(GreaterThan(score, Scalar(g, dtypes.Float32, 0.5)), dtypes.Float32))
	zLoss := ReduceAllMean(Square(score))

	auxWeights := scope.In("aux_router").WithInitializer(normal).VariableWithShape("weights", shapes.Make(dtypes.Float32, m.dim, 1)).NodeValue(g)
	auxScore := Sigmoid(Squeeze(Einsum("bld,de->ble", StopGradient(h), auxWeights), -1))
	auxLoss := ReduceAllMean(Square(Sub(auxScore, StopGradient(score))))

	logits := Einsum("bld,vd->blv", h, table) // [B, L, V]
	return &Output{
		Logits:          logits,
		WeightedAuxLoss: Add(MulScalar(zLoss, 0.001), auxLoss),
		Losses:          map[string]*Node{"z": zLoss, "aux_router": auxLoss},
		Metrics: map[string]*Node{
			"selected_fraction": Stack([]*Node{selected, ReduceAllMean(score)}, 0),
			"hidden_norm":       ReduceAllMean(Sqrt(ReduceSum(Square(h), -1))),
		},
		LastStepActive: GreaterThan(score, ReduceAndKeep(score, ReduceMean, -1)),
		AfterStep: func(g *Graph) {
			bias := biasVar.NodeValue(g)
			biasVar.SetNodeValue(Sub(bias, MulScalar(Sub(ReduceAllMean(score), Scalar(g, dtypes.Float32, 0.5)), 0.01)))
		},
	}
}
