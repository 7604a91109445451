package mor

import (
	"math"

	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Variable names inside a layer scope. They follow the Hugging Face Llama
// module names so that the safetensors mapping is a plain rename.
const (
	scopeAttention     = "self_attn"
	scopeMLP           = "mlp"
	scopeInputNorm     = "input_layernorm"
	scopePostAttnNorm  = "post_attention_layernorm"
	scopeEmbedding     = "embed_tokens"
	scopeFinalNorm     = "norm"
	scopeLMHead        = "lm_head"
	varLinearWeights   = "weights" // [in, out], applied as x·W
	varNormScale       = "scale"   // [D]
	varEmbeddingMatrix = "embeddings"
)

// maskedScore replaces the attention scores of masked keys. It is finite, so a
// query with no allowed key gets uniform weights instead of NaN; such queries
// belong to inactive tokens, whose outputs callers discard.
const maskedScore = -1e9

// activationDType returns the parameter and activation type of cfg.
func activationDType(cfg Config) dtypes.DType {
	switch cfg.DType {
	case "", "float32":
		return dtypes.Float32
	case "bfloat16":
		return dtypes.BFloat16
	case "float16":
		return dtypes.Float16
	case "float64":
		return dtypes.Float64
	default:
		exceptions.Panicf("mor: invalid dtype %q: use \"float32\", \"bfloat16\" or \"float16\"", cfg.DType)
		return dtypes.InvalidDType
	}
}

// accumulationDType is the type norms, softmaxes and losses are computed in:
// float64 for float64 models (used by gradient checks), float32 otherwise.
func accumulationDType(dtype dtypes.DType) dtypes.DType {
	if dtype == dtypes.Float64 {
		return dtypes.Float64
	}
	return dtypes.Float32
}

// normalInitializer draws N(0, std²) values in float32 (float64 for float64 models) from the store's random
// state and converts them to dtype. GoMLX's own RandomNormalFn returns zeros for
// 16-bit types, which would silently leave a bfloat16 model untrained.
func normalInitializer(scope *model.Scope, std float64, dtype dtypes.DType) model.VariableInitializer {
	return func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		values := scope.RandomNormal(g, shapes.Make(accumulationDType(dtype), shape.Dimensions...))
		return graph.ConvertDType(graph.MulScalar(values, std), dtype)
	}
}

// onesInitializer sets every element to 1, for RMSNorm scales.
func onesInitializer(g *graph.Graph, shape shapes.Shape) *graph.Node {
	return graph.Ones(g, shape)
}

// Linear applies x·W with W [in, out] stored under scope/name, no bias.
// x is [..., in]; the result is [..., out]. W is initialised N(0, InitStd²).
func Linear(scope *model.Scope, cfg Config, name string, x *graph.Node, out int) *graph.Node {
	dtype := activationDType(cfg)
	in := x.Shape().Dimensions[x.Rank()-1]
	weightsScope := scope.At("%s", name).WithInitializer(normalInitializer(scope, cfg.InitStd, dtype))
	weights := weightsScope.VariableWithShape(varLinearWeights, shapes.Make(dtype, in, out)).NodeValue(x.Graph())
	// Contract the last axis of x with axis 0 of W: [..., in] · [in, out] → [..., out].
	return graph.DotGeneral(x, []int{x.Rank() - 1}, nil, weights, []int{0}, nil)
}

// RMSNorm normalises x [..., D] by its root mean square and multiplies by a
// learned scale [D] (initialised to 1). It computes in float32 (float64 for
// float64 inputs) and returns x's dtype.
func RMSNorm(scope *model.Scope, cfg Config, x *graph.Node) *graph.Node {
	dtype := x.DType()
	d := x.Shape().Dimensions[x.Rank()-1]
	scale := scope.WithInitializer(onesInitializer).
		VariableWithShape(varNormScale, shapes.Make(dtype, d)).NodeValue(x.Graph())

	wide := graph.ConvertDType(x, accumulationDType(dtype))
	meanSquare := graph.ReduceAndKeep(graph.Square(wide), graph.ReduceMean, -1)
	// NOTE: Div by Sqrt, because Rsqrt has no gradient in gomlx v0.28.6.
	normalized := graph.Div(wide, graph.Sqrt(graph.AddScalar(meanSquare, cfg.NormEpsilon)))
	return graph.Mul(graph.ConvertDType(normalized, dtype), graph.ExpandLeftToRank(scale, x.Rank()))
}

