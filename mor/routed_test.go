package mor

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/internal/testutil"
	"github.com/gomor/gomor/routers"
)

const routedTolerance = 1e-4

// routedTestConfig returns a tiny Cycle model whose shared block is one layer
// applied numRecursions times, with the given router and KV strategy.
func routedTestConfig(numRecursions int, kv KVStrategy, router routers.Config) Config {
	return Config{
		Name:           "routed-test",
		VocabSize:      61,
		DModel:         16,
		NumHeads:       2,
		NumKVHeads:     1,
		HeadDim:        8,
		FFNSize:        24,
		NumLayers:      numRecursions,
		MaxSeqLen:      64,
		RoPETheta:      10000,
		NormEpsilon:    1e-5,
		TiedEmbeddings: true,
		InitStd:        0.2,
		Sharing:        Cycle,
		ShareNorms:     true,
		NumRecursions:  numRecursions,
		DType:          "float32",
		Router:         &router,
		KV:             kv,
	}
}

// expertRouter returns the final expert-choice recipe with a router init
// large enough that gates of different tokens differ clearly.
func expertRouter(capacities ...float64) routers.Config {
	router := routers.DefaultExpertChoice()
	router.Capacities = capacities
	return router
}

// randomHidden returns a [batch, length, dModel] residual stream from seed.
func randomHidden(seed uint64, batch, length, dModel int) [][][]float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	hidden := make([][][]float32, batch)
	for b := range hidden {
		hidden[b] = make([][]float32, length)
		for i := range hidden[b] {
			hidden[b][i] = make([]float32, dModel)
			for d := range hidden[b][i] {
				hidden[b][i][d] = float32(rng.NormFloat64())
			}
		}
	}
	return hidden
}

// newRoutedStore returns a store with deterministic variable initialisation.
func newRoutedStore(t testing.TB) *model.Store {
	t.Helper()
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(11); err != nil {
		t.Fatalf("seeding the store failed: %v", err)
	}
	return store
}

// execRecursion runs routedRecursion on hidden with the shared block of cfg
// and returns what extract picks from its output.
func execRecursion(t testing.TB, b compute.Backend, store *model.Store, cfg Config, options ForwardOptions,
	hidden [][][]float32, extract func(out RecursionOutput) []*graph.Node) []*tensors.Tensor {
	t.Helper()
	fn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		x := inputs[0]
		positions := graph.Iota(x.Graph(), shapes.Make(dtypes.Int32, x.Shape().Dim(0), x.Shape().Dim(1)), 1)
		out := routedRecursion(RecursionInput{
			Scope:     scope,
			Config:    cfg,
			Hidden:    x,
			Positions: positions,
			Options:   options,
			Block:     NewBlockFunc(scope, cfg),
		})
		return extract(out)
	}
	exec, err := model.NewExec(b, store, fn)
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	defer exec.Finalize()
	outputs, err := exec.Exec(hidden)
	if err != nil {
		t.Fatalf("running the routed recursion failed: %v", err)
	}
	return outputs
}

// hiddenDepthActive extracts the hidden state, the depth and each step's active mask.
func hiddenDepthActive(out RecursionOutput) []*graph.Node {
	nodes := []*graph.Node{out.Hidden, out.Depth}
	for _, step := range out.Steps {
		nodes = append(nodes, step.Active)
	}
	return nodes
}

func assertClose(t *testing.T, name string, got, want []float32, tolerance float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s has %d values, want %d", name, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tolerance || math.IsNaN(worst) {
		t.Errorf("%s differs by %.3g at flat index %d (got %v, want %v); tolerance %.1g",
			name, worst, at, got[at], want[at], tolerance)
	}
}

func TestCompactedMatchesMaskedReference(t *testing.T) {
	for _, kv := range []KVStrategy{RecursionWiseKV, SharedKV, SharedKVUpdate} {
		t.Run(string(kv), func(t *testing.T) {
			b := testutil.Backend(t, "go")
			cfg := routedTestConfig(3, kv, expertRouter())
			hidden := randomHidden(1, 2, 9, cfg.DModel)
			store := newRoutedStore(t)

			compacted := execRecursion(t, b, store, cfg, ForwardOptions{}, hidden, hiddenDepthActive)
			masked := execRecursion(t, b, store, cfg, ForwardOptions{Reference: true}, hidden, hiddenDepthActive)

			for r := 1; r <= 3; r++ {
				got := tensors.MustCopyFlatData[bool](compacted[1+r])
				want := tensors.MustCopyFlatData[bool](masked[1+r])
				if !slices.Equal(got, want) {
					t.Errorf("step %d active mask: compacted %v, masked %v", r, got, want)
				}
			}
			gotDepth, wantDepth := tensors.MustCopyFlatData[int32](compacted[1]), tensors.MustCopyFlatData[int32](masked[1])
			if !slices.Equal(gotDepth, wantDepth) {
				t.Errorf("depth: compacted %v, masked %v", gotDepth, wantDepth)
			}
			// Every token matches: active tokens by construction, inactive ones because neither path changes them.
			assertClose(t, "hidden state", flat32(compacted[0]), flat32(masked[0]), routedTolerance)
		})
	}
}

