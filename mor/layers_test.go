package mor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/internal/testutil"
)

// randomTensor returns a float32 tensor of the given dimensions with N(0, 1) values.
func randomTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	size := 1
	for _, d := range dims {
		size *= d
	}
	values := make([]float32, size)
	for i := range values {
		values[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(values, dims...)
}

// gatherRows returns x[b, indices[b][k], ...] for a [B, L, rest...] tensor, as [B, K, rest...].
func gatherRows(x *tensors.Tensor, indices [][]int32) *tensors.Tensor {
	dims := x.Shape().Dimensions
	rowSize := 1
	for _, d := range dims[2:] {
		rowSize *= d
	}
	values := flat32(x)
	var out []float32
	for b, row := range indices {
		for _, index := range row {
			start := (b*dims[1] + int(index)) * rowSize
			out = append(out, values[start:start+rowSize]...)
		}
	}
	outDims := append([]int{len(indices), len(indices[0])}, dims[2:]...)
	return tensors.FromFlatDataAndDimensions(out, outDims...)
}

// ropeReference rotates one head vector at position by the rotate-half
// formula, in float64: for i < d/2 with angle a = pos·θ^(−2i/d),
// out[i] = x[i]·cos a − x[i+d/2]·sin a and out[i+d/2] = x[i+d/2]·cos a + x[i]·sin a.
func ropeReference(x []float32, position int, theta float64) []float64 {
	d := len(x)
	out := make([]float64, d)
	for i := range d / 2 {
		angle := float64(position) * math.Pow(theta, -2*float64(i)/float64(d))
		c, s := math.Cos(angle), math.Sin(angle)
		out[i] = float64(x[i])*c - float64(x[i+d/2])*s
		out[i+d/2] = float64(x[i+d/2])*c + float64(x[i])*s
	}
	return out
}

func runRoPE(t *testing.T, b compute.Backend, x *tensors.Tensor, positions [][]int32, theta float64) []float32 {
	t.Helper()
	fn := func(_ *model.Scope, inputs []*graph.Node) []*graph.Node {
		return []*graph.Node{ApplyRoPE(inputs[0], inputs[1], theta)}
	}
	return flat32(runGraph(t, b, model.NewStore(), fn, x, positions)[0])
}

func TestRoPEMatchesRotateHalfFormula(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		const heads, headDim, theta = 2, 8, 10000.0
		positions := [][]int32{{0, 5, 1023}}
		x := randomTensor(rand.New(rand.NewPCG(1, 1)), 1, 3, heads, headDim)
		got := runRoPE(t, b, x, positions, theta)

		values := flat32(x)
		for k, position := range positions[0] {
			for h := range heads {
				start := (k*heads + h) * headDim
				want := ropeReference(values[start:start+headDim], int(position), theta)
				for i := range headDim {
					if diff := math.Abs(float64(got[start+i]) - want[i]); diff > 1e-4 {
						t.Errorf("position %d head %d element %d: RoPE %g, formula %g", position, h, i, got[start+i], want[i])
					}
				}
			}
		}
	})
}

func TestRoPEGatheredPositionsMatchFullSequence(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		const length, heads, headDim = 9, 2, 8
		x := randomTensor(rand.New(rand.NewPCG(2, 2)), 2, length, heads, headDim)
		all := [][]int32{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {0, 1, 2, 3, 4, 5, 6, 7, 8}}
		selected := [][]int32{{1, 4, 5, 8}, {0, 2, 3, 7}}

		full := tensors.FromFlatDataAndDimensions(runRoPE(t, b, x, all, 10000), 2, length, heads, headDim)
		want := flat32(gatherRows(full, selected))
		got := runRoPE(t, b, gatherRows(x, selected), selected, 10000)

		if diff, at := maxAbsDiff(got, want); diff > 1e-6 {
			t.Errorf("RoPE on gathered tokens differs from the full sequence by %g at %d", diff, at)
		}
	})
}

func TestRoPEScoresDependOnOffsetOnly(t *testing.T) {
	b := testutil.Backend(t, "go")
	const headDim = 16
	rng := rand.New(rand.NewPCG(3, 3))
	q, k := randomTensor(rng, 1, 1, 1, headDim), randomTensor(rng, 1, 1, 1, headDim)
	dot := func(queryPosition, keyPosition int32) float64 {
		rq := runRoPE(t, b, q, [][]int32{{queryPosition}}, 10000)
		rk := runRoPE(t, b, k, [][]int32{{keyPosition}}, 10000)
		sum := 0.0
		for i := range rq {
			sum += float64(rq[i]) * float64(rk[i])
		}
		return sum
	}

	base := dot(7, 3)
	for _, shift := range []int32{1, 50, 700} {
		if shifted := dot(7+shift, 3+shift); math.Abs(shifted-base) > 1e-4 {
			t.Errorf("q·k at positions (7, 3) is %g but at (%d, %d) is %g", base, 7+shift, 3+shift, shifted)
		}
	}
	if other := dot(7, 5); math.Abs(other-base) < 1e-4 {
		t.Errorf("q·k at offset 4 (%g) equals q·k at offset 2 (%g); positions have no effect", base, other)
	}
}

