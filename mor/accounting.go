package mor

import (
	"math"

	"github.com/gomor/gomor/routers"
)

// Parameter and FLOPs accounting.
//
// Parameter counts are exact counts of the trainable variables the model
// graph creates. FLOPs come in two kinds, kept apart on purpose:
//   - ForwardFLOPsPerToken follows the MoR paper's accounting rule (Bae et
//     al. 2025, arXiv 2507.10524), which sets the token budgets of its
//     compute-matched comparisons. It ignores GQA and the LM head, so it is not
//     what the hardware executes.
//   - ExecutedFLOPsPerToken counts the matrix multiplications this
//     implementation performs, for throughput and model FLOPs utilisation.

// ParamCounts are the trainable parameters of a model, by group.
type ParamCounts struct {
	// Embedding is the token embedding V·D, plus the LM head V·D when the
	// embeddings are not tied.
	Embedding int64
	// NonEmbedding covers the unique decoder layers: their projections and
	// RMSNorm scales. It is the paper's "Non-emb params" column, which leaves
	// out routers and the final norm.
	NonEmbedding int64
	// FinalNorm is the D scales of the RMSNorm before the LM head.
	FinalNorm int64
	// Router covers the router networks (and the auxiliary routers when
	// enabled). The loss-free balancing bias is not trainable and not counted.
	Router int64
	// Total is the sum of the groups: every trainable variable of the model.
	Total int64
}

// CountParams returns the parameter counts of c. It assumes a valid config.
func CountParams(c Config) ParamCounts {
	counts := ParamCounts{
		Embedding:    EmbeddingParams(c),
		NonEmbedding: NonEmbeddingParams(c),
		FinalNorm:    int64(c.DModel),
		Router:       RouterParams(c),
	}
	counts.Total = counts.Embedding + counts.NonEmbedding + counts.FinalNorm + counts.Router
	return counts
}

// EmbeddingParams returns V·D for tied embeddings and 2·V·D for an untied LM head.
func EmbeddingParams(c Config) int64 {
	table := int64(c.VocabSize) * int64(c.DModel)
	if c.TiedEmbeddings {
		return table
	}
	return 2 * table
}

// NonEmbeddingParams returns the parameters of the unique decoder layers,
// without routers and the final norm, as the paper counts them: for 360M,
// 314.6M (32 layers), 167.1M (1+15+1), 118.0M (1+10+1) and 98.3M (1+8+1).
// With the final norm's D scales, 1+15+1 at 360M would count 167,150,400
// and round to 167.2M instead of the printed 167.1M, so the paper's column
// leaves them out. CountParams gives every group.
//
// With shared norms every unique layer owns its two RMSNorm scales. Without
// them, each unrolled layer has its own pair, so the norms count 2·D·N_L.
func NonEmbeddingParams(c Config) int64 {
	numNormSets := int64(c.NumUniqueLayers())
	if !c.ShareNorms {
		numNormSets = int64(c.NumLayers)
	}
	layerMatrices := int64(c.NumUniqueLayers()) * layerMatrixParams(c)
	layerNorms := numNormSets * 2 * int64(c.DModel)
	return layerMatrices + layerNorms
}

// layerMatrixParams returns the projection parameters of one decoder layer:
// q and o (D × H·d_head), k and v (D × H_kv·d_head) and the three SwiGLU
// matrices (D × F), all without bias.
func layerMatrixParams(c Config) int64 {
	d := int64(c.DModel)
	queryWidth := int64(c.NumHeads) * int64(c.HeadDim)
	kvWidth := int64(c.NumKVHeads) * int64(c.HeadDim)
	attention := 2*d*queryWidth + 2*d*kvWidth
	mlp := 3 * d * int64(c.FFNSize)
	return attention + mlp
}

// LayerParams returns the parameters of one decoder layer, its two RMSNorm scales included.
func LayerParams(c Config) int64 {
	return layerMatrixParams(c) + 2*int64(c.DModel)
}