// TestFullCapacityEqualsDenseGatedRecursion checks, with every capacity at 1
// (and for N_r = 1), that MoR equals H ← H + g ⊙ Block(H) on every token, with
// g = α·sigmoid(H·θ_r) computed here from the stored router weights.
func TestFullCapacityEqualsDenseGatedRecursion(t *testing.T) {
	cases := []struct {
		name       string
		capacities []float64
	}{
		{"three steps at capacity 1", []float64{1, 1, 1}},
		{"one recursion", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := testutil.Backend(t, "go")
			numRecursions := max(1, len(tc.capacities))
			router := expertRouter(tc.capacities...)
			cfg := routedTestConfig(numRecursions, RecursionWiseKV, router)
			hidden := randomHidden(2, 2, 5, cfg.DModel)
			store := newRoutedStore(t)

			got := execRecursion(t, b, store, cfg, ForwardOptions{}, hidden, hiddenDepthActive)

			dense := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
				h := inputs[0]
				positions := graph.Iota(h.Graph(), shapes.Make(dtypes.Int32, h.Shape().Dim(0), h.Shape().Dim(1)), 1)
				block := NewBlockFunc(scope, cfg)
				for r := 1; r <= numRecursions; r++ {
					weights := store.GetVariable(model.JoinPath("/router", "step_"+string(rune('0'+r)), "weights"))
					logits := graph.Squeeze(graph.MatMul(h, weights.NodeValue(h.Graph())), -1) // [B, L]
					gates := graph.MulScalar(graph.Sigmoid(logits), router.Alpha)
					output := block(h, positions, BlockAttention{Step: r}).Output
					h = graph.Add(h, graph.Mul(graph.InsertAxes(gates, -1), output))
				}
				return []*graph.Node{h}
			}
			exec, err := model.NewExec(b, store, dense)
			if err != nil {
				t.Fatalf("creating the dense reference failed: %v", err)
			}
			want, err := exec.Exec(hidden)
			if err != nil {
				t.Fatalf("running the dense reference failed: %v", err)
			}

			assertClose(t, "hidden state", flat32(got[0]), flat32(want[0]), routedTolerance)
			for i, depth := range tensors.MustCopyFlatData[int32](got[1]) {
				if int(depth) != numRecursions {
					t.Errorf("token %d has depth %d, want %d at full capacity", i, depth, numRecursions)
				}
			}
		})
	}
}

// TestDepthsNestedAndCountsExact checks k_r tokens per row at each step, nested selections and depth.
func TestDepthsNestedAndCountsExact(t *testing.T) {
	cases := []struct {
		name                         string
		numRecursions, batch, length int
		wantCounts                   []int
	}{
		{"four steps", 4, 3, 10, []int{10, 7, 5, 2}},
		{"sequence shorter than N_r", 3, 2, 2, []int{2, 1, 1}},
		{"batch 1 length 1", 3, 1, 1, []int{1, 1, 1}},
	}
	for _, tc := range cases {
		for _, reference := range []bool{false, true} {
			name := tc.name + map[bool]string{false: " compacted", true: " masked"}[reference]
			t.Run(name, func(t *testing.T) {
				b := testutil.Backend(t, "go")
				cfg := routedTestConfig(tc.numRecursions, RecursionWiseKV, expertRouter())
				hidden := randomHidden(3, tc.batch, tc.length, cfg.DModel)
				outputs := execRecursion(t, b, newRoutedStore(t), cfg, ForwardOptions{Reference: reference}, hidden,
					func(out RecursionOutput) []*graph.Node {
						nodes := hiddenDepthActive(out)
						for _, step := range out.Steps {
							nodes = append(nodes, step.Selected)
						}
						return nodes
					})
				checkNestedCounts(t, tc.batch, tc.length, tc.wantCounts, outputs)
			})
		}
	}
}

// checkNestedCounts checks the outputs of hiddenDepthActive followed by each step's Selected.
func checkNestedCounts(t *testing.T, batch, length int, wantCounts []int, outputs []*tensors.Tensor) {
	t.Helper()
	numSteps := len(wantCounts)
	depth := tensors.MustCopyFlatData[int32](outputs[1])
	previous := make([]bool, batch*length)
	for i := range previous {
		previous[i] = true
	}
	wantDepth := make([]int32, batch*length)

	for r := 1; r <= numSteps; r++ {
		active := tensors.MustCopyFlatData[bool](outputs[1+r])
		selected := tensors.MustCopyFlatData[int32](outputs[1+numSteps+r])
		for row := range batch {
			count := 0
			for i := range length {
				flat := row*length + i
				if active[flat] {
					count++
					wantDepth[flat]++
				}
				if active[flat] && !previous[flat] {
					t.Errorf("step %d: row %d position %d is active but was not at step %d", r, row, i, r-1)
				}
			}
			if count != wantCounts[r-1] {
				t.Errorf("step %d: row %d has %d active tokens, want k_%d = %d", r, row, count, r, wantCounts[r-1])
			}
			rowSelected := selected[row*wantCounts[r-1] : (row+1)*wantCounts[r-1]]
			if !slices.IsSorted(rowSelected) {
				t.Errorf("step %d: row %d selected positions %v are not ascending", r, row, rowSelected)
			}
			for _, position := range rowSelected {
				if !active[row*length+int(position)] {
					t.Errorf("step %d: row %d selected position %d is not in the active mask", r, row, position)
				}
			}
		}
		previous = active
	}
	if !slices.Equal(depth, wantDepth) {
		t.Errorf("depth %v, want the number of active steps %v", depth, wantDepth)
	}
}

