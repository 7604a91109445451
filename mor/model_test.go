package mor

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/gomor/gomor/internal/testutil"
	"github.com/gomor/gomor/routers"
)

// testConfig is a small model with grouped-query attention (4 heads, 2 KV
// heads) and an odd vocabulary size, so shape mix-ups surface as errors.
func testConfig(sharing SharingScheme, numLayers, numRecursions int) Config {
	return Config{
		Name:           "test",
		VocabSize:      61,
		DModel:         32,
		NumHeads:       4,
		NumKVHeads:     2,
		HeadDim:        8,
		FFNSize:        48,
		NumLayers:      numLayers,
		MaxSeqLen:      64,
		RoPETheta:      10000,
		NormEpsilon:    1e-5,
		TiedEmbeddings: true,
		InitStd:        0.1,
		Sharing:        sharing,
		ShareNorms:     true,
		NumRecursions:  numRecursions,
		DType:          "float32",
		KV:             RecursionWiseKV,
	}
}

// graphFn builds a graph from a root scope and its inputs.
type graphFn = func(scope *model.Scope, inputs []*graph.Node) []*graph.Node

// runGraph builds and runs fn once on backend b with the variables of store.
// Tensor inputs are copied first, because a tensor placed on one backend
// cannot be used on another.
func runGraph(t testing.TB, b compute.Backend, store *model.Store, fn graphFn, inputs ...any) []*tensors.Tensor {
	t.Helper()
	for i, input := range inputs {
		if tensor, ok := input.(*tensors.Tensor); ok {
			clone, err := tensor.LocalClone()
			if err != nil {
				t.Fatalf("copying input %d failed: %v", i, err)
			}
			inputs[i] = clone
		}
	}
	exec, err := model.NewExec(b, store, fn)
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	defer exec.Finalize()
	outputs, err := exec.Call(inputs...)
	if err != nil {
		t.Fatalf("running the graph failed: %v", err)
	}
	return outputs
}

// seededStore returns an empty store whose variable initialisation is deterministic.
func seededStore(t testing.TB, seed int64) *model.Store {
	t.Helper()
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(seed); err != nil {
		t.Fatalf("seeding the store failed: %v", err)
	}
	return store
}

// randomTokens returns a [batch, length] int32 batch of tokens below vocab.
func randomTokens(rng *rand.Rand, batch, length, vocab int) [][]int32 {
	tokens := make([][]int32, batch)
	for b := range tokens {
		tokens[b] = make([]int32, length)
		for i := range tokens[b] {
			tokens[b][i] = int32(rng.IntN(vocab))
		}
	}
	return tokens
}

// flat32 copies a float32 tensor's values.
func flat32(t *tensors.Tensor) []float32 {
	return tensors.MustCopyFlatData[float32](t)
}

// maxAbsDiff returns the largest |a[i] − b[i]| and its index.
func maxAbsDiff(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		if d := math.Abs(float64(a[i]) - float64(b[i])); d > worst || at < 0 {
			worst, at = d, i
		}
	}
	return worst, at
}

// forwardLogits runs Forward on tokens and returns the logits tensor.
func forwardLogits(t testing.TB, b compute.Backend, store *model.Store, cfg Config, opts ForwardOptions, tokens [][]int32) *tensors.Tensor {
	t.Helper()
	fn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		return []*graph.Node{Forward(scope, cfg, inputs[0], opts).Logits}
	}
	return runGraph(t, b, store, fn, tokens)[0]
}

// newLogitsExec returns an executor of Forward's logits, compiled once per
// input shape, for tests that run the same model on several batches.
func newLogitsExec(t testing.TB, b compute.Backend, store *model.Store, cfg Config) *model.Exec {
	t.Helper()
	exec, err := model.NewExec(b, store, func(scope *model.Scope, tokens *graph.Node) *graph.Node {
		return Forward(scope, cfg, tokens, ForwardOptions{}).Logits
	})
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	t.Cleanup(exec.Finalize)
	return exec
}