// attentionReference is causal grouped-query attention in float64 loops.
// Query head h uses KV head h/(H/KVH), and key j is allowed for query i when
// keyPositions[j] ≤ queryPositions[i] and valid[j].
func attentionReference(q, k, v []float32, queryPositions, keyPositions [][]int32, valid [][]bool,
	batch, queries, keys, heads, kvHeads, headDim int) []float64 {
	out := make([]float64, batch*queries*heads*headDim)
	group := heads / kvHeads
	for b := range batch {
		for i := range queries {
			for h := range heads {
				kvh := h / group
				scores := make([]float64, keys)
				maxScore := math.Inf(-1)
				for j := range keys {
					scores[j] = math.Inf(-1)
					if keyPositions[b][j] > queryPositions[b][i] || (valid != nil && !valid[b][j]) {
						continue
					}
					sum := 0.0
					for d := range headDim {
						sum += float64(q[((b*queries+i)*heads+h)*headDim+d]) * float64(k[((b*keys+j)*kvHeads+kvh)*headDim+d])
					}
					scores[j] = sum / math.Sqrt(float64(headDim))
					maxScore = math.Max(maxScore, scores[j])
				}
				total := 0.0
				for j := range keys {
					scores[j] = math.Exp(scores[j] - maxScore)
					total += scores[j]
				}
				for j := range keys {
					for d := range headDim {
						out[((b*queries+i)*heads+h)*headDim+d] += scores[j] / total * float64(v[((b*keys+j)*kvHeads+kvh)*headDim+d])
					}
				}
			}
		}
	}
	return out
}

func TestAttendMatchesReference(t *testing.T) {
	const batch, queries, keys, heads, kvHeads, headDim = 2, 3, 5, 4, 2, 4
	rng := rand.New(rand.NewPCG(4, 4))
	q := randomTensor(rng, batch, queries, heads, headDim)
	k := randomTensor(rng, batch, keys, kvHeads, headDim)
	v := randomTensor(rng, batch, keys, kvHeads, headDim)
	// Compacted positions: queries and keys sit at non-contiguous original positions.
	queryPositions := [][]int32{{2, 5, 9}, {1, 4, 6}}
	keyPositions := [][]int32{{0, 2, 5, 7, 9}, {1, 3, 4, 6, 8}}
	valid := [][]bool{{true, false, true, true, true}, {true, true, true, false, true}}

	want := attentionReference(flat32(q), flat32(k), flat32(v), queryPositions, keyPositions, valid,
		batch, queries, keys, heads, kvHeads, headDim)
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		fn := func(_ *model.Scope, in []*graph.Node) []*graph.Node {
			kv := LayerKV{Keys: in[1], Values: in[2], Positions: in[4], Valid: in[5]}
			return []*graph.Node{attend(in[0], in[3], kv, kvHeads)}
		}
		got := flat32(runGraph(t, b, model.NewStore(), fn, q, k, v, queryPositions, keyPositions, valid)[0])
		for i := range want {
			if diff := math.Abs(float64(got[i]) - want[i]); diff > 1e-5 {
				t.Fatalf("element %d: attention %g, reference %g", i, got[i], want[i])
			}
		}
	})
}

