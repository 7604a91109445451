// Package routers implements the Mixture-of-Recursions routers: expert-choice
// (one router per recursion step, top-k selection with capacities) and
// token-choice (one router that assigns each token a recursion depth), with
// their scoring functions, auxiliary losses, load balancing and diagnostics.
//
// "The paper" below is Bae et al., "Mixture-of-Recursions: Learning Dynamic
// Recursive Depths for Adaptive Token-Level Computation" (arXiv 2507.10524),
// and "the reference code" is its released implementation
// (github.com/raymin0223/mixture_of_recursions). Where the two differ, this
// package follows the code.
//
// Router variables live under two scopes below the model's root scope:
// MainScopeName holds the routers that drive the forward pass, and
// AuxScopeName holds the auxiliary routers. The auxiliary routers read a
// stop-gradient copy of the hidden state and are trained only by the
// "aux_router_bce" loss, so the training loop gives the variables under
// AuxScopeName their own optimiser and leaves them out of the main one.
package routers

import (
	"encoding/json"
	"fmt"
)

// Kind is the routing family.
type Kind string

const (
	// ExpertChoice gives each recursion step its own router, which selects the
	// top-k_r of the tokens still active at that step.
	ExpertChoice Kind = "expert-choice"
	// TokenChoice uses one router that assigns each token a depth in 1..N_r up front.
	TokenChoice Kind = "token-choice"
)

// Router architectures.
const (
	// Linear is a D→outputs projection without bias.
	Linear = "linear"
	// MLP is Linear(D→2D), GELU, Linear(2D→outputs), all without bias.
	MLP = "mlp"
	// WideMLP is accepted for configs that name it, and builds the same network
	// as MLP. The paper's text describes a 4× wider hidden layer, but the
	// released reference code defines the wide router with the same 2D hidden
	// layer as MLP. gomor follows the code.
	WideMLP = "wide-mlp"
)

// Score functions.
const (
	Sigmoid = "sigmoid"
	Tanh    = "tanh"
	// NoScore uses the raw router logit as the score. The reference ablation
	// diverged (NaN loss) with it, so it exists to reproduce that row.
	NoScore = "none"
	Softmax = "softmax"
)

// Config holds every router option. A field set to zero means zero: defaults
// come from DefaultExpertChoice / DefaultTokenChoice, and JSON is decoded on top
// of those defaults, so a value given as 0 in a file stays 0.
type Config struct {
	Kind Kind `json:"kind"`

	// Architecture is "linear", "mlp" or "wide-mlp" (the same network as "mlp").
	Architecture string `json:"architecture"`

	// ScoreFunc is "sigmoid", "tanh" or "none" for expert-choice, and
	// "softmax" or "sigmoid" for token-choice.
	ScoreFunc string `json:"score_func"`

	// Alpha scales the router score into the gate value.
	Alpha float64 `json:"alpha"`

	// Temperature divides the router logits. It must be positive.
	Temperature float64 `json:"temperature"`

	// Capacities are the expert-choice fractions β_r of the sequence length
	// processed at each recursion step. Empty means (N_r−r+1)/N_r.
	Capacities []float64 `json:"capacities,omitempty"`

	// BCECoeff weights the expert-choice auxiliary loss: the binary
	// cross-entropy between each candidate's router logit and whether top-k
	// selected it, averaged over the step's candidates and summed over steps.
	BCECoeff float64 `json:"bce_coeff"`

	// BCEIncludeFirst adds step 1 to the BCE sum. With capacity 1 at step 1
	// its targets are all ones.
	BCEIncludeFirst bool `json:"bce_include_first"`

	// AuxRouter adds, per expert-choice step, a second router of the same
	// architecture on stop-gradient inputs, trained with the same BCE targets.
	// It never changes the forward pass; causal routing can threshold its score.
	AuxRouter bool `json:"aux_router"`

	// ZLossCoeff weights the router z-loss: mean(z²) per step summed over steps
	// for expert-choice, mean((logsumexp_i z_i)²) for token-choice.
	ZLossCoeff float64 `json:"z_loss_coeff"`

	// CapacityWarmupSteps anneals each expert-choice capacity from 1 down to
	// β_r with a cosine over this many training steps; 0 disables it.
	CapacityWarmupSteps int `json:"capacity_warmup_steps"`

	// RandomRouter replaces the router scores by uniform random numbers in
	// [0, 1): the random-routing ablation. No router variables are created.
	RandomRouter bool `json:"random_router"`

	// BalanceCoeff weights the token-choice balancing loss Σ_i f_i·P_i.
	BalanceCoeff float64 `json:"balance_coeff"`

	// LossFreeBiasRate is u in the loss-free balancing update
	// b_i ← b_i + u·sign(mean load − load_i); 0 disables the bias.
	LossFreeBiasRate float64 `json:"loss_free_bias_rate"`

	// BalanceWarmupSteps forces every token to the maximum depth, with the
	// loss-free bias ignored, for this many training steps; 0 disables it.
	BalanceWarmupSteps int `json:"balance_warmup_steps"`
}