func TestForwardCausal(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"vanilla", testConfig(NoSharing, 3, 1)},
		{"recursive-middle-cycle", testConfig(MiddleCycle, 8, 3)},
		{"recursive-cycle-kv-sharing", func() Config {
			c := testConfig(Cycle, 4, 2)
			c.KV = SharedKV
			return c
		}()},
	}
	const length, changed = 10, 6
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				exec := newLogitsExec(t, b, seededStore(t, 1), tc.cfg)
				tokens := randomTokens(rand.New(rand.NewPCG(1, 2)), 2, length, tc.cfg.VocabSize)
				before := flat32(exec.MustCall1(tokens))

				for row := range tokens {
					tokens[row][changed] = (tokens[row][changed] + 7) % int32(tc.cfg.VocabSize)
				}
				after := flat32(exec.MustCall1(tokens))

				vocab := tc.cfg.VocabSize
				for row := range tokens {
					for pos := range length {
						start := (row*length + pos) * vocab
						diff, _ := maxAbsDiff(before[start:start+vocab], after[start:start+vocab])
						if pos < changed && diff > 1e-6 {
							t.Errorf("row %d position %d: logits changed by %g after changing token %d", row, pos, diff, changed)
						}
						if pos >= changed && diff < 1e-6 {
							t.Errorf("row %d position %d: logits unchanged (diff %g) after changing token %d", row, pos, diff, changed)
						}
					}
				}
			})
		}
	})
}

// perLayerParams is the hand count of one decoder layer:
// q, o: D·H·HeadDim each; k, v: D·KVH·HeadDim each; SwiGLU: 3·D·F; norms: 2·D.
func perLayerParams(cfg Config) int {
	d := cfg.DModel
	return 2*d*cfg.NumHeads*cfg.HeadDim + 2*d*cfg.NumKVHeads*cfg.HeadDim + 3*d*cfg.FFNSize + 2*d
}

// trainableVariables returns the trainable variables of store.
func trainableVariables(store *model.Store) map[string]shapes.Shape {
	found := map[string]shapes.Shape{}
	for v := range store.IterVariables() {
		if v.Trainable {
			found[v.Path()] = v.Shape()
		}
	}
	return found
}

func TestRecursiveHasOnlyUniqueLayerVariables(t *testing.T) {
	b := testutil.Backend(t, "go")
	cases := []struct {
		name         string
		cfg          Config
		uniqueLayers int // sets of q, k, v, o, gate, up and down projections
		normPairs    int // pairs of RMSNorm scales: one per unique layer, or one per unrolled layer when unshared
	}{
		{"vanilla", testConfig(NoSharing, 4, 1), 4, 4},
		{"cycle-3x2", testConfig(Cycle, 6, 3), 2, 2},
		{"middle-cycle-1+2x3+1", testConfig(MiddleCycle, 8, 3), 4, 4},
		{"middle-sequence-1+2x3+1", testConfig(MiddleSequence, 8, 3), 4, 4},
		{"middle-cycle-unshared-norms", func() Config {
			c := testConfig(MiddleCycle, 8, 3)
			c.ShareNorms = false
			return c
		}(), 4, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := seededStore(t, 1)
			tokens := randomTokens(rand.New(rand.NewPCG(3, 4)), 1, 5, tc.cfg.VocabSize)
			forwardLogits(t, b, store, tc.cfg, ForwardOptions{}, tokens)

			// Embedding and final norm, 7 projections per unique layer, 2 scales per norm pair.
			variables := trainableVariables(store)
			if want := 2 + 7*tc.uniqueLayers + 2*tc.normPairs; len(variables) != want {
				t.Errorf("%d trainable variables, want %d:\n%s", len(variables), want, VariableTree(store))
			}

			total := 0
			for _, shape := range variables {
				total += shape.Size()
			}
			d := tc.cfg.DModel
			embedding := tc.cfg.VocabSize * d
			projections := perLayerParams(tc.cfg) - 2*d
			want := embedding + d + tc.uniqueLayers*projections + tc.normPairs*2*d
			if total != want {
				t.Errorf("%d trainable parameters, want %d (embedding %d + final norm %d + %d × %d projections + %d × %d norms)",
					total, want, embedding, d, tc.uniqueLayers, projections, tc.normPairs, 2*d)
			}
			if counted := CountParams(tc.cfg).Total; int64(total) != counted {
				t.Errorf("%d trainable parameters, CountParams gives %d", total, counted)
			}
		})
	}
}

