package mor

// Reference values come from the Mixture-of-Recursions paper (Bae et al.
// 2025, arXiv 2507.10524): its model-size, main-result and isoFLOP tables and
// the step counts of its released training configs.

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/internal/testutil"
	"github.com/gomor/gomor/routers"
)

// paperContext is the N_ctx of every FLOPs number in the MoR paper.
const paperContext = 2048

// paperTokensPerStep is the paper's global batch: 1024 sequences × 2048 tokens.
const paperTokensPerStep = 1024 * 2048

// roundTo rounds x to the given number of decimals, as the paper's tables do.
func roundTo(x float64, decimals int) float64 {
	scale := math.Pow(10, float64(decimals))
	return math.Round(x*scale) / scale
}

// TestLayerParamsHandComputed checks one 360M layer against the hand count
// 2·D² (q, o) + 2·D·(5·64) (k, v) + 3·D·F (SwiGLU) + 2·D (norms)
// = 1,843,200 + 614,400 + 7,372,800 + 1,920.
func TestLayerParamsHandComputed(t *testing.T) {
	if got := LayerParams(mustPreset(t, "vanilla-360m")); got != 9_832_320 {
		t.Errorf("LayerParams(360M) = %d, want 9,832,320", got)
	}
	// Tiny: 2·256² + 2·256·128 + 3·256·768 + 2·256.
	if got := LayerParams(mustPreset(t, "vanilla-tiny")); got != 786_944 {
		t.Errorf("LayerParams(tiny) = %d, want 786,944", got)
	}
}

// TestNonEmbeddingParamsMatchPaper checks the paper's "Non-emb params" in
// millions at the precision it prints (Table 6 and the layout table).
func TestNonEmbeddingParamsMatchPaper(t *testing.T) {
	cases := []struct {
		name     string
		millions float64
		decimals int
	}{
		{"vanilla-360m", 314.6, 1},
		{"recursive-360m-r3", 118.0, 1}, // 1+10+1
		{"recursive-360m-r2", 167.1, 1}, // 1+15+1
		{"recursive-360m-r4", 98.3, 1},  // 1+8+1
		{"mor-ec-360m-r3", 118.0, 1},    // routers are not counted
		{"vanilla-135m", 106, 0},
		{"recursive-135m-r3", 42, 0},
		{"vanilla-730m", 654, 0},
		{"recursive-730m-r3", 252, 0},
		{"vanilla-1.7b", 1610, -1}, // 1.61B
		{"recursive-1.7b-r2", 870, -1},
		{"recursive-1.7b-r3", 670, -1},
		{"vanilla-tiny", 6.3, 1}, // the tiny family's ≈ 6.3M and ≈ 3.1M
		{"recursive-tiny-r3", 3.1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := float64(NonEmbeddingParams(mustPreset(t, tc.name))) / 1e6
			if roundTo(got, tc.decimals) != tc.millions {
				t.Errorf("NonEmbeddingParams = %.3fM, want %gM at the paper's precision", got, tc.millions)
			}
		})
	}
}

// TestNonEmbeddingParamsSharingAblation checks the unique-parameter counts of
// the sharing ablation at 135M (N_r = 2 and 3) and 360M (N_r = 3).
func TestNonEmbeddingParamsSharingAblation(t *testing.T) {
	cases := []struct {
		base     string
		scheme   SharingScheme
		layers   int
		r        int
		millions float64
	}{
		{"vanilla-135m", Cycle, 30, 2, 53},
		{"vanilla-135m", Sequence, 30, 2, 53},
		{"vanilla-135m", MiddleCycle, 30, 2, 57},
		{"vanilla-135m", MiddleSequence, 30, 2, 57},
		{"vanilla-135m", Cycle, 30, 3, 35},
		{"vanilla-135m", MiddleCycle, 29, 3, 39},
		{"vanilla-360m", Cycle, 30, 3, 98},
		{"vanilla-360m", MiddleCycle, 32, 3, 118},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s N_L=%d N_r=%d", tc.base, tc.scheme, tc.layers, tc.r), func(t *testing.T) {
			c := mustPreset(t, tc.base)
			c.Sharing, c.NumLayers, c.NumRecursions = tc.scheme, tc.layers, tc.r
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			got := float64(NonEmbeddingParams(c)) / 1e6
			if math.Round(got) != tc.millions {
				t.Errorf("NonEmbeddingParams = %.2fM, want %gM", got, tc.millions)
			}
		})
	}
}

