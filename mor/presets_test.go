package mor

// Reference values come from the Mixture-of-Recursions paper (Bae et al.
// 2025, arXiv 2507.10524): its model-size, main-result and isoFLOP tables and
// the step counts of its released training configs.

import (
	"slices"
	"strings"
	"testing"

	"github.com/gomor/gomor/routers"
)

func TestPresetNamesAllValid(t *testing.T) {
	names := PresetNames()
	if len(names) == 0 {
		t.Fatal("PresetNames() is empty")
	}
	for _, name := range names {
		c, err := Preset(name)
		if err != nil {
			t.Errorf("Preset(%q): %v", name, err)
			continue
		}
		if c.Name != name {
			t.Errorf("Preset(%q).Name = %q, want the listed name", name, c.Name)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Preset(%q).Validate(): %v", name, err)
		}
	}
}

func TestPresetNamesIncludeCommonNames(t *testing.T) {
	names := PresetNames()
	for _, want := range []string{"vanilla-360m", "recursive-360m-r3", "mor-ec-360m-r3", "mor-tc-360m-r3", "mor-ec-360m-r3-kvshare", "vanilla-tiny", "mor-ec-tiny-r3", "mor-ec-1.7b-r2"} {
		if !slices.Contains(names, want) {
			t.Errorf("PresetNames() lacks %q", want)
		}
	}
}

// TestPresetScalesMatchPaperTable checks the dimensions of the vanilla models
// against the MoR paper's table of model sizes (SmolLM configurations).
func TestPresetScalesMatchPaperTable(t *testing.T) {
	cases := []struct {
		name                                                string
		layers, dModel, heads, kvHeads, headDim, ffn, vocab int
	}{
		{"vanilla-135m", 30, 576, 9, 3, 64, 1536, 49152},
		{"vanilla-360m", 32, 960, 15, 5, 64, 2560, 49152},
		{"vanilla-730m", 26, 1536, 24, 8, 64, 4096, 49152},
		{"vanilla-1.7b", 24, 2048, 32, 32, 64, 8192, 49152},
		{"vanilla-tiny", 8, 256, 4, 2, 64, 768, TinyVocabSize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustPreset(t, tc.name)
			got := []int{c.NumLayers, c.DModel, c.NumHeads, c.NumKVHeads, c.HeadDim, c.FFNSize, c.VocabSize}
			want := []int{tc.layers, tc.dModel, tc.heads, tc.kvHeads, tc.headDim, tc.ffn, tc.vocab}
			if !slices.Equal(got, want) {
				t.Errorf("[layers d_model heads kv_heads head_dim ffn vocab] = %v, want %v", got, want)
			}
			if c.Sharing != NoSharing || c.NumRecursions != 1 || c.Router != nil {
				t.Errorf("sharing %q, N_r %d, router %v: want a vanilla model", c.Sharing, c.NumRecursions, c.Router)
			}
		})
	}
}

func TestPresetCommonHyperParameters(t *testing.T) {
	for _, name := range []string{"vanilla-135m", "mor-ec-360m-r3", "mor-tc-1.7b-r2"} {
		c := mustPreset(t, name)
		if c.MaxSeqLen != 2048 {
			t.Errorf("%s: max_seq_len = %d, want 2048", name, c.MaxSeqLen)
		}
		if c.RoPETheta != 10000 {
			t.Errorf("%s: rope_theta = %g, want 10000", name, c.RoPETheta)
		}
		if c.NormEpsilon != 1e-5 {
			t.Errorf("%s: norm_epsilon = %g, want 1e-5", name, c.NormEpsilon)
		}
		if c.InitStd != 0.02 {
			t.Errorf("%s: init_std = %g, want 0.02", name, c.InitStd)
		}
		if !c.TiedEmbeddings {
			t.Errorf("%s: tied_embeddings = false, want true", name)
		}
		if !c.ShareNorms {
			t.Errorf("%s: share_norms = false, want true (the paper shares norms)", name)
		}
	}
	if tiny := mustPreset(t, "vanilla-tiny"); tiny.MaxSeqLen != 256 {
		t.Errorf("vanilla-tiny: max_seq_len = %d, want 256", tiny.MaxSeqLen)
	}
}

// TestPresetLayoutsMatchPaper checks the recursive and MoR layouts the paper
// uses, written as first + block + last with the unrolled depth.
func TestPresetLayoutsMatchPaper(t *testing.T) {
	cases := []struct {
		name      string
		blockSize int
		numLayers int
	}{
		{"recursive-135m-r3", 10, 32},
		{"recursive-360m-r2", 15, 32},
		{"recursive-360m-r3", 10, 32},
		{"recursive-360m-r4", 8, 34},
		{"recursive-730m-r3", 8, 26},
		{"recursive-1.7b-r2", 11, 24},
		{"recursive-1.7b-r3", 8, 26},
		{"mor-ec-360m-r3", 10, 32},
		{"mor-tc-135m-r3", 10, 32},
		// The tiny family keeps 8 effective layers: 1+[2 × 3]+1 and 1+[3 × 2]+1.
		{"recursive-tiny-r3", 2, 8},
		{"mor-ec-tiny-r2", 3, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustPreset(t, tc.name)
			if c.Sharing != MiddleCycle {
				t.Errorf("sharing = %q, want %q", c.Sharing, MiddleCycle)
			}
			if c.NumLayers != tc.numLayers {
				t.Errorf("num_layers = %d, want %d", c.NumLayers, tc.numLayers)
			}
			if got := c.BlockSize(); got != tc.blockSize {
				t.Errorf("block size K_b = %d, want %d", got, tc.blockSize)
			}
			if got := c.NumUniqueLayers(); got != tc.blockSize+2 {
				t.Errorf("unique layers = %d, want 1+%d+1", got, tc.blockSize)
			}
		})
	}
}

