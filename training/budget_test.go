package training

import (
	"strings"
	"testing"
)

// paperFLOPsPerToken applies the MoR paper's forward-FLOPs rule to the 360M model (D = 960,
// F = 2560, N_ctx = 2048), computed by hand here independently of any model code:
// linear = 2·(4·D² + 3·D·F) = 22,118,400 and attention = 2·D·N_ctx = 3,932,160 per layer.
const (
	linear360M    = 22118400.0
	attention360M = 3932160.0
	kvLinear360M  = 2 * (2*960*960 + 3*960*2560) // K and V projections skipped at steps ≥ 2
)

func TestFLOPsBudgetMatchesPaperSteps(t *testing.T) {
	const tokensPerStep = 1024 * 2048
	budget := Budget{Unit: BudgetFLOPs, Value: 16.5e18}
	cases := []struct {
		name      string
		flops     float64
		wantSteps int
	}{
		// 32 unique layers.
		{"vanilla", 32 * (linear360M + attention360M), 9438},
		// 1 + [15-layer block, capacities 1, 1/2] + 1.
		{"MoR-2", (2+15*(1+0.5))*linear360M + (2+15*(1+0.25))*attention360M, 12619},
		// 1 + [10-layer block, capacities 1, 2/3, 1/3] + 1; the released config has 14161.
		{"MoR-3", 22*linear360M + (2+10*(1+4.0/9+1.0/9))*attention360M, 14160},
		// Step 1 computes K and V; steps 2 and 3 reuse them, and attention scales with β_r.
		{"MoR-3 KV sharing", 12*linear360M + 10*kvLinear360M + (2+10*(1+2.0/3+1.0/3))*attention360M, 14672},
	}
	for _, c := range cases {
		got, err := budget.Steps(tokensPerStep, c.flops)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.wantSteps {
			t.Errorf("%s: %s at %.6g FLOPs/token gives %d steps, want %d", c.name, budget, c.flops, got, c.wantSteps)
		}
	}
}

func TestTokenAndStepBudgets(t *testing.T) {
	steps, err := Budget{Unit: BudgetTokens, Value: 2e6}.Steps(16*128, 0)
	if err != nil || steps != 977 { // 2e6 / 2048 = 976.56
		t.Errorf("2e6 tokens at 2048 tokens/step = %d steps (err %v), want 977", steps, err)
	}
	steps, err = Budget{Unit: BudgetSteps, Value: 300}.Steps(2048, 1e6)
	if err != nil || steps != 300 {
		t.Errorf("300 steps budget = %d steps (err %v), want 300", steps, err)
	}
}

func TestParseBudget(t *testing.T) {
	cases := map[string]Budget{
		"300steps":    {BudgetSteps, 300},
		"2e6tokens":   {BudgetTokens, 2e6},
		"1.5e13FLOPs": {BudgetFLOPs, 1.5e13},
		" 10 steps ":  {BudgetSteps, 10},
	}
	for text, want := range cases {
		got, err := ParseBudget(text)
		if err != nil || got != want {
			t.Errorf("ParseBudget(%q) = %+v, %v; want %+v", text, got, err, want)
		}
	}
}

func TestParseBudgetErrorsNameValue(t *testing.T) {
	for _, text := range []string{"300", "-5steps", "abcflops", "1e3 parsecs", "0tokens"} {
		_, err := ParseBudget(text)
		if err == nil {
			t.Errorf("ParseBudget(%q) returned no error", text)
			continue
		}
		if !strings.Contains(err.Error(), text) {
			t.Errorf("error for %q does not name the value: %v", text, err)
		}
	}
}

func TestBudgetBelowOneStep(t *testing.T) {
	_, err := Budget{Unit: BudgetTokens, Value: 100}.Steps(2048, 0)
	if err == nil || !strings.Contains(err.Error(), "less than one step") {
		t.Errorf("100 tokens at 2048 tokens/step: got %v, want a less-than-one-step error", err)
	}
}
