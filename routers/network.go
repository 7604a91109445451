package routers

import (
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// Scope names under the model's root scope.
const (
	// MainScopeName holds the routers that decide the forward pass:
	// "<root>/router/step_<r>" for expert-choice and "<root>/router/token" for token-choice.
	MainScopeName = "router"
	// AuxScopeName holds the expert-choice auxiliary routers, "<root>/aux_router/step_<r>".
	// Give these variables their own optimiser: the main loss never reaches them.
	AuxScopeName = "aux_router"
)

// routerLogits applies the router network of the given architecture to
// x [..., D] and returns logits [..., outputs] in float32. The variables,
// created in scope on first use, start from N(0, initStd) and have no bias.
// They are float32 whatever the model's dtype, because the GoMLX normal
// initialiser fills other dtypes with zeros and the router is tiny.
func routerLogits(scope *model.Scope, architecture string, x *graph.Node, outputs int, initStd float64) *graph.Node {
	g := x.Graph()
	x = graph.ConvertDType(x, dtypes.Float32)
	dModel := x.Shape().Dim(-1)
	scope = scope.WithInitializer(initializer.RandomNormalFn(scope, initStd))

	switch architecture {
	case Linear:
		weights := scope.VariableWithShape("weights", shapes.Make(dtypes.Float32, dModel, outputs)).NodeValue(g)
		return projectLastAxis(x, weights)
	case MLP, WideMLP:
		hiddenWeights := scope.VariableWithShape("hidden_weights", shapes.Make(dtypes.Float32, dModel, 2*dModel)).NodeValue(g)
		outputWeights := scope.VariableWithShape("output_weights", shapes.Make(dtypes.Float32, 2*dModel, outputs)).NodeValue(g)
		hidden := activation.Gelu(projectLastAxis(x, hiddenWeights))
		return projectLastAxis(hidden, outputWeights)
	}
	exceptions.Panicf("routers: invalid architecture %q: use %q, %q or %q", architecture, Linear, MLP, WideMLP)
	return nil
}

// projectLastAxis multiplies x [..., in] by weights [in, out] into [..., out].
func projectLastAxis(x, weights *graph.Node) *graph.Node {
	dims := x.Shape().Dimensions
	inputs := dims[len(dims)-1]
	rows := x.Shape().Size() / inputs

	flat := graph.Reshape(x, rows, inputs) // [rows, in]
	projected := graph.MatMul(flat, weights)

	outDims := append(append([]int{}, dims[:len(dims)-1]...), weights.Shape().Dim(-1))
	return graph.Reshape(projected, outDims...) // [..., out]
}