func TestRoutedRejectsInvalidCapacities(t *testing.T) {
	cases := []struct {
		name       string
		capacities []float64
		wantInText string
	}{
		{"increasing", []float64{1, 0.3, 0.6}, "must not increase"},
		{"above one", []float64{1.2, 1, 0.5}, "(0, 1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := testutil.Backend(t, "go")
			cfg := routedTestConfig(3, RecursionWiseKV, expertRouter(tc.capacities...))
			store := newRoutedStore(t)
			fn := func(scope *model.Scope, x *graph.Node) *graph.Node {
				positions := graph.Iota(x.Graph(), shapes.Make(dtypes.Int32, 1, 4), 1)
				return routedRecursion(RecursionInput{Scope: scope, Config: cfg, Hidden: x, Positions: positions,
					Block: NewBlockFunc(scope, cfg)}).Hidden
			}
			exec, err := model.NewExec(b, store, fn)
			if err != nil {
				t.Fatalf("creating the executor failed: %v", err)
			}
			_, err = exec.Exec(randomHidden(4, 1, 4, cfg.DModel))
			if err == nil {
				t.Fatalf("capacities %v were accepted", tc.capacities)
			}
			if !strings.Contains(err.Error(), tc.wantInText) {
				t.Errorf("error %q does not say %q", err, tc.wantInText)
			}
		})
	}
}

// TestExplicitZeroOptions checks that α = 0 gives zero gates (the input
// passes unchanged), not the default α = 0.1, and that BCE coefficient 0
// leaves the BCE loss out of the weighted sum while still reporting it.
func TestExplicitZeroOptions(t *testing.T) {
	b := testutil.Backend(t, "go")
	router, err := routers.ParseJSON([]byte(`{"alpha": 0, "bce_coeff": 0}`))
	if err != nil {
		t.Fatalf("parsing the router config failed: %v", err)
	}
	cfg := routedTestConfig(3, RecursionWiseKV, router)
	hidden := randomHidden(5, 1, 6, cfg.DModel)
	var weightedIsNil bool
	outputs := execRecursion(t, b, newRoutedStore(t), cfg, ForwardOptions{Training: true}, hidden,
		func(out RecursionOutput) []*graph.Node {
			weightedIsNil = out.WeightedAuxLoss == nil
			return []*graph.Node{out.Hidden, out.Losses[LossBCE]}
		})

	want := make([]float32, 0, 6*cfg.DModel)
	for _, row := range hidden[0] {
		want = append(want, row...)
	}
	assertClose(t, "hidden state with α = 0", flat32(outputs[0]), want, 0)
	if !weightedIsNil {
		t.Errorf("WeightedAuxLoss is set although bce_coeff and z_loss_coeff are 0")
	}
	if bce := tensors.ToScalar[float32](outputs[1]); bce <= 0 {
		t.Errorf("the BCE loss is %v, want it reported (> 0) even with coefficient 0", bce)
	}
}

// TestBCETargetsMatchSelection recomputes the BCE loss in Go from the
// recorded scores and selections.
func TestBCETargetsMatchSelection(t *testing.T) {
	b := testutil.Backend(t, "go")
	router := expertRouter()
	router.Alpha = 1 // keeps the logits recoverable from the scores
	cfg := routedTestConfig(3, RecursionWiseKV, router)
	batch, length := 2, 6
	counts := []int{6, 4, 2}
	outputs := execRecursion(t, b, newRoutedStore(t), cfg, ForwardOptions{Training: true}, randomHidden(6, batch, length, cfg.DModel),
		func(out RecursionOutput) []*graph.Node {
			nodes := []*graph.Node{out.Losses[LossBCE]}
			for _, step := range out.Steps {
				nodes = append(nodes, step.Candidates, step.Selected, step.Scores)
			}
			return nodes
		})

	want := 0.0
	previousCount := length
	for r := range 3 {
		candidates := tensors.MustCopyFlatData[int32](outputs[1+3*r])
		selected := tensors.MustCopyFlatData[int32](outputs[2+3*r])
		scores := tensors.MustCopyFlatData[float32](outputs[3+3*r])
		sum := 0.0
		for row := range batch {
			rowSelected := selected[row*counts[r] : (row+1)*counts[r]]
			for i := range previousCount {
				score := float64(scores[row*previousCount+i])
				target := 0.0
				if slices.Contains(rowSelected, candidates[row*previousCount+i]) {
					target = 1
				}
				sum -= target*math.Log(score) + (1-target)*math.Log(1-score)
			}
		}
		want += sum / float64(batch*previousCount)
		previousCount = counts[r]
	}
	got := float64(tensors.ToScalar[float32](outputs[0]))
	if math.Abs(got-want) > 1e-4 {
		t.Errorf("BCE loss = %.6f, want %.6f recomputed from the selections", got, want)
	}
}

