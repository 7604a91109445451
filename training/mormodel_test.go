package training

import (
	"github.com/gomlx/gomlx/core/tensors"
	"math"
	"path/filepath"
	"testing"

	"github.com/gomor/gomor/mor"
)

// smallPreset shrinks a tiny preset so that a few steps run in about a second.
func smallPreset(t *testing.T, name string) mor.Config {
	t.Helper()
	cfg, err := mor.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg.VocabSize = tinyVocab
	cfg.DModel, cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.FFNSize = 64, 1, 1, 64, 128
	cfg.MaxSeqLen = 16
	if err := cfg.Validate(); err != nil {
		t.Fatalf("shrunk %s: %v", name, err)
	}
	return cfg
}

func TestMoRPresetsTrainAndEvaluate(t *testing.T) {
	for _, name := range []string{"mor-ec-tiny-r3", "mor-tc-tiny-r3", "recursive-tiny-r3", "vanilla-tiny"} {
		t.Run(name, func(t *testing.T) {
			m := MoRModel{Config: smallPreset(t, name)}
			options := tinyOptions(t, t.TempDir(), 4)
			options.Model = m
			result, err := Train(options)
			if err != nil {
				t.Fatal(err)
			}
			records, err := ReadMetrics(filepath.Join(options.RunDir, "metrics.jsonl"))
			if err != nil || len(records) != 4 {
				t.Fatalf("metrics.jsonl: %d records, err %v; want 4", len(records), err)
			}
			if m.Routed() && len(records[0].AuxLosses) == 0 {
				t.Errorf("routed model logged no auxiliary loss: %+v", records[0])
			}

			rows := syntheticRows(8, 16)
			plan := DefaultEvalPlan(m, m.HasRecursionBlock())
			results, _ := RunEvalPlan(options.Backend, result.Store, m, rows, 4, plan)
			for _, r := range results {
				if r.Error != "" {
					t.Logf("%s routing %s depth %d: %s", name, r.Routing, r.MaxDepth, r.Error)
					continue
				}
				if r.NLL <= 0 || r.NLL > 2*math.Log(tinyVocab) {
					t.Errorf("%s routing %s depth %d: NLL %.4f outside (0, 2·ln V]", name, r.Routing, r.MaxDepth, r.NLL)
				}
				if m.Routed() != (r.DeadTokenRatio != nil) {
					t.Errorf("%s: dead-token ratio present=%v, want %v", name, r.DeadTokenRatio != nil, m.Routed())
				}
			}
		})
	}
}

// TestAuxRouterHasItsOwnGroup trains expert-choice MoR with auxiliary routers and checks that
// they receive gradients (their own AdamW group) while the main routers still train.
func TestAuxRouterHasItsOwnGroup(t *testing.T) {
	cfg := smallPreset(t, "mor-ec-tiny-r3")
	cfg.Router.AuxRouter = true
	options := tinyOptions(t, t.TempDir(), 2)
	options.Model = MoRModel{Config: cfg}
	if _, err := Train(options); err != nil {
		t.Fatal(err)
	}
	records, err := ReadMetrics(filepath.Join(options.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, record := range records {
		if record.AuxRouterGradNorm <= 0 {
			t.Errorf("step %d: auxiliary-router gradient norm %g, want > 0", record.Step, record.AuxRouterGradNorm)
		}
		if _, found := record.AuxLosses[mor.LossAuxRouterBCE]; !found {
			t.Errorf("step %d: no %s in the logged losses %v", record.Step, mor.LossAuxRouterBCE, record.AuxLosses)
		}
		if record.GradNorm <= 0 {
			t.Errorf("step %d: model gradient norm %g, want > 0", record.Step, record.GradNorm)
		}
	}
}

// TestLossFreeBiasFollowsLoads checks the token-choice bias after one step: each depth's bias
// moves by the rate toward balance, b_i = u·sign(mean load − load_i), from the loads the step
// logged.
func TestLossFreeBiasFollowsLoads(t *testing.T) {
	const rate = 0.01
	cfg := smallPreset(t, "mor-tc-tiny-r3")
	cfg.Router.BalanceCoeff = 0
	cfg.Router.LossFreeBiasRate = rate
	if err := cfg.Validate(); err != nil {
		t.Fatalf("loss-free token-choice config: %v", err)
	}
	options := tinyOptions(t, t.TempDir(), 1)
	options.Model = MoRModel{Config: cfg}
	result, err := Train(options)
	if err != nil {
		t.Fatal(err)
	}
	records, err := ReadMetrics(filepath.Join(options.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	loads := records[0].Metrics[mor.MetricTokenLoads]
	if len(loads) != 3 {
		t.Fatalf("logged token loads %v, want 3 entries", loads)
	}
	mean := (loads[0] + loads[1] + loads[2]) / 3

	biasVar := result.Store.GetVariable("/router/token/loss_free_bias")
	if biasVar == nil {
		t.Fatal("no loss-free bias variable at /router/token/loss_free_bias")
	}
	bias := tensors.MustCopyFlatData[float32](biasVar.MustValue())
	for i, load := range loads {
		want := 0.0
		if mean > load {
			want = rate
		} else if mean < load {
			want = -rate
		}
		if math.Abs(float64(bias[i])-want) > 1e-7 {
			t.Errorf("depth %d: bias %g after one step with load %.4f (mean %.4f), want %g", i+1, bias[i], load, mean, want)
		}
	}
}

// TestTinyFLOPsBudgetSteps checks the steps that a FLOPs budget buys for tiny presets against the
// MoR paper's rule computed by hand at N_ctx = 128, D = 256, F = 768. A full layer costs linear
// 2·(4·D² + 3·D·F) = 1,703,936 plus attention 2·D·N_ctx = 65,536 FLOPs per token.
func TestTinyFLOPsBudgetSteps(t *testing.T) {
	const (
		linear    = 1703936.0
		attention = 65536.0
		seqLen    = 128
		perStep   = 16 * seqLen
		budget    = 6e11
	)
	cases := []struct {
		preset    string
		perToken  float64
		wantSteps int
	}{
		// 8 unique layers: 14,155,776 FLOPs/token; 6e11 / (14,155,776 · 2048) = 20.70.
		{"vanilla-tiny", 8 * (linear + attention), 21},
		// 1 + [2 layers × 3 steps] + 1 without routing costs the same as vanilla.
		{"recursive-tiny-r3", 8 * (linear + attention), 21},
		// Capacities 1, 2/3, 1/3: 2 full layers + 2 block layers × (2·linear + 14/9·attention),
		// 10,558,577.8 FLOPs/token; 27.75 steps.
		{"mor-ec-tiny-r3", 2*(linear+attention) + 2*(2*linear+14.0/9*attention), 28},
	}
	for _, c := range cases {
		cfg, err := mor.Preset(c.preset)
		if err != nil {
			t.Fatal(err)
		}
		m := MoRModel{Config: cfg}
		if got := m.ForwardFLOPsPerToken(seqLen); math.Abs(got-c.perToken) > 1 {
			t.Errorf("%s: %.1f forward FLOPs per token, want %.1f by hand", c.preset, got, c.perToken)
		}
		steps, err := Budget{Unit: BudgetFLOPs, Value: budget}.Steps(perStep, m.ForwardFLOPsPerToken(seqLen))
		if err != nil || steps != c.wantSteps {
			t.Errorf("%s: %g FLOPs buy %d steps (err %v), want %d", c.preset, budget, steps, err, c.wantSteps)
		}
	}
}
