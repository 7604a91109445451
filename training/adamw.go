package training

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph-building code reads better unqualified
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// AdamWConfig configures the optimiser. Variables whose path contains the path element
// AuxRouterScope form a second parameter group with its own learning rate (AuxLRScale × the
// scheduled rate), its own moments and its own gradient clipping. The auxiliary router learns
// from its own loss with a stop-gradient on its input, so the two groups' updates never mix.
type AdamWConfig struct {
	Beta1, Beta2, Epsilon float64
	WeightDecay           float64

	// ClipNorm is the maximum global L2 norm of each group's gradient; 0 disables clipping.
	ClipNorm float64

	// DecayAll applies weight decay to every variable. By default variables of rank ≤ 1
	// (RMSNorm scales, biases) are excluded, as in the MoR reference trainer.
	DecayAll bool

	AuxRouterScope string
	AuxLRScale     float64
}

// DefaultAdamW returns the MoR paper's optimiser: β 0.9/0.95, eps 1e-8, weight decay 0.1 without
// norm scales and biases, global-norm clipping at 1.0, and an auxiliary-router rate of 10×.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{
		Beta1: 0.9, Beta2: 0.95, Epsilon: 1e-8,
		WeightDecay:    0.1,
		ClipNorm:       1.0,
		AuxRouterScope: "aux_router",
		AuxLRScale:     10,
	}
}

// Validate returns an error naming the first invalid field and the fix.
func (c AdamWConfig) Validate() error {
	switch {
	case c.Beta1 < 0 || c.Beta1 >= 1:
		return fmt.Errorf("invalid AdamW β1 %g: use a value in [0, 1)", c.Beta1)
	case c.Beta2 < 0 || c.Beta2 >= 1:
		return fmt.Errorf("invalid AdamW β2 %g: use a value in [0, 1)", c.Beta2)
	case c.Epsilon <= 0:
		return fmt.Errorf("invalid AdamW epsilon %g: use a positive value such as 1e-8", c.Epsilon)
	case c.WeightDecay < 0:
		return fmt.Errorf("invalid weight decay %g: use 0 or a positive value such as 0.1", c.WeightDecay)
	case c.ClipNorm < 0:
		return fmt.Errorf("invalid gradient clipping norm %g: use 0 (off) or a positive value such as 1.0", c.ClipNorm)
	case c.AuxLRScale <= 0:
		return fmt.Errorf("invalid auxiliary-router learning-rate scale %g: use a positive value such as 10", c.AuxLRScale)
	}
	return nil
}

// Paths of the optimiser's bookkeeping variables; the step's diagnostics are read from them after
// every update.
const (
	optimizerScope     = "/optimizers/adamw"
	statusScope        = "/training/status"
	gradNormName       = "grad_norm"
	auxGradNormName    = "aux_router_grad_norm"
	updateFiniteName   = "update_finite"
	learningRateParam  = "/training/learning_rate"
	adamStepName       = "step"
	firstMomentSuffix  = "m"
	secondMomentSuffix = "v"
)

// adamW implements optimizer.Interface and train.OptimizeWithGradients, so GoMLX's Trainer can
// use it with and without gradient accumulation.
type adamW struct {
	config AdamWConfig
}

var _ optimizer.Interface = (*adamW)(nil)

func newAdamW(config AdamWConfig) *adamW { return &adamW{config: config} }

// SetLearningRate makes lr (a scalar node) the learning rate of the updates built in its graph.
// The trainer feeds the scheduled rate as a graph input, so the schedule lives in Go and resumes
// from the step count alone.
func SetLearningRate(lr *Node) {
	model.SetGraphParam(lr.Graph(), learningRateParam, lr)
}