// TestRecursiveParamsEqualUniqueLayers checks that a recursive model has
// exactly the parameters of a vanilla model with its unique layers: K_b + 2
// for Middle-Cycle, K_b for Cycle.
func TestRecursiveParamsEqualUniqueLayers(t *testing.T) {
	cases := []struct {
		name         string
		scheme       SharingScheme
		numLayers    int
		uniqueLayers int
	}{
		{"recursive-360m-r3", MiddleCycle, 32, 12},
		{"recursive-360m-r4", MiddleCycle, 34, 10},
		{"recursive-tiny-r2", MiddleCycle, 8, 5},
		{"recursive-tiny-r3", Cycle, 9, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recursive := mustPreset(t, tc.name)
			recursive.Sharing, recursive.NumLayers = tc.scheme, tc.numLayers

			vanilla := recursive
			vanilla.Sharing, vanilla.NumRecursions, vanilla.NumLayers = NoSharing, 1, tc.uniqueLayers

			if got, want := NonEmbeddingParams(recursive), NonEmbeddingParams(vanilla); got != want {
				t.Errorf("recursive NonEmbeddingParams = %d, want %d (a vanilla model of %d layers)", got, want, tc.uniqueLayers)
			}
			want := int64(tc.uniqueLayers) * LayerParams(recursive)
			if got := NonEmbeddingParams(recursive); got != want {
				t.Errorf("NonEmbeddingParams = %d, want %d layers × %d = %d", got, tc.uniqueLayers, LayerParams(recursive), want)
			}
		})
	}
}

func TestNonEmbeddingParamsUntiedNorms(t *testing.T) {
	c := mustPreset(t, "recursive-360m-r3")
	shared := NonEmbeddingParams(c)
	c.ShareNorms = false
	// 32 unrolled layers instead of 12 unique ones own two D-sized norm scales each.
	want := shared + (32-12)*2*960
	if got := NonEmbeddingParams(c); got != want {
		t.Errorf("NonEmbeddingParams with untied norms = %d, want %d", got, want)
	}
}

// TestEmbeddingParamsMatchPaper checks V·D: 28.3M, 47.2M, 75.5M and 100.7M.
func TestEmbeddingParamsMatchPaper(t *testing.T) {
	cases := map[string]float64{"vanilla-135m": 28.3, "vanilla-360m": 47.2, "vanilla-730m": 75.5, "vanilla-1.7b": 100.7}
	for name, millions := range cases {
		if got := float64(EmbeddingParams(mustPreset(t, name))) / 1e6; roundTo(got, 1) != millions {
			t.Errorf("%s: EmbeddingParams = %.3fM, want %gM", name, got, millions)
		}
	}

	untied := mustPreset(t, "vanilla-tiny")
	untied.TiedEmbeddings = false
	if got := EmbeddingParams(untied); got != 2*4096*256 {
		t.Errorf("untied EmbeddingParams = %d, want 2·V·D = %d", got, 2*4096*256)
	}
}

func TestRouterParams(t *testing.T) {
	cases := []struct {
		name   string
		base   string
		modify func(r *routers.Config)
		want   int64
	}{
		{"expert-choice linear", "mor-ec-360m-r3", func(r *routers.Config) {}, 3 * 960},
		{"expert-choice with aux routers", "mor-ec-360m-r3", func(r *routers.Config) { r.AuxRouter = true }, 2 * 3 * 960},
		{"expert-choice mlp", "mor-ec-tiny-r3", func(r *routers.Config) { r.Architecture = "mlp" }, 3 * (256*512 + 512)},
		{"expert-choice random", "mor-ec-tiny-r3", func(r *routers.Config) { r.RandomRouter = true }, 0},
		{"token-choice linear", "mor-tc-360m-r3", func(r *routers.Config) {}, 960 * 3},
		{"token-choice wide-mlp", "mor-tc-tiny-r2", func(r *routers.Config) { r.Architecture = "wide-mlp" }, 256*512 + 512*2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustPreset(t, tc.base)
			tc.modify(c.Router)
			if got := RouterParams(c); got != tc.want {
				t.Errorf("RouterParams = %d, want %d", got, tc.want)
			}
		})
	}
	if got := RouterParams(mustPreset(t, "recursive-360m-r3")); got != 0 {
		t.Errorf("RouterParams without a router = %d, want 0", got)
	}
}