// TestKVSharingMatchesHandBuiltReference follows the reference code's
// training of recursive KV sharing: step 2 runs the block on every token
// against the step-1 keys and values, then only the top-k tokens keep their
// gated output. The compacted path runs only the selected queries.
func TestKVSharingMatchesHandBuiltReference(t *testing.T) {
	b := testutil.Backend(t, "go")
	router := expertRouter(1, 0.5)
	cfg := routedTestConfig(2, SharedKV, router)
	batch, length, k := 2, 6, 3
	hidden := randomHidden(7, batch, length, cfg.DModel)
	store := newRoutedStore(t)
	got := execRecursion(t, b, store, cfg, ForwardOptions{}, hidden, hiddenDepthActive)

	reference := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		h := inputs[0]
		g := h.Graph()
		positions := graph.Iota(g, shapes.Make(dtypes.Int32, batch, length), 1)
		block := NewBlockFunc(scope, cfg)
		gates := func(r int, x *graph.Node) *graph.Node {
			weights := store.GetVariable("/router/step_" + string(rune('0'+r)) + "/weights").NodeValue(g)
			return graph.MulScalar(graph.Sigmoid(graph.Squeeze(graph.MatMul(x, weights), -1)), router.Alpha)
		}
		first := block(h, positions, BlockAttention{Step: 1, ReturnKV: true})
		h2 := graph.Add(h, graph.Mul(graph.InsertAxes(gates(1, h), -1), first.Output))
		second := block(h2, positions, BlockAttention{Step: 2, SharedKV: first.KV})
		return []*graph.Node{h2, gates(2, h2), second.Output}
	}
	exec, err := model.NewExec(b, store, reference)
	if err != nil {
		t.Fatalf("creating the reference failed: %v", err)
	}
	parts, err := exec.Exec(hidden)
	if err != nil {
		t.Fatalf("running the reference failed: %v", err)
	}

	h2, gates2, output2 := flat32(parts[0]), flat32(parts[1]), flat32(parts[2])
	want := slices.Clone(h2)
	d := cfg.DModel
	for row := range batch {
		order := make([]int, length)
		for i := range order {
			order[i] = i
		}
		rowGates := gates2[row*length : (row+1)*length]
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case rowGates[a] > rowGates[b]:
				return -1
			case rowGates[a] < rowGates[b]:
				return 1
			}
			return 0
		})
		for _, position := range order[:k] {
			flat := row*length + position
			for j := range d {
				want[flat*d+j] += rowGates[position] * output2[flat*d+j]
			}
		}
	}
	assertClose(t, "hidden state under KV sharing", flat32(got[0]), want, routedTolerance)
}

// TestGradientsReachEveryRouter checks that the LM-side output reaches each
// step's router through its gate, and that the auxiliary router is trained
// only by its own BCE loss.
func TestGradientsReachEveryRouter(t *testing.T) {
	b := testutil.Backend(t, "go")
	router := expertRouter()
	router.AuxRouter = true
	cfg := routedTestConfig(3, RecursionWiseKV, router)
	store := newRoutedStore(t)
	paths := []string{"/router/step_1/weights", "/router/step_2/weights", "/router/step_3/weights", "/aux_router/step_2/weights"}

	fn := func(scope *model.Scope, x *graph.Node) []*graph.Node {
		positions := graph.Iota(x.Graph(), shapes.Make(dtypes.Int32, 2, 6), 1)
		out := routedRecursion(RecursionInput{Scope: scope, Config: cfg, Hidden: x, Positions: positions,
			Options: ForwardOptions{Training: true}, Block: NewBlockFunc(scope, cfg)})
		var weights []*graph.Node
		for _, path := range paths {
			weights = append(weights, store.GetVariable(path).NodeValue(x.Graph()))
		}
		mainLoss := graph.ReduceAllSum(graph.Square(out.Hidden))
		mainGradients := graph.Gradient(mainLoss, weights...)
		auxGradient := graph.Gradient(out.Losses[LossAuxRouterBCE], weights[3])
		return append(mainGradients, auxGradient...)
	}
	exec, err := model.NewExec(b, store, fn)
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	outputs, err := exec.Exec(randomHidden(8, 2, 6, cfg.DModel))
	if err != nil {
		t.Fatalf("running the gradients failed: %v", err)
	}

	norm := func(values []float32) float64 {
		sum := 0.0
		for _, v := range values {
			sum += float64(v) * float64(v)
		}
		return math.Sqrt(sum)
	}
	for i, path := range paths[:3] {
		if n := norm(flat32(outputs[i])); n == 0 || math.IsNaN(n) {
			t.Errorf("gradient of the output with respect to %s has norm %v, want > 0", path, n)
		}
	}
	if n := norm(flat32(outputs[3])); n != 0 {
		t.Errorf("the output reaches the auxiliary router %s (gradient norm %v); it must see stop-gradient inputs only", paths[3], n)
	}
	if n := norm(flat32(outputs[4])); n == 0 || math.IsNaN(n) {
		t.Errorf("the auxiliary BCE loss does not reach %s (gradient norm %v)", paths[3], n)
	}
}

// forwardLogitsDepthScores runs Forward on tokens and returns the logits,
// the depth and the step-2 router scores.
func forwardLogitsDepthScores(t *testing.T, b compute.Backend, store *model.Store, cfg Config, options ForwardOptions, tokens [][]int32) (logits []float32, depth []int32, scores []float32) {
	t.Helper()
	fn := func(scope *model.Scope, x *graph.Node) []*graph.Node {
		out := Forward(scope, cfg, x, options)
		return []*graph.Node{out.Logits, out.Depth, out.Steps[1].Scores}
	}
	exec, err := model.NewExec(b, store, fn)
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	outputs, err := exec.Exec(tokens)
	if err != nil {
		t.Fatalf("running Forward failed: %v", err)
	}
	return flat32(outputs[0]), tensors.MustCopyFlatData[int32](outputs[1]), flat32(outputs[2])
}

