package analysis

import (
	"math"
)

// MaxVio returns the maximal load violation (max_i load_i − mean load) / mean
// load of the loads of the N_r depths of token-choice routing (counts or
// fractions). It is 0 for a perfectly balanced router and N_r − 1 when every
// token goes to one depth. It is NaN for empty or all-zero loads.
func MaxVio(loads []float64) float64 {
	if len(loads) == 0 {
		return math.NaN()
	}
	maxLoad, sum := math.Inf(-1), 0.0
	for _, load := range loads {
		maxLoad = math.Max(maxLoad, load)
		sum += load
	}
	meanLoad := sum / float64(len(loads))
	if meanLoad == 0 {
		return math.NaN()
	}
	return (maxLoad - meanLoad) / meanLoad
}

// RoutingEntropy returns the entropy in nats, −Σ_i p̄_i ln p̄_i, of the average
// routing distribution p̄ obtained by normalising loads to sum to 1. Its
// maximum is ln N_r (1.0986 at N_r = 3), reached by a balanced router. It is
// NaN for empty or all-zero loads.
func RoutingEntropy(loads []float64) float64 {
	sum := 0.0
	for _, load := range loads {
		sum += load
	}
	if len(loads) == 0 || sum == 0 {
		return math.NaN()
	}
	entropy := 0.0
	for _, load := range loads {
		if load > 0 {
			p := load / sum
			entropy -= p * math.Log(p)
		}
	}
	return entropy
}

// DepthLoads returns the fraction of tokens whose depth is d, for d = 1..N_r
// (index d−1): the loads of token-choice routing, where each depth is one
// expert. Tokens of depth 0 are not counted.
func DepthLoads(traces []Trace) []float64 {
	h := DepthHistogramOf(traces)
	if len(h.Counts) < 2 {
		return nil
	}
	counted := h.Total - h.Counts[0]
	loads := make([]float64, len(h.Counts)-1)
	for d := 1; d < len(h.Counts); d++ {
		if counted > 0 {
			loads[d-1] = float64(h.Counts[d]) / float64(counted)
		}
	}
	return loads
}
