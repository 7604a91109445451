package analysis

import "math"

// Setup is the part of a model's configuration that decides which row of the
// MoR paper's tables (PaperSource) the model mirrors. Two setups match when every field is
// equal (Alpha and Coeff within 1e-9). Model size and token budget are not
// part of it: a tiny run with the same setup as a paper row mirrors that row.
type Setup struct {
	Model         string `json:"model"`   // ModelVanilla, ModelRecursive or ModelMoR
	Sharing       string `json:"sharing"` // mor.SharingScheme value; "" for vanilla
	NumRecursions int    `json:"num_recursions"`
	KV            string `json:"kv"`     // mor.KVStrategy value; "" for vanilla and recursive models
	Router        string `json:"router"` // routers.Kind value; "" without a router

	// Sampling is the method that trains routing: expert-choice SamplingAuxLoss,
	// SamplingAuxRouter or SamplingRandom; token-choice SamplingBalanceLoss,
	// SamplingLossFree or SamplingRandom. A random router sets no field below.
	Sampling string `json:"sampling,omitempty"`

	// Coeff is the BCE coefficient (aux loss), the balancing-loss coefficient
	// or the loss-free bias rate u; 0 for the auxiliary router.
	Coeff float64 `json:"coeff,omitempty"`

	ScoreFunc    string  `json:"score_func,omitempty"`
	Alpha        float64 `json:"alpha,omitempty"` // 0 for score function "none", which has no α
	Architecture string  `json:"architecture,omitempty"`
	Warmup       bool    `json:"warmup,omitempty"` // capacity (expert) or balancing (token) warm-up
	ZLoss        bool    `json:"z_loss,omitempty"`
}

// Model families of a Setup.
const (
	ModelVanilla   = "vanilla"
	ModelRecursive = "recursive"
	ModelMoR       = "mor"
)

// Sampling methods of a Setup.
const (
	SamplingAuxLoss     = "aux-loss"
	SamplingAuxRouter   = "aux-router"
	SamplingBalanceLoss = "balance-loss"
	SamplingLossFree    = "loss-free"
	SamplingRandom      = "random"
)

// Matches reports whether two setups are the same experiment.
func (s Setup) Matches(other Setup) bool {
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9 }
	return s.Model == other.Model && s.Sharing == other.Sharing && s.NumRecursions == other.NumRecursions &&
		s.KV == other.KV && s.Router == other.Router && s.Sampling == other.Sampling &&
		close(s.Coeff, other.Coeff) && s.ScoreFunc == other.ScoreFunc && close(s.Alpha, other.Alpha) &&
		s.Architecture == other.Architecture && s.Warmup == other.Warmup && s.ZLoss == other.ZLoss
}

// PaperRow is one row of a results table of the MoR paper (PaperSource). Metrics the table
// does not report are NaN; rates are fractions, not percent.
type PaperRow struct {
	Table string `json:"table"` // "Table 3", "Table 13" or "Table 14"
	Label string `json:"label"`
	Setup Setup  `json:"setup"`

	// FixedTokens marks the Table 3 rows trained on the same 20B tokens as
	// vanilla instead of at equal FLOPs. Matching skips them, because a run's
	// configuration cannot tell the two budgets apart.
	FixedTokens bool `json:"fixed_tokens,omitempty"`

	NLL              float64 `json:"nll"`          // FineWeb-Edu validation NLL, sequence-level top-k routing
	FewShotAverage   float64 `json:"few_shot_avg"` // mean accuracy over six few-shot tasks, percent
	DeadTokenRatio   float64 `json:"dead_token_ratio"`
	SamplingAccuracy float64 `json:"sampling_accuracy"`
	MaxVio           float64 `json:"max_vio"`
	Entropy          float64 `json:"entropy"`
}

// PaperSource names where PaperRows come from.
const PaperSource = "Bae et al., \"Mixture-of-Recursions: Learning Dynamic Recursive Depths for Adaptive " +
	"Token-Level Computation\", arXiv 2507.10524 v3, Tables 3, 13 and 14 (360M base, N_r = 3 in the ablations)"