// median returns the middle value of values.
func median(values []float32) float64 {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	return float64(sorted[len(sorted)/2])
}

// TestCausalRoutingIsPrefixInvariant changes the last token and checks that
// under causal routing no earlier logit or depth moves. The threshold is the
// median step-2 score, so that the rule really drops some tokens.
func TestCausalRoutingIsPrefixInvariant(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := routedTestConfig(3, RecursionWiseKV, expertRouter())
	cfg.Sharing, cfg.NumLayers = MiddleCycle, 5
	store := newRoutedStore(t)

	tokens := [][]int32{{3, 14, 15, 9, 26, 5, 35, 8}}
	changed := [][]int32{slices.Clone(tokens[0])}
	changed[0][7] = 42
	_, _, scores := forwardLogitsDepthScores(t, b, store, cfg, ForwardOptions{Routing: CausalRouting, Threshold: 0.5}, tokens)

	options := ForwardOptions{Routing: CausalRouting, Threshold: median(scores)}
	logits, depth, _ := forwardLogitsDepthScores(t, b, store, cfg, options, tokens)
	changedLogits, changedDepth, _ := forwardLogitsDepthScores(t, b, store, cfg, options, changed)

	prefix := 7 * cfg.VocabSize
	assertClose(t, "logits at positions 0..6", changedLogits[:prefix], logits[:prefix], 1e-6)
	if !slices.Equal(depth[:7], changedDepth[:7]) {
		t.Errorf("depths at positions 0..6 changed from %v to %v", depth[:7], changedDepth[:7])
	}
	if slices.Min(depth) == slices.Max(depth) {
		t.Errorf("every token has depth %d at threshold %.4f, so the rule never acted and the test proves nothing", depth[0], options.Threshold)
	}

	// Appending: the 7-token prefix alone gives the same logits and depths.
	prefixLogits, prefixDepth, _ := forwardLogitsDepthScores(t, b, store, cfg, options, [][]int32{tokens[0][:7]})
	assertClose(t, "logits of the 7-token prefix run alone", prefixLogits, logits[:prefix], 1e-5)
	if !slices.Equal(prefixDepth, depth[:7]) {
		t.Errorf("depths of the prefix run alone %v, within the longer sequence %v", prefixDepth, depth[:7])
	}
}

// TestCausalAuxRouterIsPrefixInvariant does the same on the recursion alone
// with the auxiliary router's score, on random hidden states whose scores
// spread around 0.5.
func TestCausalAuxRouterIsPrefixInvariant(t *testing.T) {
	b := testutil.Backend(t, "go")
	router := expertRouter()
	router.AuxRouter = true
	cfg := routedTestConfig(3, RecursionWiseKV, router)
	store := newRoutedStore(t)
	options := ForwardOptions{Routing: CausalRouting, CausalScore: CausalScoreAuxRouter, Threshold: 0.5}

	hidden := randomHidden(13, 1, 10, cfg.DModel)
	changed := [][][]float32{slices.Clone(hidden[0])}
	changed[0][9] = randomHidden(14, 1, 1, cfg.DModel)[0][0]
	extract := func(out RecursionOutput) []*graph.Node { return []*graph.Node{out.Hidden, out.Depth} }
	original := execRecursion(t, b, store, cfg, options, hidden, extract)
	modified := execRecursion(t, b, store, cfg, options, changed, extract)

	prefix := 9 * cfg.DModel
	assertClose(t, "hidden states at positions 0..8", flat32(modified[0])[:prefix], flat32(original[0])[:prefix], 0)
	depth, changedDepth := tensors.MustCopyFlatData[int32](original[1]), tensors.MustCopyFlatData[int32](modified[1])
	if !slices.Equal(depth[:9], changedDepth[:9]) {
		t.Errorf("depths at positions 0..8 changed from %v to %v", depth[:9], changedDepth[:9])
	}
	if slices.Min(depth) == slices.Max(depth) {
		t.Errorf("every token has depth %d, so the rule never acted and the test proves nothing", depth[0])
	}
}

