package training

import (
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/routers"
)

// MoRModel adapts a mor.Config (vanilla, recursive or MoR) to the trainer's Model interface.
type MoRModel struct {
	Config mor.Config
}

var _ Model = MoRModel{}

// Description implements Model: the config, as checkpoints and results record it.
func (m MoRModel) Description() any { return m.Config }

// ForwardFLOPsPerToken implements Model with mor.ForwardFLOPsPerToken at context seqLen.
func (m MoRModel) ForwardFLOPsPerToken(seqLen int) float64 {
	return mor.ForwardFLOPsPerToken(m.Config, mor.FLOPsOptions{ContextLength: seqLen})
}

// NumRecursions implements Model.
func (m MoRModel) NumRecursions() int { return max(m.Config.NumRecursions, 1) }

// Routed implements Model.
func (m MoRModel) Routed() bool { return m.Config.Router != nil }

// HasRecursionBlock reports whether the model can run its shared block more or fewer times than
// N_r: recursive and MoR models with Cycle or Middle-Cycle sharing.
func (m MoRModel) HasRecursionBlock() bool { return len(m.Config.Layout().Block) > 0 }

// Forward implements Model. The auxiliary routers' BCE is added to the weighted auxiliary loss
// unweighted: the auxiliary routers read a stop-gradient copy of the hidden state, so that term
// reaches only their variables, which AdamW updates as a separate group (AuxRouterScope).
func (m MoRModel) Forward(scope *model.Scope, tokens *graph.Node, options ForwardOptions) *Output {
	opts := mor.ForwardOptions{
		Training:   options.Training,
		Routing:    mor.RoutingMode(options.Routing),
		MaxDepth:   options.MaxDepth,
		GlobalStep: options.GlobalStep,
	}
	if m.Config.Router != nil {
		opts.CausalScore = mor.CausalScoreRouter
		opts.Threshold = m.Config.Router.ScoreThreshold()
	}
	out := mor.Forward(scope, m.Config, tokens, opts)

	result := &Output{Logits: out.Logits, Losses: out.Losses, Metrics: out.Metrics, WeightedAuxLoss: out.WeightedAuxLoss}
	if auxBCE, found := out.Losses[mor.LossAuxRouterBCE]; found && options.Training {
		if result.WeightedAuxLoss == nil {
			result.WeightedAuxLoss = auxBCE
		} else {
			result.WeightedAuxLoss = graph.Add(result.WeightedAuxLoss, graph.ConvertDType(auxBCE, result.WeightedAuxLoss.DType()))
		}
	}
	if len(out.Steps) > 0 && m.Config.Router != nil {
		result.LastStepActive = out.Steps[len(out.Steps)-1].Active
	}
	return result
}

// AfterOptimizerStep implements StepHook: the token-choice loss-free bias update, with the loads
// averaged over the step's micro-batches, after the balancing warm-up.
func (m MoRModel) AfterOptimizerStep(store *model.Store, step int, metrics map[string][]float64) error {
	router := m.Config.Router
	if router == nil || router.Kind != routers.TokenChoice || router.LossFreeBiasRate == 0 || step < router.BalanceWarmupSteps {
		return nil
	}
	loads, found := metrics[mor.MetricTokenLoads]
	if !found {
		return nil
	}
	return router.UpdateLossFreeBias(store.RootScope(), loads)
}

// StepHook is implemented by models that change state in Go after each optimiser step.
type StepHook interface {
	// AfterOptimizerStep runs after 0-based step has been applied, with that step's metrics.
	AfterOptimizerStep(store *model.Store, step int, metrics map[string][]float64) error
}