// Final router recipes of the MoR paper (PaperSource), as Setups whose model fields the helpers below fill.
var (
	expertRecipe = Setup{Sampling: SamplingAuxLoss, Coeff: 0.001, ScoreFunc: "sigmoid", Alpha: 0.1, Architecture: "linear"}
	tokenRecipe  = Setup{Sampling: SamplingBalanceLoss, Coeff: 0.1, ScoreFunc: "softmax", Alpha: 1.0, Architecture: "linear", ZLoss: true}
)

// morSetup completes a router recipe into a Middle-Cycle MoR setup.
func morSetup(router string, numRecursions int, kv string, recipe Setup) Setup {
	recipe.Model, recipe.Sharing, recipe.NumRecursions, recipe.KV, recipe.Router = ModelMoR, "middle-cycle", numRecursions, kv, router
	return recipe
}

func recursiveSetup(numRecursions int) Setup {
	return Setup{Model: ModelRecursive, Sharing: "middle-cycle", NumRecursions: numRecursions}
}

// expertAblation is a Table 13 setup: expert-choice, N_r = 3, recursion-wise KV caching.
func expertAblation(sampling string, coeff float64, scoreFunc string, alpha float64, architecture string, warmup, zLoss bool) Setup {
	return morSetup("expert-choice", 3, "recursion-wise", Setup{Sampling: sampling, Coeff: coeff, ScoreFunc: scoreFunc,
		Alpha: alpha, Architecture: architecture, Warmup: warmup, ZLoss: zLoss})
}

// tokenAblation is a Table 14 setup: token-choice, N_r = 3, recursion-wise KV caching.
func tokenAblation(sampling string, coeff float64, scoreFunc string, alpha float64, architecture string, zLoss bool) Setup {
	return morSetup("token-choice", 3, "recursion-wise", Setup{Sampling: sampling, Coeff: coeff, ScoreFunc: scoreFunc,
		Alpha: alpha, Architecture: architecture, ZLoss: zLoss})
}

var randomExpert = morSetup("expert-choice", 3, "recursion-wise", Setup{Sampling: SamplingRandom})
var randomToken = morSetup("token-choice", 3, "recursion-wise", Setup{Sampling: SamplingRandom})