// TestSequenceTopKSeesTheFuture documents why sequence-level top-k is not
// prefix-invariant: a last token that the step-2 router scores highest takes
// the only slot (k_2 = 1) from an earlier token, whose output then changes.
// Causal routing on the same inputs leaves the earlier tokens unchanged.
func TestSequenceTopKSeesTheFuture(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := routedTestConfig(2, RecursionWiseKV, expertRouter(1, 0.25))
	length := 4
	store := newRoutedStore(t)
	base := randomHidden(9, 1, length, cfg.DModel)
	hiddenOnly := func(out RecursionOutput) []*graph.Node { return []*graph.Node{out.Hidden} }
	execRecursion(t, b, store, cfg, ForwardOptions{}, base, hiddenOnly) // creates the router variables

	// The last token points along (or against) the step-2 router's weights.
	weights := flat32(store.GetVariable("/router/step_2/weights").MustValue())
	withLast := func(sign float32) [][][]float32 {
		hidden := [][][]float32{slices.Clone(base[0])}
		last := make([]float32, cfg.DModel)
		for j := range last {
			last[j] = sign * 50 * weights[j]
		}
		hidden[0][length-1] = last
		return hidden
	}

	for _, options := range []ForwardOptions{{}, {Routing: CausalRouting, Threshold: 0.5}} {
		favoured := flat32(execRecursion(t, b, store, cfg, options, withLast(1), hiddenOnly)[0])
		opposed := flat32(execRecursion(t, b, store, cfg, options, withLast(-1), hiddenOnly)[0])
		prefix := (length - 1) * cfg.DModel
		worst, _ := maxAbsDiff(favoured[:prefix], opposed[:prefix])
		if options.Routing == CausalRouting {
			if worst != 0 {
				t.Errorf("causal routing: earlier tokens changed by %.3g when only the last token changed", worst)
			}
		} else if worst < 1e-3 {
			t.Errorf("sequence top-k: earlier tokens changed by only %.3g; the last token should have taken the step-2 slot", worst)
		}
	}
}

func TestMaxDepthCapsRoutedSteps(t *testing.T) {
	b := testutil.Backend(t, "go")
	for _, router := range []routers.Config{expertRouter(), routers.DefaultTokenChoice()} {
		t.Run(string(router.Kind), func(t *testing.T) {
			cfg := routedTestConfig(3, RecursionWiseKV, router)
			var numSteps int
			outputs := execRecursion(t, b, newRoutedStore(t), cfg, ForwardOptions{MaxDepth: 2}, randomHidden(10, 2, 6, cfg.DModel),
				func(out RecursionOutput) []*graph.Node {
					numSteps = len(out.Steps)
					// NOTE: the hidden state is returned too. With the depth as its only
					// output, the token-choice graph fails on the pure-Go backend of compute
					// v0.1.5 ("index out of range [33] with length 30"), while XLA runs it.
					return []*graph.Node{out.Depth, out.Hidden}
				})
			if numSteps != 2 {
				t.Errorf("%d steps ran with MaxDepth 2, want 2", numSteps)
			}
			for i, depth := range tensors.MustCopyFlatData[int32](outputs[0]) {
				if depth > 2 || depth < 1 {
					t.Errorf("token %d has depth %d with MaxDepth 2", i, depth)
				}
			}
		})
	}
}

// TestTokenChoiceMatchesReference compares the token-choice recursion with
// a direct reading of the reference code's semantics: Z_r = Block(Z_{r−1})
// restricted to the tokens of depth ≥ r, and out = H¹ + w·Z_depth.
func TestTokenChoiceMatchesReference(t *testing.T) {
	for _, kv := range []KVStrategy{RecursionWiseKV, SharedKV} {
		t.Run(string(kv), func(t *testing.T) {
			b := testutil.Backend(t, "go")
			router := routers.DefaultTokenChoice()
			cfg := routedTestConfig(3, kv, router)
			batch, length := 2, 7
			hidden := randomHidden(11, batch, length, cfg.DModel)
			store := newRoutedStore(t)
			var lossNames []string
			got := execRecursion(t, b, store, cfg, ForwardOptions{Training: true}, hidden, func(out RecursionOutput) []*graph.Node {
				for name := range out.Losses {
					lossNames = append(lossNames, name)
				}
				return []*graph.Node{out.Hidden, out.Depth, out.Metrics[MetricTokenLoads]}
			})

			reference := func(scope *model.Scope, h *graph.Node) []*graph.Node {
				positions := graph.Iota(h.Graph(), shapes.Make(dtypes.Int32, batch, length), 1)
				routing := router.RouteTokens(scope, h, 3, cfg.InitStd, routers.TokenOptions{})
				depth := graph.AddScalar(routing.Choice, int32(1))
				block := NewBlockFunc(scope, cfg)
				running, out := h, h
				var firstKV []LayerKV
				for r := 1; r <= 3; r++ {
					active := graph.GreaterOrEqual(depth, graph.Scalar(h.Graph(), dtypes.Int32, r))
					attention := BlockAttention{Step: r, KeyMask: active, ReturnKV: r == 1 && kv == SharedKV}
					if r > 1 && kv == SharedKV {
						attention = BlockAttention{Step: r, SharedKV: firstKV}
					}
					result := block(running, positions, attention)
					if r == 1 {
						firstKV = result.KV
					}
					running = result.Output
					isDepth := graph.Equal(depth, graph.Scalar(h.Graph(), dtypes.Int32, r))
					final := graph.Add(h, graph.Mul(graph.InsertAxes(routing.Gates, -1), running))
					out = graph.Where(isDepth, final, out)
				}
				return []*graph.Node{out, depth}
			}
			exec, err := model.NewExec(b, store, reference)
			if err != nil {
				t.Fatalf("creating the reference failed: %v", err)
			}
			want, err := exec.Exec(hidden)
			if err != nil {
				t.Fatalf("running the reference failed: %v", err)
			}

			if gotDepth, wantDepth := tensors.MustCopyFlatData[int32](got[1]), tensors.MustCopyFlatData[int32](want[1]); !slices.Equal(gotDepth, wantDepth) {
				t.Errorf("depth %v, want %v", gotDepth, wantDepth)
			}
			assertClose(t, "token-choice output", flat32(got[0]), flat32(want[0]), routedTolerance)

			loads := flat32(got[2])
			total := 0.0
			for _, load := range loads {
				total += float64(load)
			}
			if math.Abs(total-1) > 1e-5 {
				t.Errorf("token loads %v sum to %v, want 1", loads, total)
			}
			slices.Sort(lossNames)
			if !slices.Equal(lossNames, []string{LossBalance, LossZ}) {
				t.Errorf("token-choice training losses are %v, want [%s %s]", lossNames, LossBalance, LossZ)
			}
		})
	}
}