func TestCountParamsTotal(t *testing.T) {
	c := mustPreset(t, "mor-ec-tiny-r3")
	counts := CountParams(c)
	// 4 unique layers, the final norm, the 4096 × 256 table and 3 linear routers.
	want := int64(4*786_944) + 256 + 4096*256 + 3*256
	if counts.Total != want {
		t.Errorf("CountParams.Total = %d, want %d", counts.Total, want)
	}
	if counts.FinalNorm != 256 {
		t.Errorf("CountParams.FinalNorm = %d, want 256", counts.FinalNorm)
	}
}

// TestForwardFLOPsMatchPaper checks the per-token forward FLOPs of the
// paper's accounting rule at N_ctx = 2048, in millions. The published values
// are rounded inconsistently in the last digit (553.452M is printed as 553.4M,
// 536.248M as 536.3M), so each gets a tolerance of 0.06M; the token and step
// counts below pin the rule more tightly.
func TestForwardFLOPsMatchPaper(t *testing.T) {
	cases := []struct {
		name      string
		millions  float64
		tolerance float64
	}{
		{"vanilla-360m", 833.6, 0.06},
		{"mor-ec-360m-r3", 555.6, 0.06},
		{"mor-ec-360m-r2", 623.5, 0.06},
		{"mor-ec-360m-r4", 553.4, 0.06},
		{"mor-ec-360m-r3-kvshare", 536.3, 0.06},
		{"mor-tc-360m-r3", 555.6, 0.06}, // token-choice is costed as balanced
		{"vanilla-135m", 309.7, 0.06},
		{"mor-ec-135m-r3", 216.6, 0.06},
		{"vanilla-1.7b", 3420, 5}, // 3.42G
		{"recursive-360m-r3", 833.6, 0.06},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ForwardFLOPsPerToken(mustPreset(t, tc.name), FLOPsOptions{ContextLength: paperContext}) / 1e6
			if math.Abs(got-tc.millions) > tc.tolerance {
				t.Errorf("ForwardFLOPsPerToken = %.3fM, want %gM ± %g", got, tc.millions, tc.tolerance)
			}
		})
	}
}

// TestForwardFLOPsHandComputed checks the 360M MoR-3 sum written out:
// 22 linear-layer equivalents (2 + 10·(1 + 2/3 + 1/3)) of 2·(4D² + 3DF) and
// 2 + 10·(1 + 4/9 + 1/9) attention equivalents of 2·D·2048.
func TestForwardFLOPsHandComputed(t *testing.T) {
	const d, ffn = 960.0, 2560.0
	linear := 2 * (4*d*d + 3*d*ffn)
	attention := 2 * d * 2048
	want := 22*linear + (2+10*(1+4.0/9+1.0/9))*attention

	got := ForwardFLOPsPerToken(mustPreset(t, "mor-ec-360m-r3"), FLOPsOptions{ContextLength: paperContext})
	if math.Abs(got-want) > 1e-6*want {
		t.Errorf("ForwardFLOPsPerToken = %.0f, want %.0f", got, want)
	}
}

func TestForwardFLOPsTinyRatio(t *testing.T) {
	vanilla := ForwardFLOPsPerToken(mustPreset(t, "vanilla-tiny"), FLOPsOptions{})
	mor := ForwardFLOPsPerToken(mustPreset(t, "mor-ec-tiny-r3"), FLOPsOptions{})
	// The tiny-family table gives MoR-E at ≈ 0.74 of vanilla's cost.
	if ratio := mor / vanilla; roundTo(ratio, 2) != 0.74 {
		t.Errorf("MoR/vanilla forward FLOPs = %.4f, want ≈ 0.74", ratio)
	}
}

func TestForwardFLOPsContextDefaultsToMaxSeqLen(t *testing.T) {
	c := mustPreset(t, "mor-ec-tiny-r3")
	if got, want := ForwardFLOPsPerToken(c, FLOPsOptions{}), ForwardFLOPsPerToken(c, FLOPsOptions{ContextLength: 256}); got != want {
		t.Errorf("ForwardFLOPsPerToken with N_ctx unset = %g, want %g (max_seq_len 256)", got, want)
	}
	if got, other := ForwardFLOPsPerToken(c, FLOPsOptions{}), ForwardFLOPsPerToken(c, FLOPsOptions{ContextLength: 512}); got == other {
		t.Errorf("ForwardFLOPsPerToken does not depend on N_ctx: %g at 256 and 512", got)
	}
}