// RouterParams returns the router parameters: for expert-choice one network
// per recursion step (twice that with auxiliary routers), for token-choice one
// network with N_r outputs. A linear router is D × outputs, an MLP router
// D × 2D plus 2D × outputs ("wide-mlp" builds the same network), all without
// bias. The random-router ablation has no main router variables.
func RouterParams(c Config) int64 {
	router := c.Router
	if router == nil {
		return 0
	}
	d := int64(c.DModel)
	numRecursions := int64(c.NumRecursions)

	switch router.Kind {
	case routers.ExpertChoice:
		perStep := routerNetworkParams(router.Architecture, d, 1)
		var total int64
		if !router.RandomRouter {
			total += numRecursions * perStep
		}
		if router.AuxRouter {
			total += numRecursions * perStep
		}
		return total
	case routers.TokenChoice:
		if router.RandomRouter {
			return 0
		}
		return routerNetworkParams(router.Architecture, d, numRecursions)
	}
	return 0
}

// routerNetworkParams returns the parameters of one router network with the given outputs.
func routerNetworkParams(architecture string, d, outputs int64) int64 {
	switch architecture {
	case routers.MLP, routers.WideMLP:
		hidden := 2 * d
		return d*hidden + hidden*outputs
	default:
		return d * outputs
	}
}

// FLOPsOptions are the inputs of the FLOPs counters besides the Config.
type FLOPsOptions struct {
	// ContextLength is N_ctx in tokens: the attention span of the paper's rule,
	// and the sequence length for ExecutedFLOPsPerToken. Zero means
	// Config.MaxSeqLen. The paper's numbers use 2048.
	ContextLength int

	// MaskedPath makes ExecutedFLOPsPerToken cost the expert-choice masked
	// path, which runs every recursion step on all L tokens with a key mask.
	// The forward pass takes that path for reference runs, for causal routing
	// and, in training, whenever capacity warm-up is configured. Token-choice
	// always takes it.
	MaskedPath bool
}

// contextLength returns N_ctx for c.
func (o FLOPsOptions) contextLength(c Config) int {
	if o.ContextLength > 0 {
		return o.ContextLength
	}
	return c.MaxSeqLen
}

// LayerFLOPs is the forward cost of one unrolled layer by the paper's rule,
// averaged over the tokens of the sequence.
type LayerFLOPs struct {
	Layer       int // unrolled index ℓ
	UniqueLayer int // the parameter set that layer ℓ uses
	Step        int // recursion step r, 1-based; 0 for layers outside the recursion block

	// Capacity is c_ℓ, the fraction of tokens that run the layer.
	Capacity float64
	// AttentionFactor is a_ℓ: 1 outside the recursion, β_r² with
	// recursion-wise caching and β_r with recursive KV sharing.
	AttentionFactor float64
	// ReusesKV is set where the layer attends to the step-1 keys and values
	// instead of computing its own (recursive KV sharing at r ≥ 2).
	ReusesKV bool

	// Linear is 2·c_ℓ·(4·D² + 3·D·F), with 2·D² in place of 4·D² where ReusesKV.
	Linear float64
	// Attention is 2·D·N_ctx·a_ℓ: QKᵀ and AV over the causal half.
	Attention float64
}

// Total returns Linear + Attention.
func (l LayerFLOPs) Total() float64 { return l.Linear + l.Attention }

// ForwardFLOPsPerToken returns the forward FLOPs per token by the MoR paper's
// rule, which reproduces the token counts of its compute-matched tables:
//
//	F = Σ_ℓ [ 2·c_ℓ·(4·D² + 3·D·F) + 2·D·N_ctx·a_ℓ ]
//
// The rule counts q, k, v and o as D × D matrices whatever the number of KV
// heads, nothing for norms, softmax, routers, the embedding or the LM head,
// and costs token-choice routing as perfectly balanced. For 360M at
// N_ctx = 2048 it gives 833.6M (vanilla) and 555.6M (MoR, N_r = 3).
//
// NOTE: the paper costs only plain KV sharing. For the hybrid variant
// (kv_strategy "shared-update"), whose active tokens compute fresh keys and
// values, this keeps 4·D² with attention factor β_r, an extension of the rule.
func ForwardFLOPsPerToken(c Config, opts FLOPsOptions) float64 {
	var total float64
	for _, layer := range PaperFLOPsBreakdown(c, opts) {
		total += layer.Total()
	}
	return total
}