// PaperRows holds the rows of Tables 3, 13 and 14 of the MoR paper (see
// PaperSource). Table 3 compares models at 16.5e18 training FLOPs; Tables 13
// and 14 ablate the routers at 10B tokens. The W-MLP rows use architecture
// "wide-mlp".
var PaperRows = []PaperRow{
	// Table 3: main results, 360M base, 16.5e18 FLOPs.
	t3("Vanilla", Setup{Model: ModelVanilla}, false, 2.7824, 42.3),
	t3("Recursive, N_r = 2", recursiveSetup(2), false, 2.8079, 42.6),
	t3("Recursive, N_r = 3", recursiveSetup(3), false, 2.8466, 41.5),
	t3("Recursive, N_r = 4", recursiveSetup(4), false, 2.8781, 41.0),
	t3("MoR expert, cache, N_r = 2", morSetup("expert-choice", 2, "recursion-wise", expertRecipe), false, 2.7511, 43.1),
	t3("MoR expert, cache, N_r = 3", morSetup("expert-choice", 3, "recursion-wise", expertRecipe), false, 2.7925, 42.6),
	t3("MoR expert, cache, N_r = 4", morSetup("expert-choice", 4, "recursion-wise", expertRecipe), false, 2.8204, 41.6),
	t3("MoR expert, cache, N_r = 2, fixed tokens", morSetup("expert-choice", 2, "recursion-wise", expertRecipe), true, 2.7749, 42.9),
	t3("MoR expert, cache, N_r = 3, fixed tokens", morSetup("expert-choice", 3, "recursion-wise", expertRecipe), true, 2.8246, 41.8),
	t3("MoR expert, cache, N_r = 4, fixed tokens", morSetup("expert-choice", 4, "recursion-wise", expertRecipe), true, 2.8519, 41.5),
	t3("MoR token, cache, N_r = 3", morSetup("token-choice", 3, "recursion-wise", tokenRecipe), false, 2.9163, 40.0),
	t3("MoR expert, KV share, N_r = 3", morSetup("expert-choice", 3, "shared", expertRecipe), false, 2.7983, 41.9),

	// Table 13: expert-choice ablations (dead-token ratio and sampling accuracy as fractions).
	t13("random router", randomExpert, 0.0, notReported(), 2.9335, 39.1),
	// Table 13 reports NLL NaN for unbounded scores ("none") because training diverged.
	t13("aux router, none, MLP", expertAblation(SamplingAuxRouter, 0, "none", 0, "mlp", false, false), 0.667, 0.500, math.NaN(), 28.5),
	t13("aux router, σ, α 0.1, MLP", expertAblation(SamplingAuxRouter, 0, "sigmoid", 0.1, "mlp", false, false), 0.0, 0.892, 2.8893, 39.4),
	t13("aux router, σ, α 1.0, MLP", expertAblation(SamplingAuxRouter, 0, "sigmoid", 1.0, "mlp", false, false), 0.667, 0.500, 2.8867, 39.8),
	t13("aux router, tanh, α 0.1, MLP", expertAblation(SamplingAuxRouter, 0, "tanh", 0.1, "mlp", false, false), 0.667, 0.986, 2.8720, 36.2),
	t13("aux router, tanh, α 1.0, MLP", expertAblation(SamplingAuxRouter, 0, "tanh", 1.0, "mlp", false, false), 0.667, 0.970, 3.0624, 36.5),
	t13("aux loss 0.01, none, MLP", expertAblation(SamplingAuxLoss, 0.01, "none", 0, "mlp", false, false), 0.667, 0.500, math.NaN(), 28.5),
	t13("aux loss 0.01, σ, α 0.1, MLP", expertAblation(SamplingAuxLoss, 0.01, "sigmoid", 0.1, "mlp", false, false), 0.0, 0.996, 2.8967, 39.2),
	t13("aux loss 0.01, σ, α 1.0, MLP", expertAblation(SamplingAuxLoss, 0.01, "sigmoid", 1.0, "mlp", false, false), 0.659, 1.000, 2.9189, 35.5),
	t13("aux loss 0.01, tanh, α 0.1, MLP", expertAblation(SamplingAuxLoss, 0.01, "tanh", 0.1, "mlp", false, false), 0.328, 0.997, 2.9426, 38.3),
	t13("aux loss 0.01, tanh, α 1.0, MLP", expertAblation(SamplingAuxLoss, 0.01, "tanh", 1.0, "mlp", false, false), 0.0, 0.988, 3.2743, 35.3),
	t13("aux loss 0.1, σ, α 0.1, MLP", expertAblation(SamplingAuxLoss, 0.1, "sigmoid", 0.1, "mlp", false, false), 0.0, 0.998, 3.0416, 37.6),
	t13("aux loss 0.001, σ, α 0.1, MLP", expertAblation(SamplingAuxLoss, 0.001, "sigmoid", 0.1, "mlp", false, false), 0.0, 0.991, 2.8816, 40.0),
	t13("aux loss 0.001, tanh, α 0.1, MLP", expertAblation(SamplingAuxLoss, 0.001, "tanh", 0.1, "mlp", false, false), 0.0, 0.564, 2.9933, 38.8),
	t13("aux loss 0.001, σ, α 0.1, linear (chosen)", expertAblation(SamplingAuxLoss, 0.001, "sigmoid", 0.1, "linear", false, false), 0.001, 0.992, 2.8667, 40.1),
	t13("aux loss 0.001, σ, α 0.1, W-MLP", expertAblation(SamplingAuxLoss, 0.001, "sigmoid", 0.1, "wide-mlp", false, false), 0.004, 0.992, 2.8716, 39.4),
	t13("aux loss 0.001, σ, α 0.1, linear, capacity warm-up", expertAblation(SamplingAuxLoss, 0.001, "sigmoid", 0.1, "linear", true, false), 0.049, 0.991, 2.8744, 39.2),
	t13("aux loss 0.001, σ, α 0.1, linear, z-loss", expertAblation(SamplingAuxLoss, 0.001, "sigmoid", 0.1, "linear", false, true), 0.0, 0.993, 2.8824, 40.0),

	// Table 14: token-choice ablations.
	t14("random router", randomToken, 0.007, 1.099, 3.0268, 38.7),
	t14("loss 0.1, softmax, MLP", tokenAblation(SamplingBalanceLoss, 0.1, "softmax", 1.0, "mlp", true), 0.200, 1.076, 3.0239, 38.5),
	t14("loss 0.01, softmax, MLP", tokenAblation(SamplingBalanceLoss, 0.01, "softmax", 1.0, "mlp", true), 0.682, 0.921, 2.9118, 39.4),
	t14("loss-free 0.01, softmax, MLP", tokenAblation(SamplingLossFree, 0.01, "softmax", 1.0, "mlp", true), 1.788, 0.297, 2.9078, 38.9),
	t14("loss-free 0.01, σ, α 0.1, MLP", tokenAblation(SamplingLossFree, 0.01, "sigmoid", 0.1, "mlp", true), 0.956, 0.646, 3.1144, 37.2),
	t14("loss-free 0.01, σ, α 1.0, MLP", tokenAblation(SamplingLossFree, 0.01, "sigmoid", 1.0, "mlp", true), 0.918, 0.749, 3.0188, 37.6),
	t14("loss-free 0.001, softmax, MLP", tokenAblation(SamplingLossFree, 0.001, "softmax", 1.0, "mlp", true), 0.852, 0.915, 2.9081, 39.5),
	t14("loss-free 0.001, σ, α 0.1, MLP", tokenAblation(SamplingLossFree, 0.001, "sigmoid", 0.1, "mlp", true), 1.281, 0.551, 2.9165, 38.9),
	t14("loss-free 0.001, σ, α 1.0, MLP", tokenAblation(SamplingLossFree, 0.001, "sigmoid", 1.0, "mlp", true), 0.542, 0.941, 3.0188, 38.6),
	t14("loss 0.1, softmax, linear", tokenAblation(SamplingBalanceLoss, 0.1, "softmax", 1.0, "linear", true), 0.492, 0.960, 2.9974, 38.4),
	t14("loss 0.1, softmax, W-MLP", tokenAblation(SamplingBalanceLoss, 0.1, "softmax", 1.0, "wide-mlp", true), 0.384, 1.037, 3.0293, 38.8),
	t14("loss 0.1, softmax, linear, no z-loss (best)", tokenAblation(SamplingBalanceLoss, 0.1, "softmax", 1.0, "linear", false), 0.266, 1.056, 2.9358, 39.1),
}

