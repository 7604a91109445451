package training

import (
	"math"
	"testing"
)

func TestWSDScheduleKnownPoints(t *testing.T) {
	// 100 steps, 5 warm-up, 20 decay: η rises by η/5 per step, holds, then falls by η/20 per step.
	s := Schedule{Kind: WarmupStableDecay, PeakLR: 1e-3, TotalSteps: 100, WarmupSteps: 5, DecayFraction: 0.2}
	cases := []struct {
		step int
		want float64
	}{
		{0, 2e-4}, {4, 1e-3}, {5, 1e-3}, {79, 1e-3}, {80, 1e-3}, {81, 0.95e-3}, {90, 0.5e-3}, {99, 0.05e-3},
	}
	for _, c := range cases {
		if got := s.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("WSD LR(%d) = %g, want %g", c.step, got, c.want)
		}
	}
}

func TestCosineScheduleKnownPoints(t *testing.T) {
	// Warm-up 10 of 110 steps, then cosine from 1 to 0.1 over 100 steps.
	s := Schedule{Kind: Cosine, PeakLR: 1, TotalSteps: 110, WarmupSteps: 10, MinLRRatio: 0.1}
	cases := []struct {
		step int
		want float64
	}{
		{0, 0.1}, {9, 1}, {10, 1}, {60, 0.55}, {110, 0.1},
	}
	for _, c := range cases {
		if got := s.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("cosine LR(%d) = %g, want %g", c.step, got, c.want)
		}
	}
}

func TestScheduleRejectsBadValues(t *testing.T) {
	bad := []Schedule{
		{Kind: "linear", TotalSteps: 10},
		{Kind: Cosine, TotalSteps: 0},
		{Kind: Cosine, TotalSteps: 10, WarmupSteps: 11},
		{Kind: WarmupStableDecay, TotalSteps: 10, DecayFraction: 1.5},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v) returned no error", s)
		}
	}
}
