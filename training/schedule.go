package training

import (
	"fmt"
	"math"
)

// ScheduleKind names a learning-rate schedule.
type ScheduleKind string

const (
	// WarmupStableDecay is the trapezoid schedule: a linear warm-up from 0 to the peak, a constant
	// phase, then a linear decay to 0 over the last DecayFraction of the steps. The MoR paper's
	// main and isoFLOP runs use it with 20% decay.
	WarmupStableDecay ScheduleKind = "wsd"
	// Cosine is a linear warm-up followed by cosine annealing from the peak to MinLRRatio·peak.
	Cosine ScheduleKind = "cosine"
	// Constant is a linear warm-up followed by the peak learning rate until the end.
	Constant ScheduleKind = "constant"
)

// Schedule maps an optimiser step to a learning rate.
type Schedule struct {
	Kind        ScheduleKind
	PeakLR      float64
	TotalSteps  int
	WarmupSteps int

	// DecayFraction is the fraction of TotalSteps over which WarmupStableDecay decays to 0.
	DecayFraction float64

	// MinLRRatio is the final learning rate of Cosine as a fraction of PeakLR.
	MinLRRatio float64
}

// Validate returns an error naming the first invalid field and the fix.
func (s Schedule) Validate() error {
	switch s.Kind {
	case WarmupStableDecay, Cosine, Constant:
	default:
		return fmt.Errorf("invalid schedule %q: use %q, %q or %q", s.Kind, WarmupStableDecay, Cosine, Constant)
	}
	if s.TotalSteps < 1 {
		return fmt.Errorf("invalid schedule length %d steps: the budget must give at least 1 step", s.TotalSteps)
	}
	if s.WarmupSteps < 0 || s.WarmupSteps > s.TotalSteps {
		return fmt.Errorf("invalid warm-up of %d steps: use 0..%d (the total number of steps)", s.WarmupSteps, s.TotalSteps)
	}
	if s.DecayFraction < 0 || s.DecayFraction > 1 {
		return fmt.Errorf("invalid decay fraction %g: use a value in [0, 1]", s.DecayFraction)
	}
	if s.MinLRRatio < 0 || s.MinLRRatio > 1 {
		return fmt.Errorf("invalid minimum learning-rate ratio %g: use a value in [0, 1]", s.MinLRRatio)
	}
	return nil
}

// DecaySteps returns the number of steps of the WarmupStableDecay cool-down.
func (s Schedule) DecaySteps() int {
	return int(math.Round(s.DecayFraction * float64(s.TotalSteps)))
}

// LR returns the learning rate used by the update of 0-based step t.
//
// Warm-up: η(t) = η_max·(t+1)/w for t < w, so the first update does not use a zero rate.
// WarmupStableDecay then holds η_max until p = T − d and decays as η_max·(T − t)/d for t ≥ p,
// which reaches 0 only after the last update. Cosine anneals from η_max at t = w to
// MinLRRatio·η_max at t = T.
func (s Schedule) LR(t int) float64 {
	if t < s.WarmupSteps {
		return s.PeakLR * float64(t+1) / float64(s.WarmupSteps)
	}
	switch s.Kind {
	case WarmupStableDecay:
		decay := s.DecaySteps()
		decayStart := s.TotalSteps - decay
		if decay == 0 || t < decayStart {
			return s.PeakLR
		}
		return s.PeakLR * float64(s.TotalSteps-t) / float64(decay)
	case Cosine:
		span := s.TotalSteps - s.WarmupSteps
		if span <= 0 {
			return s.PeakLR
		}
		progress := float64(t-s.WarmupSteps) / float64(span)
		minLR := s.MinLRRatio * s.PeakLR
		return minLR + 0.5*(s.PeakLR-minLR)*(1+math.Cos(math.Pi*progress))
	default:
		return s.PeakLR
	}
}