// ApplyRoPE rotates x [B, K, H, HeadDim] by rotary position embeddings at the
// absolute positions [B, K] (int32), with the rotate-half layout of Hugging Face
// Llama: frequency i pairs element i with element i + HeadDim/2, and
// inv_freq_i = θ^(−2i/HeadDim). Taking positions explicitly lets a compacted
// sequence keep each token's original position.
func ApplyRoPE(x, positions *graph.Node, theta float64) *graph.Node {
	g := x.Graph()
	dtype := x.DType()
	headDim := x.Shape().Dimensions[3]
	half := headDim / 2
	if headDim%2 != 0 {
		exceptions.Panicf("mor: RoPE needs an even head dimension, got %d", headDim)
	}

	wideDType := accumulationDType(dtype)
	invFreq := make([]float64, half)
	for i := range invFreq {
		invFreq[i] = 1 / math.Pow(theta, float64(2*i)/float64(headDim))
	}

	// angles: [B, K, 1] × [half] → [B, K, half], then duplicated to [B, K, HeadDim]
	// and given a heads axis: [B, K, 1, HeadDim].
	widePositions := graph.ConvertDType(positions, wideDType)
	frequencies := graph.ConvertDType(graph.Const(g, invFreq), wideDType)
	angles := graph.Mul(graph.InsertAxes(widePositions, -1), graph.ExpandLeftToRank(frequencies, 3))
	angles = graph.Concatenate([]*graph.Node{angles, angles}, -1)
	angles = graph.InsertAxes(angles, 2)
	cos, sin := graph.Cos(angles), graph.Sin(angles)

	// rotate_half(x) = concat(−x[..., half:], x[..., :half]).
	wide := graph.ConvertDType(x, wideDType)
	first := graph.SliceAxis(wide, -1, graph.AxisRange(0, half))
	second := graph.SliceAxis(wide, -1, graph.AxisRange(half, headDim))
	rotated := graph.Concatenate([]*graph.Node{graph.Neg(second), first}, -1)

	out := graph.Add(graph.Mul(wide, cos), graph.Mul(rotated, sin))
	return graph.ConvertDType(out, dtype)
}

// LayerAttention sets which keys and values one attention layer uses.
// BlockAttention carries the same options for all layers of a block.
type LayerAttention struct {
	// SharedKV, when not nil, replaces the layer's own keys and values, so the
	// K/V projections are skipped (unless UpdateShared is set).
	SharedKV *LayerKV

	// UpdateShared makes the tokens of x overwrite, in a copy of SharedKV, the
	// slots whose position equals their own, with freshly computed K/V. When
	// KeyMask is set, only tokens with KeyMask true overwrite their slots.
	UpdateShared bool

	// KeyMask optionally restricts which tokens of x may be attended to, [B, K]
	// bool. It applies to the layer's own keys, and to the overwritten slots
	// when UpdateShared is set.
	KeyMask *graph.Node

	// ReturnKV requests the keys and values the layer attended to.
	ReturnKV bool
}

// Attention is grouped-query self-attention with RoPE and a causal mask by
// position (key position ≤ query position), no biases. x is [B, K, D] at
// absolute positions [B, K]. It returns the output [B, K, D] and, when
// opts.ReturnKV is set, the keys and values it attended to.
func Attention(scope *model.Scope, cfg Config, x, positions *graph.Node, opts LayerAttention) (*graph.Node, LayerKV) {
	dims := x.Shape().Dimensions
	batch, length := dims[0], dims[1]

	// queries: [B, K, H·HeadDim] → [B, K, H, HeadDim].
	queries := Linear(scope, cfg, "q_proj", x, cfg.NumHeads*cfg.HeadDim)
	queries = graph.Reshape(queries, batch, length, cfg.NumHeads, cfg.HeadDim)
	queries = ApplyRoPE(queries, positions, cfg.RoPETheta)

	kv := layerKeysValues(scope, cfg, x, positions, opts)
	out := attend(queries, positions, kv, cfg.NumKVHeads)

	// out: [B, K, H, HeadDim] → [B, K, H·HeadDim] → [B, K, D].
	out = graph.Reshape(out, batch, length, cfg.NumHeads*cfg.HeadDim)
	out = Linear(scope, cfg, "o_proj", out, cfg.DModel)
	if !opts.ReturnKV {
		kv = LayerKV{}
	}
	return out, kv
}