func TestParamCount360MRecursive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the 360M graph; skipped with -short")
	}
	// SmolLM-360M dimensions with the 1+10+1 Middle-Cycle layout. The
	// Mixture-of-Recursions paper (Bae et al., 2025, Table 6 and §1.2 layouts)
	// reports 118.0M non-embedding parameters for it.
	cfg, err := Preset("recursive-360m-r3")
	if err != nil {
		t.Fatalf("preset recursive-360m-r3: %v", err)
	}

	b := testutil.Backend(t, "go")
	store := model.NewStore()
	exec, err := model.NewExec(b, store, func(scope *model.Scope, tokens *graph.Node) *graph.Node {
		return Forward(scope, cfg, tokens, ForwardOptions{}).Logits
	})
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	defer exec.Finalize()
	// Compile builds the graph and creates the variables with their shapes,
	// without allocating their values.
	if _, err := exec.Compile(shapes.Make(dtypes.Int32, 1, 4)); err != nil {
		t.Fatalf("compiling the 360M graph failed: %v", err)
	}

	// That count leaves out the embedding and the final norm.
	nonEmbedding := 0
	for path, shape := range trainableVariables(store) {
		if path != "/"+scopeEmbedding+"/"+varEmbeddingMatrix && path != "/"+scopeFinalNorm+"/"+varNormScale {
			nonEmbedding += shape.Size()
		}
	}
	// 12 unique layers × 9,832,320 by the hand formula.
	if want := 12 * 9_832_320; nonEmbedding != want {
		t.Errorf("non-embedding parameters = %d, want 12 × 9,832,320 = %d", nonEmbedding, want)
	}
	if got := math.Round(float64(nonEmbedding)/1e5) / 10; got != 118.0 {
		t.Errorf("non-embedding parameters = %.1fM, the paper reports 118.0M", got)
	}
	if counted := NonEmbeddingParams(cfg); int64(nonEmbedding) != counted {
		t.Errorf("non-embedding parameters = %d, NonEmbeddingParams gives %d", nonEmbedding, counted)
	}
}

func TestForwardRoutedReportsDepthAndLosses(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(MiddleCycle, 5, 3)
	router := routers.DefaultExpertChoice()
	cfg.Router = &router
	const batch, length = 2, 6

	fn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		out := Forward(scope, cfg, inputs[0], ForwardOptions{Training: true, Routing: SequenceTopK})
		if len(out.Steps) != cfg.NumRecursions {
			t.Errorf("routed forward recorded %d steps, want N_r = %d", len(out.Steps), cfg.NumRecursions)
		}
		if out.WeightedAuxLoss == nil || out.Metrics[MetricHiddenNorm] == nil {
			t.Fatalf("routed forward lacks the weighted auxiliary loss (%v) or the %s metric (%v)",
				out.WeightedAuxLoss, MetricHiddenNorm, out.Metrics[MetricHiddenNorm])
		}
		return []*graph.Node{out.Logits, out.Depth, out.WeightedAuxLoss}
	}
	outputs := runGraph(t, b, seededStore(t, 13), fn, randomTokens(rand.New(rand.NewPCG(13, 14)), batch, length, cfg.VocabSize))

	if got := outputs[0].Shape().Dimensions; !slices.Equal(got, []int{batch, length, cfg.VocabSize}) {
		t.Errorf("logits shape %v, want [%d %d %d]", got, batch, length, cfg.VocabSize)
	}
	// Capacities 1, 2/3, 1/3 of L = 6 give 6, 4 and 2 tokens per row: depths sum to 12.
	depths := tensors.MustCopyFlatData[int32](outputs[1])
	for row := range batch {
		sum := int32(0)
		for _, depth := range depths[row*length : (row+1)*length] {
			if depth < 1 || depth > 3 {
				t.Errorf("row %d: depth %d outside 1..3 (all: %v)", row, depth, depths)
			}
			sum += depth
		}
		if sum != 12 {
			t.Errorf("row %d: depths sum to %d, want 6 + 4 + 2 = 12 (all: %v)", row, sum, depths)
		}
	}
}