func TestRoutedBackendsAgree(t *testing.T) {
	cfg := routedTestConfig(3, RecursionWiseKV, expertRouter())
	hidden := randomHidden(12, 2, 9, cfg.DModel)
	store := newRoutedStore(t)
	goOutputs := execRecursion(t, testutil.Backend(t, "go"), store, cfg, ForwardOptions{}, hidden, hiddenDepthActive)

	xla := testutil.Backend(t, "xla:cpu")
	xlaOutputs := execRecursion(t, xla, copyStoreToLocal(t, store), cfg, ForwardOptions{}, hidden, hiddenDepthActive)
	if gotDepth, wantDepth := tensors.MustCopyFlatData[int32](xlaOutputs[1]), tensors.MustCopyFlatData[int32](goOutputs[1]); !slices.Equal(gotDepth, wantDepth) {
		t.Errorf("XLA depth %v, pure Go depth %v", gotDepth, wantDepth)
	}
	assertClose(t, "XLA against pure-Go hidden state", flat32(xlaOutputs[0]), flat32(goOutputs[0]), routedTolerance)
}

// copyStoreToLocal copies every variable of store into a new store with local
// tensors, because a tensor placed on one backend cannot be used on another.
func copyStoreToLocal(t testing.TB, store *model.Store) *model.Store {
	t.Helper()
	copied := model.NewStore()
	for variable := range store.IterVariables() {
		value, err := variable.MustValue().LocalClone()
		if err != nil {
			t.Fatalf("copying variable %s failed: %v", variable.Path(), err)
		}
		if _, err := copied.CreateVariable(variable.Path(), value); err != nil {
			t.Fatalf("creating variable %s failed: %v", variable.Path(), err)
		}
	}
	return copied
}

// TestCapacityWarmup checks the cosine warm-up on the masked path: at step 0
// every candidate continues (capacity 1), halfway step 3 keeps
// floor((1/3 + 2/3·½)·L) tokens, and after the warm-up the result equals the
// compacted path at the final capacities.
func TestCapacityWarmup(t *testing.T) {
	b := testutil.Backend(t, "go")
	router := expertRouter()
	router.CapacityWarmupSteps = 100
	cfg := routedTestConfig(3, RecursionWiseKV, router)
	batch, length := 2, 9
	hidden := randomHidden(15, batch, length, cfg.DModel)
	store := newRoutedStore(t)

	run := func(globalStep int64) []*tensors.Tensor {
		fn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
			x, step := inputs[0], inputs[1]
			positions := graph.Iota(x.Graph(), shapes.Make(dtypes.Int32, batch, length), 1)
			out := routedRecursion(RecursionInput{Scope: scope, Config: cfg, Hidden: x, Positions: positions,
				Options: ForwardOptions{Training: true, GlobalStep: step}, Block: NewBlockFunc(scope, cfg)})
			return hiddenDepthActive(out)
		}
		exec, err := model.NewExec(b, store, fn)
		if err != nil {
			t.Fatalf("creating the executor failed: %v", err)
		}
		outputs, err := exec.Exec(hidden, globalStep)
		if err != nil {
			t.Fatalf("running the warm-up recursion at step %d failed: %v", globalStep, err)
		}
		return outputs
	}
	activeCounts := func(outputs []*tensors.Tensor) []int {
		counts := make([]int, 3)
		for r := range 3 {
			for _, active := range tensors.MustCopyFlatData[bool](outputs[2+r]) {
				if active {
					counts[r]++
				}
			}
		}
		return counts
	}

	// Per row: step 0 → 9, 9, 9; step 50 → 9, floor((2/3 + 1/6)·9) = 7, floor((1/3 + 1/3)·9) = 6;
	// step 100 and later → 9, 6, 3. Two rows double each count.
	for _, tc := range []struct {
		step int64
		want []int
	}{{0, []int{18, 18, 18}}, {50, []int{18, 14, 12}}, {200, []int{18, 12, 6}}} {
		if got := activeCounts(run(tc.step)); !slices.Equal(got, tc.want) {
			t.Errorf("training step %d: active tokens per recursion step %v, want %v", tc.step, got, tc.want)
		}
	}

	afterWarmup := run(200)
	compacted := execRecursion(t, b, store, cfg, ForwardOptions{Training: true}, hidden, hiddenDepthActive)
	assertClose(t, "hidden state after warm-up against the compacted path", flat32(afterWarmup[0]), flat32(compacted[0]), routedTolerance)
}