// layerKeysValues returns the keys and values a layer attends to: its own,
// the shared ones, or the shared ones with the tokens of x written in.
func layerKeysValues(scope *model.Scope, cfg Config, x, positions *graph.Node, opts LayerAttention) LayerKV {
	if opts.SharedKV != nil && !opts.UpdateShared {
		return *opts.SharedKV
	}

	dims := x.Shape().Dimensions
	batch, length := dims[0], dims[1]

	// keys, values: [B, K, KVH·HeadDim] → [B, K, KVH, HeadDim].
	keys := Linear(scope, cfg, "k_proj", x, cfg.NumKVHeads*cfg.HeadDim)
	keys = graph.Reshape(keys, batch, length, cfg.NumKVHeads, cfg.HeadDim)
	keys = ApplyRoPE(keys, positions, cfg.RoPETheta)
	values := Linear(scope, cfg, "v_proj", x, cfg.NumKVHeads*cfg.HeadDim)
	values = graph.Reshape(values, batch, length, cfg.NumKVHeads, cfg.HeadDim)
	own := LayerKV{Keys: keys, Values: values, Positions: positions, Valid: opts.KeyMask}

	if opts.SharedKV == nil {
		return own
	}
	return overwriteSlots(*opts.SharedKV, own)
}

// overwriteSlots returns a copy of shared where each slot whose position
// equals the position of a valid token of fresh holds that token's keys and
// values. The match is a dense [B, K, Lkv] comparison, so it works for any
// positions and keeps gradients for both sources.
func overwriteSlots(shared, fresh LayerKV) LayerKV {
	dtype := shared.Keys.DType()

	// match: [B, K, 1] == [B, 1, Lkv] → [B, K, Lkv].
	match := graph.Equal(graph.InsertAxes(fresh.Positions, -1), graph.InsertAxes(shared.Positions, 1))
	if fresh.Valid != nil {
		match = graph.LogicalAnd(match, graph.InsertAxes(fresh.Valid, -1))
	}
	matchWeights := graph.ConvertDType(match, dtype)

	// written: [B, Lkv] bool, true where some token of fresh took the slot. Where
	// broadcasts it over the trailing [KVH, HeadDim] axes.
	written := graph.ReduceLogicalOr(match, 1)

	// scattered: [B, K, Lkv] · [B, K, KVH, HeadDim] → [B, Lkv, KVH, HeadDim].
	scatteredKeys := graph.Einsum("bkj,bkhd->bjhd", matchWeights, fresh.Keys)
	scatteredValues := graph.Einsum("bkj,bkhd->bjhd", matchWeights, fresh.Values)

	return LayerKV{
		Keys:      graph.Where(written, scatteredKeys, shared.Keys),
		Values:    graph.Where(written, scatteredValues, shared.Values),
		Positions: shared.Positions,
		Valid:     shared.Valid,
	}
}

// attend computes softmax(q·kᵀ/√HeadDim)·v with grouped-query heads: query
// head h uses KV head h / (H/KVH), as Hugging Face's repeat_kv does. Key j is
// allowed for query i when kv.Positions[j] ≤ queryPositions[i] and kv.Valid[j].
// queries are [B, K, H, HeadDim]; the result has the same shape and dtype.
// Scores and the softmax are computed in float32 (float64 for float64 models).
func attend(queries, queryPositions *graph.Node, kv LayerKV, numKVHeads int) *graph.Node {
	dims := queries.Shape().Dimensions
	batch, length, numHeads, headDim := dims[0], dims[1], dims[2], dims[3]
	groupSize := numHeads / numKVHeads
	dtype := queries.DType()
	wideDType := accumulationDType(dtype)

	// queries: [B, K, H, HeadDim] → [B, K, KVH, G, HeadDim].
	grouped := graph.Reshape(graph.ConvertDType(queries, wideDType), batch, length, numKVHeads, groupSize, headDim)
	keys := graph.ConvertDType(kv.Keys, wideDType)
	values := graph.ConvertDType(kv.Values, wideDType)

	// scores: [B, KVH, G, K, Lkv].
	scores := graph.Einsum("bqhgd,bkhd->bhgqk", grouped, keys)
	scores = graph.MulScalar(scores, 1/math.Sqrt(float64(headDim)))

	// allowed: [B, K, Lkv] → [B, 1, 1, K, Lkv].
	allowed := graph.LessOrEqual(graph.InsertAxes(kv.Positions, 1), graph.InsertAxes(queryPositions, -1))
	if kv.Valid != nil {
		allowed = graph.LogicalAnd(allowed, graph.InsertAxes(kv.Valid, 1))
	}
	allowed = graph.BroadcastToDims(graph.InsertAxes(allowed, 1, 1), scores.Shape().Dimensions...)
	scores = graph.Where(allowed, scores, graph.Scalar(scores.Graph(), wideDType, maskedScore))

	probs := graph.Softmax(scores, -1)

	// out: [B, KVH, G, K, Lkv] · [B, Lkv, KVH, HeadDim] → [B, K, KVH, G, HeadDim] → [B, K, H, HeadDim].
	out := graph.Einsum("bhgqk,bkhd->bqhgd", probs, values)
	out = graph.Reshape(out, batch, length, numHeads, headDim)
	return graph.ConvertDType(out, dtype)
}