func TestCompactedBlockEqualsMaskedBlock(t *testing.T) {
	// Rows keep different subsets of the same size, so the compacted batch has a static shape.
	cfg := testConfig(Cycle, 4, 2) // a 2-layer block
	const length = 8
	active := [][]int32{{0, 2, 3, 6}, {1, 2, 4, 7}}
	keyMask := make([][]bool, len(active))
	for b, row := range active {
		keyMask[b] = make([]bool, length)
		for _, position := range row {
			keyMask[b][position] = true
		}
	}
	positions := [][]int32{{0, 1, 2, 3, 4, 5, 6, 7}, {0, 1, 2, 3, 4, 5, 6, 7}}
	x := randomTensor(rand.New(rand.NewPCG(5, 5)), 2, length, cfg.DModel)
	compacted := gatherRows(x, active)

	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		fn := func(scope *model.Scope, in []*graph.Node) []*graph.Node {
			block := NewBlockFunc(scope, cfg)
			masked := block(in[0], in[1], BlockAttention{Step: 1, KeyMask: in[2]}).Output
			small := block(in[3], in[4], BlockAttention{Step: 1}).Output
			return []*graph.Node{masked, small}
		}
		out := runGraph(t, b, seededStore(t, 5), fn, x, positions, keyMask, compacted, active)
		want := flat32(gatherRows(out[0], active))
		got := flat32(out[1])
		if diff, at := maxAbsDiff(got, want); diff > 1e-5 {
			t.Errorf("compacted block output differs from the masked full-length block by %g at %d", diff, at)
		}

		// Without the mask the full-length block attends to inactive tokens too, so it must differ.
		unmaskedFn := func(scope *model.Scope, in []*graph.Node) []*graph.Node {
			return []*graph.Node{NewBlockFunc(scope, cfg)(in[0], in[1], BlockAttention{Step: 1}).Output}
		}
		unmasked := flat32(gatherRows(runGraph(t, b, seededStore(t, 5), unmaskedFn, x, positions)[0], active))
		if diff, _ := maxAbsDiff(unmasked, want); diff < 1e-4 {
			t.Errorf("the key mask has no effect: masked and unmasked outputs differ by only %g", diff)
		}
	})
}

func TestOverwriteSlotsReplacesMatchingPositions(t *testing.T) {
	b := testutil.Backend(t, "go")
	// Shared cache: 1 row, 4 slots at positions 0..3, 1 KV head of size 2, value = 10·slot + element.
	shared := tensors.FromValue([][][][]float32{{{{0, 1}}, {{10, 11}}, {{20, 21}}, {{30, 31}}}})
	fresh := tensors.FromValue([][][][]float32{{{{-1, -2}}, {{-3, -4}}, {{-5, -6}}}})
	fn := func(_ *model.Scope, in []*graph.Node) []*graph.Node {
		kv := overwriteSlots(
			LayerKV{Keys: in[0], Values: in[0], Positions: in[1]},
			LayerKV{Keys: in[2], Values: in[2], Positions: in[3], Valid: in[4]},
		)
		return []*graph.Node{kv.Keys, kv.Values}
	}
	// Fresh tokens at positions 1, 3 and 2; the one at 2 is not valid, so slot 2 keeps its value.
	out := runGraph(t, b, model.NewStore(), fn, shared, [][]int32{{0, 1, 2, 3}}, fresh, [][]int32{{1, 3, 2}}, [][]bool{{true, true, false}})
	want := []float32{0, 1, -1, -2, 20, 21, -3, -4}
	for i, name := range []string{"keys", "values"} {
		got := flat32(out[i])
		for j := range want {
			if got[j] != want[j] {
				t.Errorf("%s element %d = %g, want %g (all: %v)", name, j, got[j], want[j], got)
			}
		}
	}
}

func TestRMSNormHandValues(t *testing.T) {
	cfg := testConfig(NoSharing, 1, 1)
	cfg.NormEpsilon = 1e-5
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		fn := func(scope *model.Scope, in []*graph.Node) []*graph.Node {
			return []*graph.Node{RMSNorm(scope.At("norm"), cfg, in[0])}
		}
		got := flat32(runGraph(t, b, model.NewStore(), fn, [][]float32{{1, 2, 3, 4}, {0, 0, 0, 0}})[0])
		// mean(x²) = 7.5, so x / sqrt(7.5 + 1e-5); a zero row stays zero.
		rms := math.Sqrt(7.5 + 1e-5)
		want := []float64{1 / rms, 2 / rms, 3 / rms, 4 / rms, 0, 0, 0, 0}
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-6 {
				t.Errorf("element %d = %g, want %g", i, got[i], want[i])
			}
		}
	})
}

// lossReference computes the next-token NLL of logits [B][L][V] in float64
// with an explicitly shifted log-softmax.
func lossReference(logits [][][]float64, tokens [][]int32, mask [][]bool) (mean float64, perRow []float64, logProbs [][]float64) {
	total, count := 0.0, 0.0
	for b := range logits {
		rowTotal, rowCount := 0.0, 0.0
		logProbs = append(logProbs, nil)
		for t := 0; t+1 < len(logits[b]); t++ {
			row := logits[b][t]
			maxLogit := math.Inf(-1)
			for _, v := range row {
				maxLogit = math.Max(maxLogit, v)
			}
			sum := 0.0
			for _, v := range row {
				sum += math.Exp(v - maxLogit)
			}
			logProb := row[tokens[b][t+1]] - maxLogit - math.Log(sum)
			logProbs[b] = append(logProbs[b], logProb)
			if mask == nil || mask[b][t+1] {
				rowTotal -= logProb
				rowCount++
			}
		}
		total += rowTotal
		count += rowCount
		perRow = append(perRow, rowTotal/math.Max(rowCount, 1))
	}
	return total / count, perRow, logProbs
}