func TestPaperBreakdownKVSharing(t *testing.T) {
	layers := PaperFLOPsBreakdown(mustPreset(t, "mor-ec-360m-r3-kvshare"), FLOPsOptions{ContextLength: paperContext})
	if len(layers) != 32 {
		t.Fatalf("breakdown has %d layers, want 32", len(layers))
	}
	const d, ffn = 960.0, 2560.0

	first := layers[1] // block layer 1 at step 1
	if first.Step != 1 || first.ReusesKV || first.AttentionFactor != 1 {
		t.Errorf("layer 1: step %d, reuses KV %v, attention factor %g; want step 1, false, 1", first.Step, first.ReusesKV, first.AttentionFactor)
	}

	second := layers[11] // block layer 1 at step 2
	if second.Step != 2 || second.UniqueLayer != 1 || !second.ReusesKV {
		t.Errorf("layer 11: step %d, unique %d, reuses KV %v; want step 2, unique 1, true", second.Step, second.UniqueLayer, second.ReusesKV)
	}
	if second.AttentionFactor != 2.0/3 {
		t.Errorf("layer 11 attention factor = %g, want β_2 = 2/3", second.AttentionFactor)
	}
	wantLinear := 2 * (2.0 / 3) * (2*d*d + 3*d*ffn)
	if math.Abs(second.Linear-wantLinear) > 1e-6*wantLinear {
		t.Errorf("layer 11 linear FLOPs = %.0f, want 2·β_2·(2D² + 3DF) = %.0f", second.Linear, wantLinear)
	}

	if last := layers[31]; last.Step != 0 || last.Capacity != 1 || last.UniqueLayer != 11 {
		t.Errorf("layer 31: step %d, capacity %g, unique %d; want 0, 1, 11", last.Step, last.Capacity, last.UniqueLayer)
	}
}

// TestTokensForBudgetMainResults checks the 16.5e18-FLOPs token counts of the
// 360M main results, in billions with two decimals.
func TestTokensForBudgetMainResults(t *testing.T) {
	cases := map[string]float64{
		"vanilla-360m":           19.79,
		"mor-ec-360m-r3":         29.70,
		"mor-ec-360m-r2":         26.46,
		"mor-ec-360m-r4":         29.81,
		"mor-ec-360m-r3-kvshare": 30.77,
		"recursive-360m-r4":      18.63,
		"mor-ec-135m-r3":         76.18,
	}
	for name, billions := range cases {
		got := float64(TokensForBudget(mustPreset(t, name), 16.5e18, paperContext)) / 1e9
		if roundTo(got, 2) != billions {
			t.Errorf("%s: TokensForBudget(16.5e18) = %.4fB, want %.2fB", name, got, billions)
		}
	}
}

// TestTokensForBudgetIsoFLOPTable checks every token count of the isoFLOP
// study (all recursive and MoR models Middle-Cycle with N_r = 3), in
// billions with one decimal.
func TestTokensForBudgetIsoFLOPTable(t *testing.T) {
	budgets := []float64{2e18, 5e18, 16.5e18}
	cases := []struct {
		name   string
		tokens [3]float64
	}{
		{"vanilla-135m", [3]float64{6.5, 16.1, 53.3}},
		{"recursive-135m-r3", [3]float64{6.1, 15.1, 50.0}},
		{"mor-ec-135m-r3", [3]float64{9.2, 23.1, 76.2}},
		{"vanilla-360m", [3]float64{2.4, 6.0, 19.8}},
		{"recursive-360m-r3", [3]float64{2.4, 6.0, 19.8}},
		{"mor-ec-360m-r3", [3]float64{3.6, 9.0, 29.7}},
		{"vanilla-730m", [3]float64{1.2, 3.1, 10.1}},
		{"recursive-730m-r3", [3]float64{1.2, 3.1, 10.1}},
		{"mor-ec-730m-r3", [3]float64{1.8, 4.5, 14.9}},
		{"vanilla-1.7b", [3]float64{0.6, 1.5, 4.8}},
		{"recursive-1.7b-r3", [3]float64{0.5, 1.3, 4.5}},
		{"mor-ec-1.7b-r3", [3]float64{0.8, 2.0, 6.5}},
	}
	for _, tc := range cases {
		c := mustPreset(t, tc.name)
		for i, budget := range budgets {
			got := float64(TokensForBudget(c, budget, paperContext)) / 1e9
			if roundTo(got, 1) != tc.tokens[i] {
				t.Errorf("%s at %.3g FLOPs: %.3fB tokens, want %.1fB", tc.name, budget, got, tc.tokens[i])
			}
		}
	}
}