// TestRandomRouter checks the random-routing ablation: no router variables,
// gates in [0, α), exact counts, and no router losses.
func TestRandomRouter(t *testing.T) {
	b := testutil.Backend(t, "go")
	router := expertRouter()
	router.RandomRouter = true
	cfg := routedTestConfig(3, RecursionWiseKV, router)
	store := newRoutedStore(t)
	var lossNames []string
	outputs := execRecursion(t, b, store, cfg, ForwardOptions{Training: true}, randomHidden(16, 2, 6, cfg.DModel),
		func(out RecursionOutput) []*graph.Node {
			for name := range out.Losses {
				lossNames = append(lossNames, name)
			}
			return append(hiddenDepthActive(out), out.Steps[0].Scores)
		})

	for variable := range store.IterVariables() {
		if strings.HasPrefix(variable.Path(), "/router/") {
			t.Errorf("the random router created variable %s", variable.Path())
		}
	}
	for i, score := range flat32(outputs[5]) {
		if score < 0 || score >= 1 {
			t.Errorf("random score %d is %v, want it in [0, 1)", i, score)
		}
	}
	if len(lossNames) != 0 {
		t.Errorf("the random router reports losses %v, want none", lossNames)
	}
	checkDepthCounts(t, tensors.MustCopyFlatData[int32](outputs[1]), 2, 6, []int{6, 4, 2})
}

// checkDepthCounts checks that each row has counts[r] tokens of depth ≥ r+1.
func checkDepthCounts(t *testing.T, depth []int32, batch, length int, counts []int) {
	t.Helper()
	for row := range batch {
		for r, want := range counts {
			got := 0
			for _, d := range depth[row*length : (row+1)*length] {
				if int(d) > r {
					got++
				}
			}
			if got != want {
				t.Errorf("row %d has %d tokens of depth ≥ %d, want %d", row, got, r+1, want)
			}
		}
	}
}

// TestTokenChoiceGradientReachesRouter checks that the output reaches the
// token-choice router through the gate of the final step.
func TestTokenChoiceGradientReachesRouter(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := routedTestConfig(3, RecursionWiseKV, routers.DefaultTokenChoice())
	store := newRoutedStore(t)
	fn := func(scope *model.Scope, x *graph.Node) []*graph.Node {
		positions := graph.Iota(x.Graph(), shapes.Make(dtypes.Int32, 2, 6), 1)
		out := routedRecursion(RecursionInput{Scope: scope, Config: cfg, Hidden: x, Positions: positions,
			Options: ForwardOptions{Training: true}, Block: NewBlockFunc(scope, cfg)})
		weights := store.GetVariable("/router/token/weights").NodeValue(x.Graph())
		return graph.Gradient(graph.ReduceAllSum(graph.Square(out.Hidden)), weights)
	}
	exec, err := model.NewExec(b, store, fn)
	if err != nil {
		t.Fatalf("creating the executor failed: %v", err)
	}
	outputs, err := exec.Exec(randomHidden(17, 2, 6, cfg.DModel))
	if err != nil {
		t.Fatalf("running the gradient failed: %v", err)
	}
	norm := 0.0
	for _, v := range flat32(outputs[0]) {
		norm += float64(v) * float64(v)
	}
	if norm == 0 || math.IsNaN(norm) {
		t.Errorf("gradient of the output with respect to the token-choice router has squared norm %v, want > 0", norm)
	}
}

// TestExpertMetricsReported checks the per-step diagnostics: the selected
// fraction is exactly k_r/L, and the accuracies are fractions.
func TestExpertMetricsReported(t *testing.T) {
	b := testutil.Backend(t, "go")
	router := expertRouter()
	router.AuxRouter = true
	cfg := routedTestConfig(3, RecursionWiseKV, router)
	names := []string{MetricSelectedFraction, MetricSamplingAccuracy, MetricAuxSamplingAccuracy, MetricAuxTopKAccuracy, MetricHiddenNorm}
	var missing []string
	outputs := execRecursion(t, b, newRoutedStore(t), cfg, ForwardOptions{}, randomHidden(18, 2, 6, cfg.DModel),
		func(out RecursionOutput) []*graph.Node {
			nodes := make([]*graph.Node, len(names))
			for i, name := range names {
				metric, found := out.Metrics[name]
				if !found {
					// t.Fatalf must not run inside graph building, so a placeholder keeps the graph valid.
					missing = append(missing, name)
					metric = graph.Zeros(out.Hidden.Graph(), shapes.Make(dtypes.Float32, 3))
				}
				nodes[i] = metric
			}
			return nodes
		})
	if len(missing) > 0 {
		t.Fatalf("metrics %v are missing", missing)
	}

	assertClose(t, MetricSelectedFraction, flat32(outputs[0]), []float32{1, 4.0 / 6, 2.0 / 6}, 1e-6)
	for i, name := range names[1:4] {
		values := flat32(outputs[1+i])
		if len(values) != 3 {
			t.Errorf("%s has %d values, want one per step (3)", name, len(values))
		}
		for r, value := range values {
			if value < 0 || value > 1 {
				t.Errorf("%s at step %d is %v, want a fraction in [0, 1]", name, r+1, value)
			}
		}
	}
	// Step 1 selects every candidate, so the auxiliary top-k agrees fully.
	if topK := flat32(outputs[3]); topK[0] != 1 {
		t.Errorf("%s at step 1 is %v, want 1 at full capacity", MetricAuxTopKAccuracy, topK[0])
	}
}