// DefaultExpertChoice returns the paper's final expert-choice recipe: a linear
// router per step, sigmoid score, α = 0.1, temperature 1, default capacities,
// BCE auxiliary loss with coefficient 0.001 including step 1, no auxiliary
// router, no z-loss, no capacity warm-up.
func DefaultExpertChoice() Config {
	return Config{
		Kind:            ExpertChoice,
		Architecture:    Linear,
		ScoreFunc:       Sigmoid,
		Alpha:           0.1,
		Temperature:     1.0,
		BCECoeff:        0.001,
		BCEIncludeFirst: true,
	}
}

// DefaultTokenChoice returns the released token-choice recipe: a linear router
// over N_r depths, softmax score, α = 1, temperature 1, balancing loss with
// coefficient 0.1, z-loss with coefficient 1e-5, no loss-free bias, no warm-up.
// The z-loss coefficient follows the reference code's released config,
// while the paper's table caption says 1e-3.
func DefaultTokenChoice() Config {
	return Config{
		Kind:         TokenChoice,
		Architecture: Linear,
		ScoreFunc:    Softmax,
		Alpha:        1.0,
		Temperature:  1.0,
		BalanceCoeff: 0.1,
		ZLossCoeff:   1e-5,
	}
}

// DefaultCapacities returns β_r = (N_r−r+1)/N_r for r = 1..N_r.
func DefaultCapacities(numRecursions int) []float64 {
	capacities := make([]float64, numRecursions)
	for i := range capacities {
		capacities[i] = float64(numRecursions-i) / float64(numRecursions)
	}
	return capacities
}

// EffectiveCapacities returns the configured capacities, or the default schedule when none are set.
func (c Config) EffectiveCapacities(numRecursions int) []float64 {
	if len(c.Capacities) == 0 {
		return DefaultCapacities(numRecursions)
	}
	return c.Capacities
}