// UpdateGraph implements optimizer.Interface.
func (o *adamW) UpdateGraph(scope *model.Scope, g *Graph, loss *Node) {
	if !loss.Shape().IsScalar() {
		panic(fmt.Sprintf("training: AdamW needs a scalar loss, got shape %s", loss.Shape()))
	}
	grads := scope.BuildTrainableVariablesGradientsGraph(loss)
	o.update(scope, grads, IsFinite(loss))
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients (gradient accumulation).
func (o *adamW) UpdateGraphWithGradients(scope *model.Scope, grads []*Node, _ dtypes.DType) {
	if len(grads) == 0 {
		panic("training: AdamW got no gradients: the model has no trainable variables in this graph")
	}
	o.update(scope, grads, Const(grads[0].Graph(), true))
}

// Clear implements optimizer.Interface: it deletes the moments and the step counter.
func (o *adamW) Clear(scope *model.Scope) error {
	return scope.Store().DeleteVariablesInScope(optimizerScope)
}

// paramGroup is a set of variables that share a learning rate and a clipping norm.
type paramGroup struct {
	variables []*model.Variable
	grads     []*Node
}

func (o *adamW) update(scope *model.Scope, grads []*Node, lossFinite *Node) {
	g := grads[0].Graph()
	lrAny, found := model.GetGraphParam(g, learningRateParam)
	if !found {
		panic("training: AdamW found no learning rate in the graph: call training.SetLearningRate first")
	}
	lr := ConvertDType(lrAny.(*Node), dtypes.Float32)

	// Step 1: split the trainable variables, in the order of their gradients, into the model group
	// and the auxiliary-router group.
	mainGroup, auxGroup := o.splitGroups(scope, g, grads)

	// Step 2: clip each group by its global norm. A non-finite norm, loss or rate marks the step
	// as bad, and a bad step changes no variable.
	mainClip, mainNorm := o.clipFactor(g, mainGroup)
	auxClip, auxNorm := o.clipFactor(g, auxGroup)
	finite := And(lossFinite, And(IsFinite(lr), And(IsFinite(mainNorm), IsFinite(auxNorm))))

	// Step 3: the Adam step counter and bias corrections, shared by both groups.
	store := scope.Store()
	stepVar := store.Scope(optimizerScope).WithInitializer(initializer.Zero).
		VariableWithShape(adamStepName, shapes.Make(dtypes.Float32)).SetTrainable(false)
	step := AddScalar(stepVar.NodeValue(g), 1)
	stepVar.SetNodeValue(Where(finite, step, stepVar.NodeValue(g)))
	correction1 := OneMinus(Pow(Scalar(g, dtypes.Float32, o.config.Beta1), step))
	correction2 := OneMinus(Pow(Scalar(g, dtypes.Float32, o.config.Beta2), step))

	// Step 4: update every variable.
	for i, v := range mainGroup.variables {
		o.applyAdamW(store, v, mainGroup.grads[i], mainClip, lr, correction1, correction2, finite)
	}
	auxLR := MulScalar(lr, o.config.AuxLRScale)
	for i, v := range auxGroup.variables {
		o.applyAdamW(store, v, auxGroup.grads[i], auxClip, auxLR, correction1, correction2, finite)
	}

	// Step 5: the global step (shared with GoMLX's tools) and the diagnostics read after the step.
	globalStepVar := optimizer.GetGlobalStepVar(store)
	globalStep := globalStepVar.NodeValue(g)
	globalStepVar.SetNodeValue(Where(finite, AddScalar(globalStep, 1), globalStep))
	setStatus(store, g, gradNormName, mainNorm)
	setStatus(store, g, auxGradNormName, auxNorm)
	setStatus(store, g, updateFiniteName, ConvertDType(finite, dtypes.Float32))
}

// splitGroups pairs each trainable variable used by g with its gradient, in the order of
// Scope.BuildTrainableVariablesGradientsGraph.
func (o *adamW) splitGroups(scope *model.Scope, g *Graph, grads []*Node) (mainGroup, auxGroup paramGroup) {
	index := 0
	for v := range scope.IterVariables() {
		if !v.Trainable || !v.InUseByGraph(g) {
			continue
		}
		if index >= len(grads) {
			panic(fmt.Sprintf("training: AdamW got %d gradients but found more trainable variables", len(grads)))
		}
		group := &mainGroup
		if o.isAuxRouter(v) {
			group = &auxGroup
		}
		group.variables = append(group.variables, v)
		group.grads = append(group.grads, ConvertDType(grads[index], dtypes.Float32))
		index++
	}
	if index != len(grads) {
		panic(fmt.Sprintf("training: AdamW got %d gradients for %d trainable variables", len(grads), index))
	}
	return mainGroup, auxGroup
}

func (o *adamW) isAuxRouter(v *model.Variable) bool {
	if o.config.AuxRouterScope == "" {
		return false
	}
	for _, element := range strings.Split(v.Path(), "/") {
		if element == o.config.AuxRouterScope {
			return true
		}
	}
	return false
}

// clipFactor returns the factor min(1, ClipNorm/‖g‖) and the global norm ‖g‖ of a group.
// An empty group has norm 0.
func (o *adamW) clipFactor(g *Graph, group paramGroup) (factor, norm *Node) {
	if len(group.grads) == 0 {
		return Scalar(g, dtypes.Float32, 1), Scalar(g, dtypes.Float32, 0)
	}
	sumSquares := Scalar(g, dtypes.Float32, 0)
	for _, grad := range group.grads {
		sumSquares = Add(sumSquares, ReduceAllSum(Square(grad)))
	}
	norm = Sqrt(sumSquares)
	if o.config.ClipNorm <= 0 {
		return Scalar(g, dtypes.Float32, 1), norm
	}
	factor = Min(Scalar(g, dtypes.Float32, 1), Div(Scalar(g, dtypes.Float32, o.config.ClipNorm), AddScalar(norm, 1e-6)))
	return factor, norm
}

// applyAdamW updates one variable and its moments:
//
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//	θ ← θ − lr·( m̂/(√v̂ + ε) + λ·θ )   with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
//
// where λ is 0 for variables excluded from weight decay. Nothing changes when finite is false.
func (o *adamW) applyAdamW(store *model.Store, v *model.Variable, grad, clip, lr, correction1, correction2, finite *Node) {
	g := grad.Graph()
	grad = Mul(grad, clip)
	m1Var, m2Var := o.moments(store, v)
	m1 := Add(MulScalar(m1Var.NodeValue(g), o.config.Beta1), MulScalar(grad, 1-o.config.Beta1))
	m2 := Add(MulScalar(m2Var.NodeValue(g), o.config.Beta2), MulScalar(Square(grad), 1-o.config.Beta2))
	direction := Div(Div(m1, correction1), AddScalar(Sqrt(Div(m2, correction2)), o.config.Epsilon))

	value := v.NodeValue(g)
	value32 := ConvertDType(value, dtypes.Float32)
	if o.decays(v) {
		direction = Add(direction, MulScalar(value32, o.config.WeightDecay))
	}
	updated := ConvertDType(Sub(value32, Mul(lr, direction)), value.DType())

	v.SetNodeValue(Where(finite, updated, value))
	m1Var.SetNodeValue(Where(finite, m1, m1Var.NodeValue(g)))
	m2Var.SetNodeValue(Where(finite, m2, m2Var.NodeValue(g)))
}

func (o *adamW) decays(v *model.Variable) bool {
	return o.config.WeightDecay > 0 && (o.config.DecayAll || v.Shape().Rank() > 1)
}

// moments returns the float32 first- and second-moment variables of v.
func (o *adamW) moments(store *model.Store, v *model.Variable) (m1, m2 *model.Variable) {
	shape := shapes.Make(dtypes.Float32, v.Shape().Dimensions...)
	momentScope := store.Scope(model.JoinPath(optimizerScope, v.Scope())).WithInitializer(initializer.Zero)
	m1 = momentScope.VariableWithShape(v.Name()+"_"+firstMomentSuffix, shape).SetTrainable(false)
	m2 = momentScope.VariableWithShape(v.Name()+"_"+secondMomentSuffix, shape).SetTrainable(false)
	return m1, m2
}

// setStatus stores a scalar diagnostic of the step in a non-trainable variable.
func setStatus(store *model.Store, g *Graph, name string, value *Node) {
	statusVar := store.Scope(statusScope).WithInitializer(initializer.Zero).
		VariableWithShape(name, shapes.Make(dtypes.Float32)).SetTrainable(false)
	statusVar.SetNodeValue(ConvertDType(value, dtypes.Float32))
}