// notReported marks a metric that a paper table does not give.
func notReported() float64 { return math.NaN() }

func t3(label string, setup Setup, fixedTokens bool, nll, average float64) PaperRow {
	return PaperRow{Table: "Table 3", Label: label, Setup: setup, FixedTokens: fixedTokens, NLL: nll, FewShotAverage: average,
		DeadTokenRatio: notReported(), SamplingAccuracy: notReported(), MaxVio: notReported(), Entropy: notReported()}
}

func t13(label string, setup Setup, dead, samplingAccuracy, nll, average float64) PaperRow {
	return PaperRow{Table: "Table 13", Label: label, Setup: setup, NLL: nll, FewShotAverage: average,
		DeadTokenRatio: dead, SamplingAccuracy: samplingAccuracy, MaxVio: notReported(), Entropy: notReported()}
}

func t14(label string, setup Setup, maxVio, entropy, nll, average float64) PaperRow {
	return PaperRow{Table: "Table 14", Label: label, Setup: setup, NLL: nll, FewShotAverage: average,
		DeadTokenRatio: notReported(), SamplingAccuracy: notReported(), MaxVio: maxVio, Entropy: entropy}
}

// MatchPaperRows returns every equal-FLOPs row of PaperRows whose setup
// matches setup, in table order. A run can match a Table 3 row and a
// Table 13 or 14 row at once.
func MatchPaperRows(setup Setup) []PaperRow {
	var rows []PaperRow
	for _, row := range PaperRows {
		if !row.FixedTokens && row.Setup.Matches(setup) {
			rows = append(rows, row)
		}
	}
	return rows
}