// PaperFLOPsBreakdown returns the paper-rule forward cost of every unrolled
// layer, in execution order. It assumes a valid config.
func PaperFLOPsBreakdown(c Config, opts FLOPsOptions) []LayerFLOPs {
	d, ffn := float64(c.DModel), float64(c.FFNSize)
	nctx := float64(opts.contextLength(c))
	capacities := StepCapacities(c)

	var layers []LayerFLOPs
	for _, slot := range unrolledSlots(c) {
		layer := LayerFLOPs{Layer: len(layers), UniqueLayer: slot.unique, Step: slot.step, Capacity: 1, AttentionFactor: 1}
		projections := 4 * d * d
		if slot.step > 0 {
			beta := capacities[slot.step-1]
			layer.Capacity = beta
			layer.AttentionFactor = beta * beta
			if slot.step >= 2 && c.KV != RecursionWiseKV {
				// Queries at step r attend to the step-1 keys of the whole context.
				layer.AttentionFactor = beta
				layer.ReusesKV = c.KV == SharedKV
			}
		}
		if layer.ReusesKV {
			projections = 2 * d * d
		}
		layer.Linear = 2 * layer.Capacity * (projections + 3*d*ffn)
		layer.Attention = 2 * d * nctx * layer.AttentionFactor
		layers = append(layers, layer)
	}
	return layers
}

// layerSlot is one unrolled layer: its unique layer and recursion step (0 outside the block).
type layerSlot struct {
	unique int
	step   int
}

// unrolledSlots lists the unrolled layers in execution order: the prefix,
// the block once per recursion step, then the suffix.
func unrolledSlots(c Config) []layerSlot {
	layout := c.Layout()
	var slots []layerSlot
	for _, u := range layout.Prefix {
		slots = append(slots, layerSlot{unique: u})
	}
	if len(layout.Block) > 0 {
		for r := 1; r <= layout.NumRecursions; r++ {
			for _, u := range layout.Block {
				slots = append(slots, layerSlot{unique: u, step: r})
			}
		}
	}
	for _, u := range layout.Suffix {
		slots = append(slots, layerSlot{unique: u})
	}
	return slots
}

// StepCapacities returns β_r for r = 1..N_r: the router's capacities for
// expert-choice, the balanced fractions (N_r − r + 1)/N_r for token-choice,
// and 1 at every step without a router.
func StepCapacities(c Config) []float64 {
	switch {
	case c.Router == nil:
		ones := make([]float64, c.NumRecursions)
		for i := range ones {
			ones[i] = 1
		}
		return ones
	case c.Router.Kind == routers.ExpertChoice:
		return c.Router.EffectiveCapacities(c.NumRecursions)
	default:
		return routers.DefaultCapacities(c.NumRecursions)
	}
}

// ExecutedFLOPs is the forward cost per token of one sequence in this
// implementation, counting matrix multiplications (2 FLOPs per
// multiply-add) as the graph executes them.
type ExecutedFLOPs struct {
	// Projections are the q, k, v, o and SwiGLU matmuls of all unrolled layers,
	// with k and v sized by the KV heads and run only by the tokens a step processes.
	Projections float64
	// Attention is QKᵀ and AV over full score matrices: the graph computes every
	// query-key pair and masks the non-causal ones, so it does not halve them.
	Attention float64
	// Routers are the router networks, run on the candidates of each step.
	Routers float64
	// LMHead is the D × V output projection; the embedding lookup costs no FLOPs.
	LMHead float64
	// Forward is the sum of the above.
	Forward float64
	// Training is 3 × Forward, the usual estimate of forward plus backward,
	// for model FLOPs utilisation.
	Training float64
}

// ExecutedFLOPsPerToken returns the matmul FLOPs per token that a forward pass
// over a sequence of FLOPsOptions.ContextLength tokens executes. On the
// compacted expert-choice path, step r runs k_r = max(1, floor(β_r·L))
// tokens, as the router selects them. On the masked path (token-choice, or
// FLOPsOptions.MaskedPath) every step runs all L tokens. Norms, softmax,
// activations, gathers and scatters are not counted.
func ExecutedFLOPsPerToken(c Config, opts FLOPsOptions) ExecutedFLOPs {
	length := opts.contextLength(c)
	counts := executedStepCounts(c, length, opts.MaskedPath)

	var flops ExecutedFLOPs
	for _, slot := range unrolledSlots(c) {
		tokens, keys := length, length
		computesKV := true
		if slot.step > 0 {
			tokens, keys = counts[slot.step-1], counts[slot.step-1]
			if slot.step >= 2 && c.KV != RecursionWiseKV {
				keys = length
				computesKV = c.KV == SharedKVUpdate
			}
		}
		flops.Projections += float64(tokens) * executedProjectionFLOPs(c, computesKV)
		flops.Attention += 4 * float64(c.NumHeads*c.HeadDim) * float64(tokens) * float64(keys)
	}
	flops.Routers = executedRouterFLOPs(c, length, counts)
	flops.LMHead = 2 * float64(c.DModel) * float64(c.VocabSize) * float64(length)

	// Per sequence → per token.
	scale := 1 / float64(length)
	flops.Projections *= scale
	flops.Attention *= scale
	flops.Routers *= scale
	flops.LMHead *= scale
	flops.Forward = flops.Projections + flops.Attention + flops.Routers + flops.LMHead
	flops.Training = 3 * flops.Forward
	return flops
}

