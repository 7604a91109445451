package training

import (
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