// TestTokensForBudget1p7B checks the 1.7B runs at 68.5e18 FLOPs whose token
// counts the rule reproduces: vanilla 20B, MoR-2 26B and MoR-3 27B.
func TestTokensForBudget1p7B(t *testing.T) {
	cases := map[string]float64{"vanilla-1.7b": 20, "mor-ec-1.7b-r2": 26, "mor-ec-1.7b-r3": 27}
	for name, billions := range cases {
		got := float64(TokensForBudget(mustPreset(t, name), 68.5e18, paperContext)) / 1e9
		if math.Round(got) != billions {
			t.Errorf("%s: TokensForBudget(68.5e18) = %.3fB, want %gB", name, got, billions)
		}
	}
}

// TestStepsForBudgetReleasedConfigs checks the step counts of the released
// 360M configs at 16.5e18 FLOPs and 1024 × 2048 tokens per step.
func TestStepsForBudgetReleasedConfigs(t *testing.T) {
	cases := map[string]int64{
		"vanilla-360m":           9438,
		"recursive-360m-r3":      9438,
		"recursive-360m-r4":      8883,
		"mor-ec-360m-r2":         12619,
		"mor-ec-360m-r4":         14216,
		"mor-ec-360m-r3-kvshare": 14672,
	}
	for name, steps := range cases {
		if got := StepsForBudget(mustPreset(t, name), 16.5e18, paperTokensPerStep, paperContext); got != steps {
			t.Errorf("%s: StepsForBudget = %d, want %d", name, got, steps)
		}
	}

	// The released MoR-3 config has 14161 steps; the rule gives 14160.01.
	got := StepsForBudget(mustPreset(t, "mor-ec-360m-r3"), 16.5e18, paperTokensPerStep, paperContext)
	if got < 14160 || got > 14161 {
		t.Errorf("mor-ec-360m-r3: StepsForBudget = %d, want within one step of the released 14161", got)
	}
}

// TestExecutedFLOPsVanillaTiny checks the executed count by hand for
// vanilla-tiny at L = 256, per token: projections 8 × (2·2·256·256 +
// 2·2·256·128 + 2·3·256·768) = 12,582,912; attention 8 × 4·256·256 =
// 2,097,152; LM head 2·256·4096 = 2,097,152.
func TestExecutedFLOPsVanillaTiny(t *testing.T) {
	got := ExecutedFLOPsPerToken(mustPreset(t, "vanilla-tiny"), FLOPsOptions{})
	checks := []struct {
		part      string
		got, want float64
	}{
		{"projections", got.Projections, 12_582_912},
		{"attention", got.Attention, 2_097_152},
		{"routers", got.Routers, 0},
		{"LM head", got.LMHead, 2_097_152},
		{"forward", got.Forward, 16_777_216},
		{"training", got.Training, 3 * 16_777_216},
	}
	for _, check := range checks {
		if check.got != check.want {
			t.Errorf("%s = %.0f, want %.0f", check.part, check.got, check.want)
		}
	}
}

// TestExecutedFLOPsMoRTiny checks mor-ec-tiny-r3 at L = 256, where the steps
// process k = 256, 170 and 85 tokens. Per sequence: projections
// (2·256 + 2·(256+170+85)) × 1,572,864; attention 2·4·256·256² +
// 2·4·256·(256² + 170² + 85²); routers 2·256 × (256 + 256 + 170) candidates.
func TestExecutedFLOPsMoRTiny(t *testing.T) {
	got := ExecutedFLOPsPerToken(mustPreset(t, "mor-ec-tiny-r3"), FLOPsOptions{})
	checks := []struct {
		part      string
		got, want float64
	}{
		{"projections", got.Projections, 9_424_896},
		{"attention", got.Attention, 1_337_576},
		{"routers", got.Routers, 1364},
		{"forward", got.Forward, 12_860_988},
	}
	for _, check := range checks {
		if math.Abs(check.got-check.want) > 1e-9*check.want {
			t.Errorf("%s = %.1f, want %.0f", check.part, check.got, check.want)
		}
	}
}