func TestMaxDepthRunsThatManySteps(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(Cycle, 4, 2)
	store := seededStore(t, 5)
	tokens := randomTokens(rand.New(rand.NewPCG(5, 6)), 1, 6, cfg.VocabSize)

	// Independent path: the block applied by hand, steps times.
	byHand := func(steps int) []float32 {
		fn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
			positions := sequencePositions(inputs[0])
			hidden := EmbedTokens(scope, cfg, inputs[0])
			block := NewBlockFunc(scope, cfg)
			for range steps {
				hidden = block(hidden, positions, BlockAttention{}).Output
			}
			return []*graph.Node{lmHead(scope, cfg, RMSNorm(scope.At(scopeFinalNorm), cfg, hidden))}
		}
		return flat32(runGraph(t, b, store, fn, tokens)[0])
	}

	for _, depth := range []int{1, 2, 4} {
		got := flat32(forwardLogits(t, b, store, cfg, ForwardOptions{MaxDepth: depth}, tokens))
		diff, at := maxAbsDiff(got, byHand(depth))
		if diff > 1e-5 {
			t.Errorf("MaxDepth %d: logits differ from %d block applications by %g at %d", depth, depth, diff, at)
		}
	}
	full := flat32(forwardLogits(t, b, store, cfg, ForwardOptions{}, tokens))
	capped := flat32(forwardLogits(t, b, store, cfg, ForwardOptions{MaxDepth: 1}, tokens))
	if diff, _ := maxAbsDiff(full, capped); diff < 1e-6 {
		t.Errorf("MaxDepth 1 gives the same logits as N_r = 2 (diff %g)", diff)
	}
}

// lossAndGradient returns the mean LM loss and its gradient with respect to
// the variable at path, for a float64 copy of cfg.
func lossAndGradient(t *testing.T, b compute.Backend, store *model.Store, cfg Config, opts ForwardOptions, path string, tokens [][]int32) (float64, []float64) {
	t.Helper()
	fn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		loss := LMLoss(Forward(scope, cfg, inputs[0], opts).Logits, inputs[0], nil).Mean
		variable := scope.Store().GetVariable(path)
		gradient := graph.Gradient(loss, variable.NodeValue(loss.Graph()))[0]
		return []*graph.Node{loss, gradient}
	}
	outputs := runGraph(t, b, store, fn, tokens)
	return tensors.MustCopyFlatData[float64](outputs[0])[0], tensors.MustCopyFlatData[float64](outputs[1])
}

// lossAt returns the mean LM loss of the float64 model in store.
func lossAt(t *testing.T, b compute.Backend, store *model.Store, cfg Config, opts ForwardOptions, tokens [][]int32) float64 {
	t.Helper()
	fn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		return []*graph.Node{LMLoss(Forward(scope, cfg, inputs[0], opts).Logits, inputs[0], nil).Mean}
	}
	return tensors.MustCopyFlatData[float64](runGraph(t, b, store, fn, tokens)[0])[0]
}

func TestSharedGradientMatchesFiniteDifferences(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(MiddleCycle, 5, 3) // 1 + [1-layer block × 3] + 1
	cfg.DType = "float64"
	cfg.InitStd = 0.3
	tokens := randomTokens(rand.New(rand.NewPCG(7, 8)), 2, 6, cfg.VocabSize)
	const path = "/layer_01/mlp/up_proj/weights" // the shared block layer
	const epsilon = 1e-5

	store := seededStore(t, 7)
	_, gradient := lossAndGradient(t, b, store, cfg, ForwardOptions{}, path, tokens)
	_, gradientOneStep := lossAndGradient(t, b, store, cfg, ForwardOptions{MaxDepth: 1}, path, tokens)
	variable := store.GetVariable(path)
	original := tensors.MustCopyFlatData[float64](variable.MustValue())

	for _, index := range []int{0, 17, 300, len(original) - 1} {
		lossWith := func(delta float64) float64 {
			values := append([]float64(nil), original...)
			values[index] += delta
			variable.MustSetValue(tensors.FromFlatDataAndDimensions(values, variable.Shape().Dimensions...))
			return lossAt(t, b, store, cfg, ForwardOptions{}, tokens)
		}
		numeric := (lossWith(epsilon) - lossWith(-epsilon)) / (2 * epsilon)
		variable.MustSetValue(tensors.FromFlatDataAndDimensions(original, variable.Shape().Dimensions...))

		if diff := math.Abs(numeric - gradient[index]); diff > 1e-6+1e-4*math.Abs(numeric) {
			t.Errorf("element %d: autodiff gradient %.9g, finite difference %.9g (diff %.3g)", index, gradient[index], numeric, diff)
		}
		if math.Abs(gradient[index]-gradientOneStep[index]) < 1e-9 {
			t.Errorf("element %d: gradient with 3 steps equals the 1-step gradient %.9g; steps 2 and 3 contribute nothing",
				index, gradient[index])
		}
	}
}