// Validate checks the config for a model with numRecursions recursion steps.
// Each error names the field, the value and the fix.
func (c Config) Validate(numRecursions int) error {
	if numRecursions < 1 {
		return fmt.Errorf("routers: number of recursions is %d, but routing needs at least 1 recursion step", numRecursions)
	}
	checks := []func() error{
		c.validateKind,
		c.validateArchitecture,
		c.validateScoreFunc,
		c.validateScalars,
		func() error { return c.validateCapacities(numRecursions) },
		c.validateKindSpecificOptions,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) validateKind() error {
	switch c.Kind {
	case ExpertChoice, TokenChoice:
		return nil
	}
	return fmt.Errorf("routers: invalid kind %q: use %q or %q", c.Kind, ExpertChoice, TokenChoice)
}

func (c Config) validateArchitecture() error {
	switch c.Architecture {
	case Linear, MLP, WideMLP:
		return nil
	}
	return fmt.Errorf("routers: invalid architecture %q: use %q, %q or %q", c.Architecture, Linear, MLP, WideMLP)
}

func (c Config) validateScoreFunc() error {
	if c.Kind == ExpertChoice {
		switch c.ScoreFunc {
		case Sigmoid, Tanh, NoScore:
			return nil
		}
		return fmt.Errorf("routers: invalid score_func %q for expert-choice: use %q, %q or %q",
			c.ScoreFunc, Sigmoid, Tanh, NoScore)
	}
	switch c.ScoreFunc {
	case Softmax, Sigmoid:
		return nil
	}
	return fmt.Errorf("routers: invalid score_func %q for token-choice: use %q or %q", c.ScoreFunc, Softmax, Sigmoid)
}

func (c Config) validateScalars() error {
	if c.Temperature <= 0 {
		return fmt.Errorf("routers: temperature is %g, but it divides the router logits: set a positive value (1.0 is the paper's)", c.Temperature)
	}
	nonNegative := []struct {
		name  string
		value float64
	}{
		{"alpha", c.Alpha},
		{"bce_coeff", c.BCECoeff},
		{"z_loss_coeff", c.ZLossCoeff},
		{"balance_coeff", c.BalanceCoeff},
		{"loss_free_bias_rate", c.LossFreeBiasRate},
		{"capacity_warmup_steps", float64(c.CapacityWarmupSteps)},
		{"balance_warmup_steps", float64(c.BalanceWarmupSteps)},
	}
	for _, option := range nonNegative {
		if option.value < 0 {
			return fmt.Errorf("routers: %s is %g: set a value ≥ 0 (0 disables it)", option.name, option.value)
		}
	}
	return nil
}

// validateCapacities checks the expert-choice capacity schedule: one value per
// recursion step, each in (0, 1], non-increasing (a token can only be selected
// among the tokens of the previous step).
func (c Config) validateCapacities(numRecursions int) error {
	if len(c.Capacities) == 0 {
		return nil
	}
	if c.Kind == TokenChoice {
		return fmt.Errorf("routers: capacities %v are set for token-choice, which has no capacities: remove the field", c.Capacities)
	}
	if len(c.Capacities) != numRecursions {
		return fmt.Errorf("routers: capacities has %d values %v, but the model has %d recursion steps: give one capacity per step, or none for the default (N_r−r+1)/N_r",
			len(c.Capacities), c.Capacities, numRecursions)
	}
	for r, beta := range c.Capacities {
		if beta <= 0 || beta > 1 {
			return fmt.Errorf("routers: capacities[%d] (step %d) is %g: each capacity is a fraction of the sequence length in (0, 1]",
				r, r+1, beta)
		}
		if r > 0 && beta > c.Capacities[r-1] {
			return fmt.Errorf("routers: capacities[%d] = %g is larger than capacities[%d] = %g: capacities must not increase, because step r selects among the tokens of step r−1",
				r, beta, r-1, c.Capacities[r-1])
		}
	}
	return nil
}

// validateKindSpecificOptions rejects options that the other routing family
// uses, so that a config never silently ignores a setting.
func (c Config) validateKindSpecificOptions() error {
	if c.Kind == ExpertChoice {
		switch {
		case c.BalanceCoeff != 0:
			return fmt.Errorf("routers: balance_coeff is %g, but expert-choice has fixed loads: set it to 0 or use token-choice", c.BalanceCoeff)
		case c.LossFreeBiasRate != 0:
			return fmt.Errorf("routers: loss_free_bias_rate is %g, but expert-choice has fixed loads: set it to 0 or use token-choice", c.LossFreeBiasRate)
		case c.BalanceWarmupSteps != 0:
			return fmt.Errorf("routers: balance_warmup_steps is %d, but it applies only to token-choice: set it to 0", c.BalanceWarmupSteps)
		}
		return nil
	}
	switch {
	case c.BCECoeff != 0:
		return fmt.Errorf("routers: bce_coeff is %g, but the BCE auxiliary loss applies only to expert-choice: set it to 0", c.BCECoeff)
	case c.AuxRouter:
		return fmt.Errorf("routers: aux_router is set, but the auxiliary router applies only to expert-choice: set it to false")
	case c.CapacityWarmupSteps != 0:
		return fmt.Errorf("routers: capacity_warmup_steps is %d, but capacities apply only to expert-choice: set it to 0", c.CapacityWarmupSteps)
	}
	return nil
}

// ParseJSON decodes a router config from JSON on top of the defaults of its
// kind. It reads "kind" first, which defaults to expert-choice. A field given
// as 0 or false stays 0 or false, and a missing field keeps its default.
// ParseJSON does not validate, so call Validate with the number of recursions.
func ParseJSON(data []byte) (Config, error) {
	var header struct {
		Kind Kind `json:"kind"`
	}
	if err := json.Unmarshal(data, &header); err != nil {
		return Config{}, fmt.Errorf("routers: decoding the router config failed: %w", err)
	}

	config := DefaultExpertChoice()
	if header.Kind == TokenChoice {
		config = DefaultTokenChoice()
	}
	if err := json.Unmarshal(data, &config); err != nil {
		return Config{}, fmt.Errorf("routers: decoding the router config failed: %w", err)
	}
	return config, nil
}