// TestExecutedFLOPsKVSharingTiny checks that steps 2 and 3 skip the K and V
// projections (1,441,792 FLOPs per token instead of 1,572,864) and attend
// over all 256 keys.
func TestExecutedFLOPsKVSharingTiny(t *testing.T) {
	got := ExecutedFLOPsPerToken(mustPreset(t, "mor-ec-tiny-r3-kvshare"), FLOPsOptions{})
	if math.Abs(got.Projections-9_163_776) > 1e-3 {
		t.Errorf("projections = %.1f, want 9,163,776", got.Projections)
	}
	if math.Abs(got.Attention-1_570_816) > 1e-3 {
		t.Errorf("attention = %.1f, want 1,570,816", got.Attention)
	}
}

func TestStepTokenCounts(t *testing.T) {
	cases := []struct {
		name   string
		length int
		want   []int
	}{
		{"mor-ec-360m-r3", 2048, []int{2048, 1365, 682}},
		{"mor-ec-tiny-r3", 256, []int{256, 170, 85}},
		{"mor-tc-tiny-r2", 256, []int{256, 128}},
		{"recursive-tiny-r3", 256, []int{256, 256, 256}},
	}
	for _, tc := range cases {
		got := StepTokenCounts(mustPreset(t, tc.name), tc.length)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: StepTokenCounts(%d) = %v, want %v", tc.name, tc.length, got, tc.want)
		}
	}
}

// TestExecutedFLOPsMaskedPaths checks that token-choice, and expert-choice
// with MaskedPath, run every step on all 256 tokens: the block costs what
// the Recursive baseline's costs, and the routers score all tokens.
func TestExecutedFLOPsMaskedPaths(t *testing.T) {
	recursive := ExecutedFLOPsPerToken(mustPreset(t, "recursive-tiny-r3"), FLOPsOptions{})
	tokenChoice := ExecutedFLOPsPerToken(mustPreset(t, "mor-tc-tiny-r3"), FLOPsOptions{})
	maskedExpert := ExecutedFLOPsPerToken(mustPreset(t, "mor-ec-tiny-r3"), FLOPsOptions{MaskedPath: true})

	// 8 layers × 1,572,864 and 8 × 4·256·256.
	for name, flops := range map[string]ExecutedFLOPs{"recursive": recursive, "token-choice": tokenChoice, "masked expert-choice": maskedExpert} {
		if flops.Projections != 12_582_912 {
			t.Errorf("%s: projections = %.0f, want 12,582,912", name, flops.Projections)
		}
		if flops.Attention != 2_097_152 {
			t.Errorf("%s: attention = %.0f, want 2,097,152", name, flops.Attention)
		}
	}
	// Token-choice: one 256 × 3 linear router per token. Masked expert-choice:
	// three 256 × 1 routers, each on every token.
	if tokenChoice.Routers != 2*256*3 {
		t.Errorf("token-choice routers = %.0f, want %d", tokenChoice.Routers, 2*256*3)
	}
	if maskedExpert.Routers != 3*2*256 {
		t.Errorf("masked expert-choice routers = %.0f, want %d", maskedExpert.Routers, 3*2*256)
	}
}

// TestExecutedFLOPsRecursiveKVSharing checks that the Recursive baseline
// with KV sharing skips K and V at steps 2 and 3 of its 2-layer block:
// 4 of its 8 layers cost 1,441,792 instead of 1,572,864 per token.
func TestExecutedFLOPsRecursiveKVSharing(t *testing.T) {
	c := mustPreset(t, "recursive-tiny-r3")
	c.KV = SharedKV
	got := ExecutedFLOPsPerToken(c, FLOPsOptions{})
	if want := 4*1_572_864.0 + 4*1_441_792.0; got.Projections != want {
		t.Errorf("projections = %.0f, want %.0f", got.Projections, want)
	}

	// The paper's rule: 2·D² in place of 4·D² at steps ≥ 2, attention factor 1.
	const d, ffn, nctx = 256.0, 768.0, 256.0
	want := 4*(2*(4*d*d+3*d*ffn)) + 4*(2*(2*d*d+3*d*ffn)) + 8*(2*d*nctx)
	if paper := ForwardFLOPsPerToken(c, FLOPsOptions{}); paper != want {
		t.Errorf("ForwardFLOPsPerToken = %.0f, want %.0f", paper, want)
	}
}