// localStoreCopy copies the variables of store into a new store, in local
// memory, so that another backend can use them.
func localStoreCopy(t testing.TB, store *model.Store) *model.Store {
	t.Helper()
	copied := model.NewStore()
	for v := range store.IterVariables() {
		value, err := v.MustValue().LocalClone()
		if err != nil {
			t.Fatalf("copying variable %s failed: %v", v.Path(), err)
		}
		if _, err := copied.CreateVariable(v.Path(), value); err != nil {
			t.Fatalf("creating variable %s failed: %v", v.Path(), err)
		}
	}
	return copied
}

func TestBackendsAgree(t *testing.T) {
	cfg := testConfig(MiddleCycle, 5, 3)
	tokens := randomTokens(rand.New(rand.NewPCG(9, 10)), 2, 7, cfg.VocabSize)

	reference := seededStore(t, 9)
	want := flat32(forwardLogits(t, testutil.Backend(t, "go"), reference, cfg, ForwardOptions{}, tokens))

	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		store := localStoreCopy(t, reference)
		got := flat32(forwardLogits(t, b, store, cfg, ForwardOptions{}, tokens))
		if diff, at := maxAbsDiff(got, want); diff > 1e-4 {
			t.Errorf("logits on %s differ from the pure-Go backend by %g at %d", b.Name(), diff, at)
		}
	})
}

// textTokens returns the bytes of the shared tinyshakespeare text as tokens,
// or skips t when the data folder is absent.
func textTokens(t *testing.T) []int32 {
	t.Helper()
	data, err := os.ReadFile(testutil.DataFile(t, "text/tinyshakespeare.txt"))
	if err != nil {
		t.Fatalf("reading the text failed: %v", err)
	}
	tokens := make([]int32, len(data))
	for i, c := range data {
		tokens[i] = int32(c)
	}
	return tokens
}

// textBatch cuts batch windows of length tokens from text, starting at random offsets.
func textBatch(rng *rand.Rand, text []int32, batch, length int) [][]int32 {
	rows := make([][]int32, batch)
	for b := range rows {
		start := rng.IntN(len(text) - length)
		rows[b] = text[start : start+length]
	}
	return rows
}

func TestTinyModelLossFalls(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 50 steps; skipped with -short")
	}
	text := textTokens(t)
	cfg := testConfig(MiddleCycle, 4, 2)
	cfg.VocabSize, cfg.DModel, cfg.FFNSize, cfg.HeadDim = 256, 64, 128, 16
	cfg.NumLayers, cfg.NumRecursions = 4, 2 // 1 + [1-layer block × 2] + 1
	cfg.InitStd = 0.02
	const steps, batch, length = 50, 8, 32

	b := testutil.Backend(t, "go")
	store := seededStore(t, 11)
	adam := optimizer.Adam().LearningRate(3e-3).WeightDecay(0.1).Done()
	exec, err := model.NewExec(b, store, func(scope *model.Scope, tokens *graph.Node) *graph.Node {
		loss := LMLoss(Forward(scope, cfg, tokens, ForwardOptions{Training: true}).Logits, tokens, nil).Mean
		adam.UpdateGraph(scope, loss.Graph(), loss)
		return loss
	})
	if err != nil {
		t.Fatalf("creating the training step failed: %v", err)
	}
	defer exec.Finalize()

	rng := rand.New(rand.NewPCG(11, 12))
	losses := make([]float32, steps)
	for step := range steps {
		out, err := exec.Call(textBatch(rng, text, batch, length))
		if err != nil {
			t.Fatalf("training step %d failed: %v", step, err)
		}
		losses[step] = flat32(out[0])[0]
	}

	mean := func(values []float32) float64 {
		sum := 0.0
		for _, v := range values {
			sum += float64(v)
		}
		return sum / float64(len(values))
	}
	if initial := math.Log(256); math.Abs(float64(losses[0])-initial) > 0.1 {
		t.Errorf("loss at step 0 is %.3f, want near ln 256 = %.3f for a fresh model with small weights", losses[0], initial)
	}
	first, last := mean(losses[:5]), mean(losses[steps-5:])
	t.Logf("losses: %v", losses)
	if last > first-1.0 {
		t.Errorf("loss fell from %.3f (first 5 steps) to only %.3f (last 5 steps); want a drop of at least 1 nat. Losses: %v",
			first, last, losses)
	}
}