// SwiGLU is the Llama MLP: down(SiLU(gate(x)) ⊙ up(x)), no biases. x is
// [..., D] and so is the result.
func SwiGLU(scope *model.Scope, cfg Config, x *graph.Node) *graph.Node {
	gate := Linear(scope, cfg, "gate_proj", x, cfg.FFNSize)
	up := Linear(scope, cfg, "up_proj", x, cfg.FFNSize)
	activated := graph.Mul(graph.Mul(gate, graph.Sigmoid(gate)), up)
	return Linear(scope, cfg, "down_proj", activated, cfg.DModel)
}

// layerScopes are the scopes one unrolled decoder layer reads its variables
// from: the projections of its unique layer, and its norm scales (the same
// scope when norms are shared).
type layerScopes struct {
	weights *model.Scope
	norms   *model.Scope
}

// decoderLayer is one pre-norm Llama layer on x [B, K, D]:
// a = x + Attn(RMSNorm₁(x)); out = a + MLP(RMSNorm₂(a)).
func decoderLayer(scopes layerScopes, cfg Config, x, positions *graph.Node, opts LayerAttention) (*graph.Node, LayerKV) {
	normed := RMSNorm(scopes.norms.At(scopeInputNorm), cfg, x)
	attended, kv := Attention(scopes.weights.At(scopeAttention), cfg, normed, positions, opts)
	hidden := graph.Add(x, attended)

	normed = RMSNorm(scopes.norms.At(scopePostAttnNorm), cfg, hidden)
	out := graph.Add(hidden, SwiGLU(scopes.weights.At(scopeMLP), cfg, normed))
	return out, kv
}

// EmbedTokens looks up tokens [B, L] int32 in the embedding matrix [V, D]
// (initialised N(0, InitStd²)) and returns [B, L, D].
func EmbedTokens(scope *model.Scope, cfg Config, tokens *graph.Node) *graph.Node {
	table := embeddingTable(scope, cfg, tokens.Graph())

	// indices: [B, L] → [B, L, 1], gathering rows of [V, D] into [B, L, D].
	return graph.Gather(table, graph.InsertAxes(tokens, -1))
}

// embeddingTable returns the [V, D] embedding variable of the model rooted at scope.
func embeddingTable(scope *model.Scope, cfg Config, g *graph.Graph) *graph.Node {
	dtype := activationDType(cfg)
	embeddingScope := scope.At(scopeEmbedding).WithInitializer(normalInitializer(scope, cfg.InitStd, dtype))
	return embeddingScope.VariableWithShape(varEmbeddingMatrix, shapes.Make(dtype, cfg.VocabSize, cfg.DModel)).NodeValue(g)
}

// lmHead maps hidden [B, L, D] to logits [B, L, V] in float32 (float64 for
// float64 models), through the
// transposed embedding matrix when embeddings are tied.
func lmHead(scope *model.Scope, cfg Config, hidden *graph.Node) *graph.Node {
	var logits *graph.Node
	if cfg.TiedEmbeddings {
		table := embeddingTable(scope, cfg, hidden.Graph())
		logits = graph.Einsum("bld,vd->blv", hidden, table)
	} else {
		logits = Linear(scope, cfg, scopeLMHead, hidden, cfg.VocabSize)
	}
	return graph.ConvertDType(logits, accumulationDType(logits.DType()))
}