// compiledVariables builds the forward graph of c for a [1, 8] batch and
// returns the total size of its trainable variables, overall and under the
// router scopes. Compiling creates the variables without allocating them.
func compiledVariables(t *testing.T, c Config) (total, router int64) {
	t.Helper()
	store := model.NewStore()
	exec, err := model.NewExec(testutil.Backend(t, "go"), store, func(scope *model.Scope, tokens *graph.Node) *graph.Node {
		return Forward(scope, c, tokens, ForwardOptions{Training: true}).Logits
	})
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	defer exec.Finalize()
	if _, err := exec.Compile(shapes.Make(dtypes.Int32, 1, 8)); err != nil {
		t.Fatalf("compiling %s failed: %v", c.Name, err)
	}

	for v := range store.IterVariables() {
		if !v.Trainable {
			continue
		}
		size := int64(v.Shape().Size())
		total += size
		path := v.Path()
		if strings.HasPrefix(path, "/"+routers.MainScopeName+"/") || strings.HasPrefix(path, "/"+routers.AuxScopeName+"/") {
			router += size
		}
	}
	return total, router
}

// TestCountParamsMatchesGraph checks the counts against the trainable
// variables that the forward graph creates, routers included.
func TestCountParamsMatchesGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles five model graphs; skipped with -short")
	}
	cases := []struct {
		name   string
		preset string
		modify func(c *Config)
	}{
		{"expert-choice mlp with aux routers", "mor-ec-tiny-r3", func(c *Config) { c.Router.Architecture, c.Router.AuxRouter = "mlp", true }},
		{"expert-choice kv sharing", "mor-ec-tiny-r3-kvshare", func(c *Config) {}},
		{"token-choice", "mor-tc-tiny-r2", func(c *Config) {}},
		{"recursive untied", "recursive-tiny-r3", func(c *Config) { c.ShareNorms, c.TiedEmbeddings = false, false }},
		{"vanilla", "vanilla-tiny-l4", func(c *Config) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustPreset(t, tc.preset)
			tc.modify(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}

			total, router := compiledVariables(t, c)
			counts := CountParams(c)
			if counts.Total != total {
				t.Errorf("CountParams.Total = %d, the graph has %d trainable parameters", counts.Total, total)
			}
			if counts.Router != router {
				t.Errorf("CountParams.Router = %d, the graph has %d under the router scopes", counts.Router, router)
			}
		})
	}
}

// TestForwardFLOPsHybridKVSharing checks the extension of the rule to the
// shared-update variant: full projections, attention factor β_r. At 360M with
// N_r = 3 that is 22 linear-layer equivalents and 2 + 10·(1 + 2/3 + 1/3) = 22
// attention equivalents.
func TestForwardFLOPsHybridKVSharing(t *testing.T) {
	c := mustPreset(t, "mor-ec-360m-r3")
	c.KV = SharedKVUpdate
	const d, ffn = 960.0, 2560.0
	want := 22 * (2*(4*d*d+3*d*ffn) + 2*d*2048)

	got := ForwardFLOPsPerToken(c, FLOPsOptions{ContextLength: paperContext})
	if math.Abs(got-want) > 1e-6*want {
		t.Errorf("ForwardFLOPsPerToken = %.0f, want %.0f", got, want)
	}

	// Executed at L = 256 on the tiny model: steps 2 and 3 compute K and V for
	// their 170 and 85 tokens, and attend over all 256 keys.
	tiny := mustPreset(t, "mor-ec-tiny-r3")
	tiny.KV = SharedKVUpdate
	executed := ExecutedFLOPsPerToken(tiny, FLOPsOptions{})
	if executed.Projections != 9_424_896 {
		t.Errorf("executed projections = %.1f, want 9,424,896 (as recursion-wise caching)", executed.Projections)
	}
	if math.Abs(executed.Attention-1_570_816) > 1e-3 {
		t.Errorf("executed attention = %.1f, want 1,570,816 (as KV sharing)", executed.Attention)
	}
}