func TestLMLossMatchesReference(t *testing.T) {
	const batch, length, vocab = 2, 5, 7
	rng := rand.New(rand.NewPCG(6, 6))
	tokens := randomTokens(rng, batch, length, vocab)
	mask := [][]bool{{true, true, false, true, true}, {false, false, true, true, false}}

	for _, offset := range []float64{0, 1e4} { // 1e4 checks that the log-softmax does not overflow
		logits := make([][][]float64, batch)
		var flat []float32
		for b := range logits {
			logits[b] = make([][]float64, length)
			for i := range logits[b] {
				logits[b][i] = make([]float64, vocab)
				for v := range logits[b][i] {
					logits[b][i][v] = 3*rng.NormFloat64() + offset
					flat = append(flat, float32(logits[b][i][v]))
					logits[b][i][v] = float64(float32(logits[b][i][v]))
				}
			}
		}
		wantMean, wantRows, wantLogProbs := lossReference(logits, tokens, mask)
		tolerance := 1e-5 * (1 + offset/100)

		testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
			fn := func(_ *model.Scope, in []*graph.Node) []*graph.Node {
				loss := LMLoss(in[0], in[1], in[2])
				return []*graph.Node{loss.Mean, loss.PerRow, loss.TargetLogProbs, loss.Count}
			}
			out := runGraph(t, b, model.NewStore(), fn, tensors.FromFlatDataAndDimensions(flat, batch, length, vocab), tokens, mask)
			if got := flat32(out[0])[0]; math.Abs(float64(got)-wantMean) > tolerance {
				t.Errorf("offset %g: mean loss %g, reference %g", offset, got, wantMean)
			}
			for row, got := range flat32(out[1]) {
				if math.Abs(float64(got)-wantRows[row]) > tolerance {
					t.Errorf("offset %g: row %d loss %g, reference %g", offset, row, got, wantRows[row])
				}
			}
			logProbs := flat32(out[2])
			for row := range batch {
				for i := range length - 1 {
					if got := logProbs[row*(length-1)+i]; math.Abs(float64(got)-wantLogProbs[row][i]) > tolerance {
						t.Errorf("offset %g: log-prob at row %d position %d is %g, reference %g", offset, row, i, got, wantLogProbs[row][i])
					}
				}
			}
			if got := flat32(out[3])[0]; got != 5 {
				t.Errorf("scored target count %g, want 5 (mask[:, 1:] has 5 true entries)", got)
			}
		})
	}
}

func TestLMLossWithoutMaskScoresEveryTarget(t *testing.T) {
	b := testutil.Backend(t, "go")
	// Uniform logits over V = 4 give NLL ln 4 at every position.
	logits := tensors.FromShape(shapes.Make(dtypes.Float32, 2, 3, 4))
	fn := func(_ *model.Scope, in []*graph.Node) []*graph.Node {
		loss := LMLoss(in[0], in[1], nil)
		return []*graph.Node{loss.Mean, loss.Count}
	}
	out := runGraph(t, b, model.NewStore(), fn, logits, [][]int32{{0, 1, 2}, {3, 2, 1}})
	if got := flat32(out[0])[0]; math.Abs(float64(got)-math.Log(4)) > 1e-6 {
		t.Errorf("loss of uniform logits %g, want ln 4 = %g", got, math.Log(4))
	}
	if got := flat32(out[1])[0]; got != 4 {
		t.Errorf("scored target count %g, want 4 (2 rows × 2 predicted positions)", got)
	}
}

// matmulReference returns x·W for x [rows, in] and W [in, out], row-major, in float64.
func matmulReference(x []float64, w []float32, rows, in, out int) []float64 {
	result := make([]float64, rows*out)
	for r := range rows {
		for o := range out {
			sum := 0.0
			for i := range in {
				sum += x[r*in+i] * float64(w[i*out+o])
			}
			result[r*out+o] = sum
		}
	}
	return result
}