// executedStepCounts returns the tokens the block runs at each recursion step
// of a sequence of the given length: k_r on the compacted expert-choice path,
// and L on the masked path and without a router.
func executedStepCounts(c Config, length int, maskedPath bool) []int {
	compacted := c.Router != nil && c.Router.Kind == routers.ExpertChoice && !maskedPath
	if compacted {
		return c.Router.StepCounts(c.NumRecursions, length)
	}
	counts := make([]int, c.NumRecursions)
	for r := range counts {
		counts[r] = length
	}
	return counts
}

// executedProjectionFLOPs returns the projection FLOPs of one token through one layer.
func executedProjectionFLOPs(c Config, computesKV bool) float64 {
	d := float64(c.DModel)
	queryWidth := float64(c.NumHeads * c.HeadDim)
	kvWidth := float64(c.NumKVHeads * c.HeadDim)

	flops := 2*d*queryWidth*2 + 2*3*d*float64(c.FFNSize) // q, o and the MLP
	if computesKV {
		flops += 2 * d * kvWidth * 2
	}
	return flops
}

// executedRouterFLOPs returns the router FLOPs of one sequence: expert-choice
// step r scores the k_{r−1} candidates left by step r − 1 (all tokens at
// r = 1); token-choice scores every token once.
func executedRouterFLOPs(c Config, length int, counts []int) float64 {
	router := c.Router
	if router == nil || router.RandomRouter {
		return 0
	}
	d := int64(c.DModel)
	if router.Kind == routers.TokenChoice {
		perToken := 2 * routerNetworkParams(router.Architecture, d, int64(c.NumRecursions))
		return float64(perToken) * float64(length)
	}

	perCandidate := 2 * routerNetworkParams(router.Architecture, d, 1)
	if router.AuxRouter {
		perCandidate *= 2
	}
	var total float64
	candidates := length
	for _, count := range counts {
		total += float64(perCandidate) * float64(candidates)
		candidates = count
	}
	return total
}

// TokensForBudget returns how many training tokens a forward-FLOPs budget buys
// at ForwardFLOPsPerToken with context nctx (0 means Config.MaxSeqLen),
// rounded down: 16.5e18 FLOPs give 19.79B tokens for vanilla 360M and 29.70B
// for MoR-3.
func TokensForBudget(c Config, flops float64, nctx int) int64 {
	perToken := ForwardFLOPsPerToken(c, FLOPsOptions{ContextLength: nctx})
	return int64(math.Floor(flops / perToken))
}

// StepsForBudget returns the optimizer steps of tokensPerStep tokens each that
// a forward-FLOPs budget buys, rounded to the nearest step.
//
// NOTE: rounding to the nearest step reproduces the paper's released step
// counts at 16.5e18 FLOPs and 1024 × 2048 tokens per step for vanilla (9438),
// MoR-2 (12619), MoR-4 (14216), MoR-3 with KV sharing (14672) and the
// 34-layer Recursive model (8883). The released MoR-3 count is 14161 where
// the rule gives 14160.01; no single rounding reproduces both that and
// vanilla's 9438.15 → 9438.
func StepsForBudget(c Config, flops float64, tokensPerStep int64, nctx int) int64 {
	perToken := ForwardFLOPsPerToken(c, FLOPsOptions{ContextLength: nctx})
	return int64(math.Round(flops / perToken / float64(tokensPerStep)))
}

// StepTokenCounts returns the tokens k_r routed to each recursion step of a
// sequence of the given length: max(1, floor(β_r·L)) for expert-choice, the
// loads of perfectly balanced routing for token-choice, and L without a
// router. ExecutedFLOPsPerToken explains which of them the block runs on.
func StepTokenCounts(c Config, length int) []int {
	counts := make([]int, c.NumRecursions)
	candidates := length
	for r, beta := range StepCapacities(c) {
		counts[r] = routers.Capacity(beta, length, candidates)
		candidates = counts[r]
	}
	return counts
}