// BenchmarkTinyForwardBackward measures one forward and backward pass of the
// recursive-tiny-r3 preset on a [4, 256] batch, on the backend named by
// GOMLX_BACKEND (pure Go when unset).
func BenchmarkTinyForwardBackward(b *testing.B) {
	// The tiny CPU family: D 256, 4/2 heads, F 768, 1 + [2-layer block × 3] + 1, L 256.
	cfg, err := Preset("recursive-tiny-r3")
	if err != nil {
		b.Fatalf("preset recursive-tiny-r3: %v", err)
	}
	const batch, length = 4, 256

	config := os.Getenv("GOMLX_BACKEND")
	if config == "" {
		config = "go"
	}
	backend := testutil.Backend(b, config)
	store := seededStore(b, 1)
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, tokens *graph.Node) []*graph.Node {
		loss := LMLoss(Forward(scope, cfg, tokens, ForwardOptions{Training: true}).Logits, tokens, nil).Mean
		return append([]*graph.Node{loss}, scope.BuildTrainableVariablesGradientsGraph(loss)...)
	})
	if err != nil {
		b.Fatalf("creating the executor failed: %v", err)
	}
	defer exec.Finalize()
	tokens := randomTokens(rand.New(rand.NewPCG(1, 1)), batch, length, cfg.VocabSize)
	if _, err := exec.Call(tokens); err != nil {
		b.Fatalf("warm-up call failed: %v", err)
	}

	b.ResetTimer()
	for range b.N {
		if _, err := exec.Call(tokens); err != nil {
			b.Fatalf("call failed: %v", err)
		}
	}
	b.ReportMetric(float64(b.N*batch*length)/b.Elapsed().Seconds(), "tokens/s")
}

func TestSharingMapFollowsLayerMap(t *testing.T) {
	for _, tc := range []struct {
		sharing                  SharingScheme
		numLayers, numRecursions int
	}{
		{NoSharing, 4, 1}, {Cycle, 6, 3}, {Sequence, 6, 3}, {MiddleCycle, 8, 3}, {MiddleSequence, 8, 3},
	} {
		cfg := testConfig(tc.sharing, tc.numLayers, tc.numRecursions)
		entries := SharingMap(cfg)
		layerMap := cfg.LayerMap()
		if len(entries) != cfg.NumLayers {
			t.Errorf("%s: %d entries, want N_L = %d", tc.sharing, len(entries), cfg.NumLayers)
			continue
		}
		for l, entry := range entries {
			if entry.Unrolled != l || entry.Unique != layerMap[l] {
				t.Errorf("%s: entry %d is unrolled %d → unique %d, LayerMap gives %d → %d",
					tc.sharing, l, entry.Unrolled, entry.Unique, l, layerMap[l])
			}
		}
	}
}

func TestDescribeSharingShowsTiedLayers(t *testing.T) {
	cfg := testConfig(MiddleCycle, 8, 3)
	cfg.ShareNorms = false
	text := DescribeSharing(cfg)
	for _, want := range []string{
		"/layer_01 is tied across unrolled layers [1 3 5]",
		"/layer_02 is tied across unrolled layers [2 4 6]",
		"recursion 2, block layer 1",
		"/unrolled_04",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("DescribeSharing output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "/layer_00 is tied") || strings.Contains(text, "/unrolled_00") {
		t.Errorf("DescribeSharing ties the unique first layer or gives it per-step norms:\n%s", text)
	}
}

func TestVariableTreeListsShapes(t *testing.T) {
	cfg := testConfig(Cycle, 4, 2)
	store := seededStore(t, 15)
	forwardLogits(t, testutil.Backend(t, "go"), store, cfg, ForwardOptions{}, [][]int32{{1, 2, 3}})
	text := VariableTree(store)
	for _, want := range []string{
		"/layer_01/mlp/up_proj/weights", "(Float32)[32, 48]", "/embed_tokens/embeddings", "(Float32)[61, 32]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("VariableTree output lacks %q:\n%s", want, text)
		}
	}
	// 2 unique layers × 9 variables + embedding + final norm, plus the random-number state.
	if want := "21 variables"; !strings.Contains(text, want) {
		t.Errorf("VariableTree output lacks %q:\n%s", want, text)
	}
}