// rmsNormReference normalises each row of x [rows, d] and multiplies by scale.
func rmsNormReference(x []float64, scale []float32, rows, d int, epsilon float64) []float64 {
	out := make([]float64, len(x))
	for r := range rows {
		meanSquare := 0.0
		for i := range d {
			meanSquare += x[r*d+i] * x[r*d+i] / float64(d)
		}
		for i := range d {
			out[r*d+i] = x[r*d+i] / math.Sqrt(meanSquare+epsilon) * float64(scale[i])
		}
	}
	return out
}

// ropeRowsReference applies ropeReference to every head of a [L, heads·headDim] matrix.
func ropeRowsReference(x []float64, length, heads, headDim int, theta float64) []float32 {
	out := make([]float32, len(x))
	for position := range length {
		for h := range heads {
			start := (position*heads + h) * headDim
			head := make([]float32, headDim)
			for i := range head {
				head[i] = float32(x[start+i])
			}
			for i, v := range ropeReference(head, position, theta) {
				out[start+i] = float32(v)
			}
		}
	}
	return out
}

// decoderLayerReference is one pre-norm Llama layer on x [L, D] for a single
// sequence, written as plain loops from the weights in store under prefix.
func decoderLayerReference(store *model.Store, prefix string, cfg Config, x []float64, length int) []float64 {
	weight := func(name string) []float32 { return flat32(store.GetVariable(prefix + name).MustValue()) }
	d, heads, kvHeads, headDim := cfg.DModel, cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim
	positions := make([]int32, length)
	for i := range positions {
		positions[i] = int32(i)
	}

	normed := rmsNormReference(x, weight("/input_layernorm/scale"), length, d, cfg.NormEpsilon)
	q := ropeRowsReference(matmulReference(normed, weight("/self_attn/q_proj/weights"), length, d, heads*headDim), length, heads, headDim, cfg.RoPETheta)
	k := ropeRowsReference(matmulReference(normed, weight("/self_attn/k_proj/weights"), length, d, kvHeads*headDim), length, kvHeads, headDim, cfg.RoPETheta)
	v64 := matmulReference(normed, weight("/self_attn/v_proj/weights"), length, d, kvHeads*headDim)
	v := make([]float32, len(v64))
	for i := range v {
		v[i] = float32(v64[i])
	}
	attended := attentionReference(q, k, v, [][]int32{positions}, [][]int32{positions}, nil, 1, length, length, heads, kvHeads, headDim)
	projected := matmulReference(attended, weight("/self_attn/o_proj/weights"), length, heads*headDim, d)
	hidden := make([]float64, len(x))
	for i := range hidden {
		hidden[i] = x[i] + projected[i]
	}

	normed = rmsNormReference(hidden, weight("/post_attention_layernorm/scale"), length, d, cfg.NormEpsilon)
	gate := matmulReference(normed, weight("/mlp/gate_proj/weights"), length, d, cfg.FFNSize)
	up := matmulReference(normed, weight("/mlp/up_proj/weights"), length, d, cfg.FFNSize)
	for i := range gate {
		gate[i] = gate[i] / (1 + math.Exp(-gate[i])) * up[i] // SiLU(gate) ⊙ up
	}
	down := matmulReference(gate, weight("/mlp/down_proj/weights"), length, cfg.FFNSize, d)
	for i := range hidden {
		hidden[i] += down[i]
	}
	return hidden
}

func TestDecoderLayerMatchesLoopReference(t *testing.T) {
	cfg := testConfig(NoSharing, 1, 1)
	cfg.InitStd = 0.3 // large enough weights that every sub-layer changes the output visibly
	const length = 6
	x := randomTensor(rand.New(rand.NewPCG(7, 7)), 1, length, cfg.DModel)
	store := seededStore(t, 7)

	fn := func(scope *model.Scope, in []*graph.Node) []*graph.Node {
		scopes := layerScopes{weights: scope.At("layer"), norms: scope.At("layer")}
		out, _ := decoderLayer(scopes, cfg, in[0], in[1], LayerAttention{})
		return []*graph.Node{out}
	}
	got := flat32(runGraph(t, testutil.Backend(t, "go"), store, fn, x, [][]int32{{0, 1, 2, 3, 4, 5}})[0])

	input := make([]float64, length*cfg.DModel)
	for i, v := range flat32(x) {
		input[i] = float64(v)
	}
	want := decoderLayerReference(store, "/layer", cfg, input, length)
	for i := range want {
		if diff := math.Abs(float64(got[i]) - want[i]); diff > 1e-4*(1+math.Abs(want[i])) {
			t.Fatalf("element %d: decoder layer %g, loop reference %g", i, got[i], want[i])
		}
	}
}