func TestPresetRouterDefaults(t *testing.T) {
	ec := mustPreset(t, "mor-ec-360m-r3")
	if ec.Router == nil {
		t.Fatal("mor-ec-360m-r3 has no router")
	}
	if ec.Router.Kind != routers.ExpertChoice || ec.Router.Architecture != "linear" || ec.Router.ScoreFunc != "sigmoid" {
		t.Errorf("expert-choice router = %s/%s/%s, want expert-choice/linear/sigmoid", ec.Router.Kind, ec.Router.Architecture, ec.Router.ScoreFunc)
	}
	if ec.Router.Alpha != 0.1 || ec.Router.Temperature != 1 {
		t.Errorf("expert-choice α = %g, T = %g, want 0.1 and 1", ec.Router.Alpha, ec.Router.Temperature)
	}
	if want := []float64{1, 2.0 / 3, 1.0 / 3}; !slices.Equal(StepCapacities(ec), want) {
		t.Errorf("expert-choice capacities = %v, want %v", StepCapacities(ec), want)
	}

	tc := mustPreset(t, "mor-tc-360m-r3")
	if tc.Router == nil {
		t.Fatal("mor-tc-360m-r3 has no router")
	}
	if tc.Router.Kind != routers.TokenChoice || tc.Router.Architecture != "linear" || tc.Router.ScoreFunc != "softmax" {
		t.Errorf("token-choice router = %s/%s/%s, want token-choice/linear/softmax", tc.Router.Kind, tc.Router.Architecture, tc.Router.ScoreFunc)
	}
	if tc.Router.Alpha != 1 {
		t.Errorf("token-choice α = %g, want 1", tc.Router.Alpha)
	}

	if recursive := mustPreset(t, "recursive-360m-r3"); recursive.Router != nil {
		t.Errorf("recursive-360m-r3 has a router %+v, want none", *recursive.Router)
	}
}

func TestPresetKVShareSuffix(t *testing.T) {
	if c := mustPreset(t, "mor-ec-360m-r3-kvshare"); c.KV != SharedKV {
		t.Errorf("mor-ec-360m-r3-kvshare: kv_strategy = %q, want %q", c.KV, SharedKV)
	}
	if c := mustPreset(t, "mor-ec-360m-r3"); c.KV != RecursionWiseKV {
		t.Errorf("mor-ec-360m-r3: kv_strategy = %q, want %q", c.KV, RecursionWiseKV)
	}
}

func TestPresetDefaultRecursions(t *testing.T) {
	short := mustPreset(t, "recursive-360m")
	long := mustPreset(t, "recursive-360m-r3")
	if short.Name != long.Name || short.NumRecursions != 3 || short.NumLayers != long.NumLayers {
		t.Errorf("recursive-360m = %s (N_r %d, N_L %d), want recursive-360m-r3 (N_r 3, N_L %d)",
			short.Name, short.NumRecursions, short.NumLayers, long.NumLayers)
	}
}

func TestPresetVanillaDepthOverride(t *testing.T) {
	c := mustPreset(t, "vanilla-tiny-l4")
	if c.NumLayers != 4 || c.Sharing != NoSharing {
		t.Errorf("vanilla-tiny-l4: num_layers %d, sharing %q, want 4 and none", c.NumLayers, c.Sharing)
	}
}

func TestPresetUnknownNames(t *testing.T) {
	cases := []struct {
		name       string
		wantReason string
	}{
		{"vanilla-999m", `unknown scale "999m"`},
		{"gpt-360m", "family"},
		{"vanilla-360m-r3", "no recursions"},
		{"recursive-360m-r3-kvshare", "mor-ec and mor-tc"},
		{"mor-ec-360m-r1", "N_r ≥ 2"},
		{"mor-ec-tiny-r7", "N_r ≤ 6"},
		{"mor-ec-360m-x3", `unexpected suffix "-x3"`},
		{"", "family"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Preset(tc.name)
			if err == nil {
				t.Fatalf("Preset(%q) succeeded, want an error", tc.name)
			}
			message := err.Error()
			if !strings.Contains(message, tc.wantReason) {
				t.Errorf("error %q does not give the reason %q", message, tc.wantReason)
			}
			if !strings.Contains(message, "mor-ec-360m-r3") || !strings.Contains(message, "vanilla-tiny") {
				t.Errorf("error %q does not list the valid names", message)
			}
		})
	}
}

func TestTinyPresetsUseTinyVocabulary(t *testing.T) {
	for _, name := range []string{"vanilla-tiny", "recursive-tiny-r3", "mor-ec-tiny-r3", "mor-tc-tiny-r2"} {
		if c := mustPreset(t, name); c.VocabSize != TinyVocabSize {
			t.Errorf("%s: vocab_size = %d, want TinyVocabSize = %d", name, c.VocabSize, TinyVocabSize)
		}
	}
}

func mustPreset(t *testing.T, name string) Config {
	t.Helper()
	c, err := Preset(name)
	if err != nil {
		t.Fatalf("Preset(%q): %v", name, err)
	}
	return c
}
