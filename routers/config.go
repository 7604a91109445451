// Package routers implements the Mixture-of-Recursions routers: expert-choice
// (one router per recursion step, top-k selection with capacities) and
// token-choice (one router that assigns each token a recursion depth), with
// their scoring functions, auxiliary losses, load balancing and diagnostics.
package routers

// Kind is the routing family.
type Kind string

const (
	// ExpertChoice gives each recursion step its own router, which selects the
	// top-k_r of the tokens still active at that step.
	ExpertChoice Kind = "expert-choice"
	// TokenChoice uses one router that assigns each token a depth in 1..N_r up front.
	TokenChoice Kind = "token-choice"
)

// Config holds every router option. A field set to zero means zero: defaults
// come from DefaultExpertChoice / DefaultTokenChoice, and JSON is decoded on top
// of those defaults, so a value given as 0 in a file stays 0.
type Config struct {
	Kind Kind `json:"kind"`

	// Architecture is "linear", "mlp" or "wide-mlp".
	Architecture string `json:"architecture"`

	// ScoreFunc is "sigmoid", "tanh" or "none" for expert-choice, and
	// "softmax" or "sigmoid" for token-choice.
	ScoreFunc string `json:"score_func"`

	// Alpha scales the router score into the gate value.
	Alpha float64 `json:"alpha"`

	// Temperature divides the router logits.
	Temperature float64 `json:"temperature"`

	// Capacities are the expert-choice fractions β_r of the sequence length
	// processed at each recursion step. Empty means (N_r−r+1)/N_r.
	Capacities []float64 `json:"capacities,omitempty"`
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
