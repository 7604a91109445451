package routers

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/internal/testutil"
)

const tolerance = 1e-5

// sequentialGoBackend returns the pure-Go backend with ops run one at a time.
//
// NOTE: compute v0.1.5's pure-Go backend can deadlock when two Sort or TopK
// nodes run at once, because each holds a worker while its comparator closure
// waits for a free one. The sorting fallback of the selections has such pairs.
func sequentialGoBackend(t testing.TB) compute.Backend {
	t.Helper()
	return testutil.Backend(t, "go:ops_sequential")
}

// execGraph runs fn once on backend b with the given inputs and returns its outputs.
func execGraph(t *testing.T, b compute.Backend, fn func(inputs []*graph.Node) []*graph.Node, inputs ...any) []*tensors.Tensor {
	t.Helper()
	outputs, err := graph.ExecOnceN(b, func(inputs []*graph.Node) []*graph.Node { return fn(inputs) }, inputs...)
	if err != nil {
		t.Fatalf("executing the graph failed: %v", err)
	}
	return outputs
}

// execModel runs fn with a scope of store, so that fn may create and read variables.
func execModel(t *testing.T, b compute.Backend, store *model.Store, fn func(scope *model.Scope, inputs []*graph.Node) []*graph.Node, inputs ...any) []*tensors.Tensor {
	t.Helper()
	exec, err := model.NewExec(b, store, fn)
	if err != nil {
		t.Fatalf("creating the model executor failed: %v", err)
	}
	outputs, err := exec.Exec(inputs...)
	if err != nil {
		t.Fatalf("executing the model graph failed: %v", err)
	}
	return outputs
}

func assertFloats(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s has %d values %v, want %d values %v", name, len(got), got, len(want), want)
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > tolerance {
			t.Errorf("%s[%d] = %v, want %v (all: got %v, want %v)", name, i, got[i], want[i], got, want)
		}
	}
}

func assertInts(t *testing.T, name string, got []int32, want []int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", name, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
	}
}

func assertBools(t *testing.T, name string, got []bool, want []bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", name, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
	}
}

func TestCapacity(t *testing.T) {
	cases := []struct {
		name                  string
		beta                  float64
		length, numCandidates int
		want                  int
	}{
		{"full capacity", 1, 6, 6, 6},
		{"two thirds of six is four", 2.0 / 3, 6, 6, 4},
		{"one third of six is two", 1.0 / 3, 6, 4, 2},
		{"rounds to zero then one", 1.0 / 3, 2, 2, 1},
		{"length one", 0.5, 1, 1, 1},
		{"clamped to candidates", 1, 6, 3, 3},
		{"uses full length not candidates", 0.5, 8, 5, 4},
		{"float64 product just below an integer", 0.29, 100, 100, 29},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Capacity(tc.beta, tc.length, tc.numCandidates); got != tc.want {
				t.Errorf("Capacity(%g, %d, %d) = %d, want %d", tc.beta, tc.length, tc.numCandidates, got, tc.want)
			}
		})
	}
}

func TestStepCounts(t *testing.T) {
	config := DefaultExpertChoice()
	cases := []struct {
		numRecursions, length int
		want                  []int
	}{
		{3, 6, []int{6, 4, 2}},
		{3, 2, []int{2, 1, 1}},
		{3, 1, []int{1, 1, 1}},
		{4, 8, []int{8, 6, 4, 2}},
		{1, 5, []int{5}},
	}
	for _, tc := range cases {
		got := config.StepCounts(tc.numRecursions, tc.length)
		if len(got) != len(tc.want) {
			t.Fatalf("StepCounts(%d, %d) = %v, want %v", tc.numRecursions, tc.length, got, tc.want)
		}
		for r := range tc.want {
			if got[r] != tc.want[r] {
				t.Errorf("StepCounts(%d, %d) = %v, want %v", tc.numRecursions, tc.length, got, tc.want)
				break
			}
		}
	}
}

func TestDefaultsValidate(t *testing.T) {
	for _, config := range []Config{DefaultExpertChoice(), DefaultTokenChoice()} {
		if err := config.Validate(3); err != nil {
			t.Errorf("default %s config is invalid: %v", config.Kind, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	withCapacities := func(capacities ...float64) Config {
		c := DefaultExpertChoice()
		c.Capacities = capacities
		return c
	}
	zeroTemperature := DefaultExpertChoice()
	zeroTemperature.Temperature = 0
	tokenWithBCE := DefaultTokenChoice()
	tokenWithBCE.BCECoeff = 0.001
	badScore := DefaultTokenChoice()
	badScore.ScoreFunc = Tanh

	cases := []struct {
		name       string
		config     Config
		wantInText []string
	}{
		{"increasing capacities", withCapacities(1, 1.0/3, 2.0/3), []string{"capacities[2]", "must not increase"}},
		{"capacity above one", withCapacities(1.5, 1, 0.5), []string{"capacities[0]", "1.5", "(0, 1]"}},
		{"capacity zero", withCapacities(1, 0.5, 0), []string{"capacities[2]", "is 0", "(0, 1]"}},
		{"negative capacity", withCapacities(1, 0.5, -0.1), []string{"capacities[2]", "-0.1"}},
		{"wrong number of capacities", withCapacities(1, 0.5), []string{"2 values", "3 recursion steps"}},
		{"zero temperature", zeroTemperature, []string{"temperature is 0", "positive"}},
		{"BCE on token-choice", tokenWithBCE, []string{"bce_coeff", "expert-choice"}},
		{"tanh on token-choice", badScore, []string{"score_func", "tanh", "softmax"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.config.Validate(3)
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.config)
			}
			for _, text := range tc.wantInText {
				if !strings.Contains(err.Error(), text) {
					t.Errorf("error %q does not contain %q", err, text)
				}
			}
		})
	}
}

func TestParseJSONKeepsExplicitZero(t *testing.T) {
	config, err := ParseJSON([]byte(`{"kind": "expert-choice", "alpha": 0, "bce_coeff": 0, "bce_include_first": false}`))
	if err != nil {
		t.Fatalf("ParseJSON failed: %v", err)
	}
	if config.Alpha != 0 {
		t.Errorf("alpha given as 0 decoded to %g, want 0", config.Alpha)
	}
	if config.BCECoeff != 0 {
		t.Errorf("bce_coeff given as 0 decoded to %g, want 0", config.BCECoeff)
	}
	if config.BCEIncludeFirst {
		t.Errorf("bce_include_first given as false decoded to true")
	}
	if config.Temperature != 1 {
		t.Errorf("missing temperature decoded to %g, want the default 1", config.Temperature)
	}
	if err := config.Validate(3); err != nil {
		t.Errorf("alpha 0 and bce_coeff 0 are valid choices, Validate returned %v", err)
	}

	zeroTemperature, err := ParseJSON([]byte(`{"temperature": 0}`))
	if err != nil {
		t.Fatalf("ParseJSON failed: %v", err)
	}
	if zeroTemperature.Temperature != 0 {
		t.Errorf("temperature given as 0 decoded to %g, want 0", zeroTemperature.Temperature)
	}
	if zeroTemperature.Validate(3) == nil {
		t.Errorf("temperature 0 was accepted instead of rejected")
	}

	token, err := ParseJSON([]byte(`{"kind": "token-choice", "z_loss_coeff": 0}`))
	if err != nil {
		t.Fatalf("ParseJSON failed: %v", err)
	}
	if token.ZLossCoeff != 0 || token.BalanceCoeff != 0.1 || token.ScoreFunc != Softmax {
		t.Errorf("token-choice JSON decoded to %+v, want z_loss_coeff 0 on top of the token-choice defaults", token)
	}
}

func TestConfigJSONRoundTrip(t *testing.T) {
	config := DefaultExpertChoice()
	config.Capacities = []float64{1, 0.5}
	config.AuxRouter = true
	data, err := json.Marshal(config)
	if err != nil {
		t.Fatalf("encoding failed: %v", err)
	}
	decoded, err := ParseJSON(data)
	if err != nil {
		t.Fatalf("decoding %s failed: %v", data, err)
	}
	if !decoded.AuxRouter || len(decoded.Capacities) != 2 || decoded.Capacities[1] != 0.5 {
		t.Errorf("round trip of %+v gave %+v", config, decoded)
	}
}

func TestSelectTopK(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		gates := [][]float32{
			{0.1, 0.5, 0.3, 0.9, 0.2},
			{0.8, 0.1, 0.7, 0.2, 0.6},
		}
		outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
			selection := SelectTopK(in[0], 2)
			return []*graph.Node{selection.Indices, selection.Gates, selection.Mask}
		}, gates)

		// Row 0: top-2 are 0.9 (index 3) and 0.5 (index 1), re-sorted to [1, 3].
		// Row 1: top-2 are 0.8 (index 0) and 0.7 (index 2).
		assertInts(t, "indices", tensors.MustCopyFlatData[int32](outputs[0]), []int32{1, 3, 0, 2})
		assertFloats(t, "gates", tensors.MustCopyFlatData[float32](outputs[1]), []float64{0.5, 0.9, 0.8, 0.7})
		assertBools(t, "mask", tensors.MustCopyFlatData[bool](outputs[2]),
			[]bool{false, true, false, true, false, true, false, true, false, false})
	})
}

func TestSelectTopKTiesGoEarlier(t *testing.T) {
	b := testutil.Backend(t, "go")
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{SelectTopK(in[0], 2).Indices}
	}, [][]float32{{0.5, 0.5, 0.5}})
	assertInts(t, "indices of tied gates", tensors.MustCopyFlatData[int32](outputs[0]), []int32{0, 1})
}

func TestSelectTopKGradientIsMask(t *testing.T) {
	b := testutil.Backend(t, "go")
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		selection := SelectTopK(in[0], 2)
		return graph.Gradient(graph.ReduceAllSum(selection.Gates), in[0])
	}, [][]float32{{0.1, 0.5, 0.3, 0.9}})
	assertFloats(t, "d(sum of selected gates)/d(gates)", tensors.MustCopyFlatData[float32](outputs[0]), []float64{0, 1, 0, 1})
}

func TestGatherScatterRows(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		x := [][][]float32{
			{{0, 0}, {1, 1}, {2, 2}},
			{{10, 10}, {11, 11}, {12, 12}},
		}
		indices := [][]int32{{0, 2}, {1, 2}}
		updates := [][][]float32{
			{{100, 200}, {300, 400}},
			{{1, 2}, {3, 4}},
		}
		outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
			return []*graph.Node{GatherRows(in[0], in[1]), ScatterAddRows(in[0], in[1], in[2]), RowMask(in[1], 3)}
		}, x, indices, updates)

		assertFloats(t, "gathered", tensors.MustCopyFlatData[float32](outputs[0]),
			[]float64{0, 0, 2, 2, 11, 11, 12, 12})
		assertFloats(t, "scatter-added", tensors.MustCopyFlatData[float32](outputs[1]),
			[]float64{100, 200, 1, 1, 302, 402, 10, 10, 12, 13, 15, 16})
		assertBools(t, "row mask", tensors.MustCopyFlatData[bool](outputs[2]),
			[]bool{true, false, true, false, true, true})
	})
}

func TestMaskPositions(t *testing.T) {
	b := testutil.Backend(t, "go")
	mask := [][]bool{
		{false, true, false, true, true},
		{true, false, false, true, true},
	}
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{MaskPositions(in[0], 3)}
	}, mask)
	assertInts(t, "positions", tensors.MustCopyFlatData[int32](outputs[0]), []int32{1, 3, 4, 0, 3, 4})
}

func TestSelectTopKMasked(t *testing.T) {
	b := testutil.Backend(t, "go")
	gates := [][]float32{{0.9, 0.5, 0.3, 0.8, 0.2}}
	candidates := [][]bool{{false, true, true, true, true}}
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		static := SelectTopKMasked(in[0], in[1], 2)
		dynamic := SelectDynamicTopKMasked(in[0], in[1], graph.Const(in[0].Graph(), int32(2)))
		return []*graph.Node{static, dynamic}
	}, gates, candidates)

	// Position 0 has the largest gate but is no candidate: 0.8 (3) and 0.5 (1) win.
	want := []bool{false, true, false, true, false}
	assertBools(t, "static top-k mask", tensors.MustCopyFlatData[bool](outputs[0]), want)
	assertBools(t, "dynamic top-k mask", tensors.MustCopyFlatData[bool](outputs[1]), want)
}

func TestBCEWithLogits(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		logits := [][]float32{{2, -1, 0}}
		targets := [][]bool{{true, false, true}}
		mask := [][]bool{{true, true, false}}
		outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
			return []*graph.Node{BCEWithLogits(in[0], in[1], nil), BCEWithLogits(in[0], in[1], in[2])}
		}, logits, targets, mask)

		// By hand: −log σ(2) = log(1+e^−2) = 0.126928, −log(1−σ(−1)) = log(1+e^−1) = 0.313262,
		// −log σ(0) = log 2 = 0.693147.
		all := (0.126928 + 0.313262 + 0.693147) / 3
		masked := (0.126928 + 0.313262) / 2
		assertFloats(t, "BCE over all", tensors.MustCopyFlatData[float32](outputs[0]), []float64{all})
		assertFloats(t, "BCE over mask", tensors.MustCopyFlatData[float32](outputs[1]), []float64{masked})
	})
}

func TestZLosses(t *testing.T) {
	b := testutil.Backend(t, "go")
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{ExpertZLoss(in[0], nil), TokenZLoss(in[1])}
	}, [][]float32{{1, 2, 3}}, [][]float32{{0, 0}, {float32(math.Log(3)), 0}})

	// Expert: (1 + 4 + 9)/3. Token: logsumexp(0, 0) = ln 2, logsumexp(ln 3, 0) = ln 4.
	tokenWant := (math.Pow(math.Log(2), 2) + math.Pow(math.Log(4), 2)) / 2
	assertFloats(t, "expert z-loss", tensors.MustCopyFlatData[float32](outputs[0]), []float64{14.0 / 3})
	assertFloats(t, "token z-loss", tensors.MustCopyFlatData[float32](outputs[1]), []float64{tokenWant})
}

func TestBalancingLoss(t *testing.T) {
	b := testutil.Backend(t, "go")
	probs := [][]float32{{0.7, 0.3}, {0.4, 0.6}, {0.9, 0.1}, {0.2, 0.8}}
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{BalancingLoss(in[0], in[1]), BalancingLoss(in[0], in[2])}
	}, probs, []int32{0, 1, 0, 1}, []int32{0, 0, 0, 1})

	// P = [0.55, 0.45]. Balanced choices: f = [1, 1] → 1.0.
	// Three of four on expert 0: f = 2·[0.75, 0.25] = [1.5, 0.5] → 0.825 + 0.225 = 1.05.
	assertFloats(t, "balanced loss", tensors.MustCopyFlatData[float32](outputs[0]), []float64{1.0})
	assertFloats(t, "skewed loss", tensors.MustCopyFlatData[float32](outputs[1]), []float64{1.05})
}

func TestLoadMetrics(t *testing.T) {
	b := testutil.Backend(t, "go")
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		loads := Loads(in[0], 3)
		return []*graph.Node{loads, MaxVio(loads), Entropy(loads), Entropy(in[1]), MaxVio(in[1])}
	}, [][]int32{{0, 0, 0, 0, 0}, {1, 1, 1, 2, 2}}, []float32{1, 0, 0})

	// Loads: 5 of 10 on depth 1, 3 on depth 2, 2 on depth 3.
	entropy := -(0.5*math.Log(0.5) + 0.3*math.Log(0.3) + 0.2*math.Log(0.2))
	assertFloats(t, "loads", tensors.MustCopyFlatData[float32](outputs[0]), []float64{0.5, 0.3, 0.2})
	assertFloats(t, "MaxVio", tensors.MustCopyFlatData[float32](outputs[1]), []float64{0.5})
	assertFloats(t, "entropy", tensors.MustCopyFlatData[float32](outputs[2]), []float64{entropy})
	assertFloats(t, "entropy of a one-hot distribution", tensors.MustCopyFlatData[float32](outputs[3]), []float64{0})
	assertFloats(t, "MaxVio of a one-hot distribution", tensors.MustCopyFlatData[float32](outputs[4]), []float64{2})
}

func TestSamplingAccuracyAndOverlap(t *testing.T) {
	b := testutil.Backend(t, "go")
	scores := [][]float32{{0.6, 0.4, 0.7, 0.2}}
	selected := [][]bool{{true, true, false, false}}
	auxSelected := [][]bool{{true, false, true, false}}
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{
			SamplingAccuracy(in[0], in[1], nil, 0.5),
			SamplingAccuracy(in[0], in[1], nil, 0.3),
			TopKOverlap(in[1], in[2]),
			SelectedFraction(in[1]),
		}
	}, scores, selected, auxSelected)

	// Threshold 0.5: decisions T,F,T,F against T,T,F,F agree at 0 and 3. Threshold 0.3: T,T,T,F agree at 0,1,3.
	assertFloats(t, "sampling accuracy at 0.5", tensors.MustCopyFlatData[float32](outputs[0]), []float64{0.5})
	assertFloats(t, "sampling accuracy at 0.3", tensors.MustCopyFlatData[float32](outputs[1]), []float64{0.75})
	assertFloats(t, "top-k overlap", tensors.MustCopyFlatData[float32](outputs[2]), []float64{0.5})
	assertFloats(t, "selected fraction", tensors.MustCopyFlatData[float32](outputs[3]), []float64{0.5})
}

func TestWarmupCapacity(t *testing.T) {
	b := testutil.Backend(t, "go")
	steps := []int64{0, 50, 100, 200}
	want := []float64{1, 1.0/3 + 2.0/3*0.5, 1.0 / 3, 1.0 / 3}
	wantCounts := []int32{6, 4, 2, 2} // floor(β(t)·6), clamped to 6 candidates
	for i, step := range steps {
		outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
			return []*graph.Node{
				WarmupCapacity(1.0/3, in[0], 100),
				WarmupCount(1.0/3, in[0], 100, 6, graph.Const(in[0].Graph(), int32(6))),
			}
		}, step)
		assertFloats(t, "warm-up capacity", tensors.MustCopyFlatData[float32](outputs[0]), []float64{want[i]})
		assertInts(t, "warm-up count", tensors.MustCopyFlatData[int32](outputs[1]), []int32{wantCounts[i]})
	}
}

func TestExpertScoresByHand(t *testing.T) {
	b := testutil.Backend(t, "go")
	x := [][][]float32{{{1, 0}, {0, 1}, {1, 1}}} // [B=1, K=3, D=2]
	weights := [][]float32{{2}, {-1}}            // z = (2, −1, 1) / T

	cases := []struct {
		scoreFunc  string
		wantScores []float64
	}{
		{Sigmoid, []float64{sigmoid(1), sigmoid(-0.5), sigmoid(0.5)}},
		{Tanh, []float64{math.Tanh(1), math.Tanh(-0.5), math.Tanh(0.5)}},
		{NoScore, []float64{1, -0.5, 0.5}},
	}
	for _, tc := range cases {
		t.Run(tc.scoreFunc, func(t *testing.T) {
			config := DefaultExpertChoice()
			config.ScoreFunc = tc.scoreFunc
			config.Temperature = 2
			config.Alpha = 0.1

			store := model.NewStore()
			stepScope := store.RootScope().At(MainScopeName).At("step_2")
			stepScope.VariableWithValue("weights", weights)

			outputs := execModel(t, b, store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
				scores := config.ScoreExpertStep(scope, 2, in[0], 0.02)
				return []*graph.Node{scores.Logits, scores.Scores, scores.Gates}
			}, x)

			wantGates := make([]float64, len(tc.wantScores))
			for i, s := range tc.wantScores {
				wantGates[i] = 0.1 * s
			}
			assertFloats(t, "logits", tensors.MustCopyFlatData[float32](outputs[0]), []float64{1, -0.5, 0.5})
			assertFloats(t, "scores", tensors.MustCopyFlatData[float32](outputs[1]), tc.wantScores)
			assertFloats(t, "gates", tensors.MustCopyFlatData[float32](outputs[2]), wantGates)
		})
	}
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestRouterVariablesPerStep(t *testing.T) {
	b := testutil.Backend(t, "go")
	cases := []struct {
		architecture string
		wantShapes   map[string][]int
	}{
		{Linear, map[string][]int{
			"/router/step_1/weights": {4, 1}, "/router/step_2/weights": {4, 1}, "/aux_router/step_1/weights": {4, 1},
		}},
		{MLP, map[string][]int{
			"/router/step_1/hidden_weights": {4, 8}, "/router/step_1/output_weights": {8, 1},
			"/router/step_2/hidden_weights": {4, 8}, "/aux_router/step_1/hidden_weights": {4, 8},
		}},
		{WideMLP, map[string][]int{"/router/step_1/hidden_weights": {4, 8}}},
	}
	for _, tc := range cases {
		t.Run(tc.architecture, func(t *testing.T) {
			config := DefaultExpertChoice()
			config.Architecture = tc.architecture
			store := model.NewStore()
			execModel(t, b, store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
				first := config.ScoreExpertStep(scope, 1, in[0], 0.02)
				second := config.ScoreExpertStep(scope, 2, in[0], 0.02)
				aux := config.ScoreAuxExpertStep(scope, 1, in[0], 0.02)
				return []*graph.Node{first.Gates, second.Gates, aux.Gates}
			}, [][][]float32{{{1, 2, 3, 4}, {5, 6, 7, 8}}})
			for path, wantDims := range tc.wantShapes {
				variable := store.GetVariable(path)
				if variable == nil {
					t.Errorf("variable %s was not created", path)
					continue
				}
				dims := variable.Shape().Dimensions
				if len(dims) != len(wantDims) || dims[0] != wantDims[0] || dims[1] != wantDims[1] {
					t.Errorf("variable %s has shape %v, want %v", path, dims, wantDims)
				}
			}
		})
	}
}

func TestRouterInitStd(t *testing.T) {
	b := testutil.Backend(t, "go")
	config := DefaultExpertChoice()
	store := model.NewStore()
	x := make([][][]float32, 1)
	x[0] = make([][]float32, 1)
	x[0][0] = make([]float32, 4096)
	execModel(t, b, store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
		return []*graph.Node{config.ScoreExpertStep(scope, 1, in[0], 0.02).Gates}
	}, x)

	weights := tensors.MustCopyFlatData[float32](store.GetVariable("/router/step_1/weights").MustValue())
	sum, sumSquares := 0.0, 0.0
	for _, w := range weights {
		sum += float64(w)
		sumSquares += float64(w) * float64(w)
	}
	mean := sum / float64(len(weights))
	std := math.Sqrt(sumSquares/float64(len(weights)) - mean*mean)
	// 4096 draws of N(0, 0.02): the sample std is within 5% of 0.02 with overwhelming probability.
	if math.Abs(std-0.02) > 0.001 {
		t.Errorf("router weights have std %.5f, want about 0.02", std)
	}
	if math.Abs(mean) > 0.002 {
		t.Errorf("router weights have mean %.5f, want about 0", mean)
	}
}

func TestRouteTokensByHand(t *testing.T) {
	b := testutil.Backend(t, "go")
	// Two tokens, D = 2, N_r = 3. Logits: token 0 → (1, 0, 0), token 1 → (0, 0, 2).
	x := [][][]float32{{{1, 0}, {0, 1}}}
	weights := [][]float32{{1, 0, 0}, {0, 0, 2}}
	softmaxOf := func(logits ...float64) []float64 {
		sum := 0.0
		for _, z := range logits {
			sum += math.Exp(z)
		}
		out := make([]float64, len(logits))
		for i, z := range logits {
			out[i] = math.Exp(z) / sum
		}
		return out
	}
	p0, p1 := softmaxOf(1, 0, 0), softmaxOf(0, 0, 2)

	t.Run("plain", func(t *testing.T) {
		config := DefaultTokenChoice()
		store := model.NewStore()
		store.RootScope().At(MainScopeName).At("token").VariableWithValue("weights", weights)
		outputs := execModel(t, b, store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
			routing := config.RouteTokens(scope, in[0], 3, 0.02, TokenOptions{})
			return []*graph.Node{routing.Choice, routing.Gates, routing.Probs}
		}, x)
		assertInts(t, "choice", tensors.MustCopyFlatData[int32](outputs[0]), []int32{0, 2})
		assertFloats(t, "gates", tensors.MustCopyFlatData[float32](outputs[1]), []float64{p0[0], p1[2]})
		assertFloats(t, "probs", tensors.MustCopyFlatData[float32](outputs[2]), append(append([]float64{}, p0...), p1...))
	})

	t.Run("loss-free bias changes choice not gate", func(t *testing.T) {
		config := DefaultTokenChoice()
		config.LossFreeBiasRate = 0.01
		store := model.NewStore()
		tokenScope := store.RootScope().At(MainScopeName).At("token")
		tokenScope.VariableWithValue("weights", weights)
		// A bias of 0.5 on depth 2 beats token 0's margin p0[0] − p0[1] ≈ 0.36, but not
		// token 1's margin p1[2] − p1[1] ≈ 0.68.
		tokenScope.VariableWithValue("loss_free_bias", []float32{0, 0.5, 0})
		outputs := execModel(t, b, store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
			routing := config.RouteTokens(scope, in[0], 3, 0.02, TokenOptions{})
			return []*graph.Node{routing.Choice, routing.Gates}
		}, x)
		assertInts(t, "choice", tensors.MustCopyFlatData[int32](outputs[0]), []int32{1, 2})
		assertFloats(t, "gates", tensors.MustCopyFlatData[float32](outputs[1]), []float64{p0[1], p1[2]})
	})

	t.Run("balancing warm-up forces max depth", func(t *testing.T) {
		config := DefaultTokenChoice()
		config.BalanceWarmupSteps = 10
		for _, step := range []int64{3, 10} {
			store := model.NewStore()
			store.RootScope().At(MainScopeName).At("token").VariableWithValue("weights", weights)
			outputs := execModel(t, b, store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
				routing := config.RouteTokens(scope, in[0], 3, 0.02, TokenOptions{Training: true, GlobalStep: in[1]})
				return []*graph.Node{routing.Choice, routing.Gates}
			}, x, step)
			if step < 10 {
				assertInts(t, "choice in warm-up", tensors.MustCopyFlatData[int32](outputs[0]), []int32{2, 2})
				assertFloats(t, "gates in warm-up", tensors.MustCopyFlatData[float32](outputs[1]), []float64{p0[2], p1[2]})
			} else {
				assertInts(t, "choice after warm-up", tensors.MustCopyFlatData[int32](outputs[0]), []int32{0, 2})
			}
		}
	})
}

func TestLossFreeBiasStep(t *testing.T) {
	got, err := LossFreeBiasStep([]float64{0, 0, 0}, []float64{0.6, 0.3, 0.1}, 0.01)
	if err != nil {
		t.Fatalf("LossFreeBiasStep failed: %v", err)
	}
	want := []float64{-0.01, 0.01, 0.01} // mean 1/3: depth 1 over-loaded, depths 2 and 3 under-loaded
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("bias = %v, want %v", got, want)
			break
		}
	}
	if _, err := LossFreeBiasStep([]float64{0, 0}, []float64{1}, 0.01); err == nil {
		t.Errorf("mismatched lengths were accepted")
	}
}

// TestLossFreeBiasBalancesToyRouter routes 60 tokens with fixed probabilities
// that favour depth 1, applies the bias update after each "optimiser step",
// and checks that the loads move toward balance.
func TestLossFreeBiasBalancesToyRouter(t *testing.T) {
	const numTokens, numExperts = 60, 3
	probs := make([][numExperts]float64, numTokens)
	for i := range probs {
		// Every token prefers depth 1, by a margin that varies per token.
		margin := 0.05 + 0.3*float64(i)/numTokens
		rest := (1 - (1.0/3 + margin)) / 2
		probs[i] = [numExperts]float64{1.0/3 + margin, rest + 0.01*float64(i%3), rest - 0.01*float64(i%3)}
	}
	loadsFor := func(bias []float64) []float64 {
		loads := make([]float64, numExperts)
		for _, p := range probs {
			best := 0
			for e := 1; e < numExperts; e++ {
				if p[e]+bias[e] > p[best]+bias[best] {
					best = e
				}
			}
			loads[best] += 1.0 / numTokens
		}
		return loads
	}
	maxVio := func(loads []float64) float64 {
		maxLoad := 0.0
		for _, load := range loads {
			maxLoad = max(maxLoad, load)
		}
		return (maxLoad - 1.0/numExperts) * numExperts
	}

	bias := make([]float64, numExperts)
	initial := maxVio(loadsFor(bias))
	for range 200 {
		var err error
		if bias, err = LossFreeBiasStep(bias, loadsFor(bias), 0.005); err != nil {
			t.Fatalf("LossFreeBiasStep failed: %v", err)
		}
	}
	final := maxVio(loadsFor(bias))
	if initial < 1.9 {
		t.Fatalf("the toy router should start collapsed on depth 1, MaxVio = %.3f", initial)
	}
	// Sign updates of a fixed size keep oscillating around balance by a few tokens.
	if final > 0.5 {
		t.Errorf("MaxVio went from %.3f to %.3f after 200 bias updates, want ≤ 0.5 (loads %v, bias %v)",
			initial, final, loadsFor(bias), bias)
	}
}

func TestUpdateLossFreeBiasVariable(t *testing.T) {
	b := testutil.Backend(t, "go")
	config := DefaultTokenChoice()
	config.LossFreeBiasRate = 0.01
	store := model.NewStore()

	if err := config.UpdateLossFreeBias(store.RootScope(), []float64{0.5, 0.3, 0.2}); err == nil {
		t.Fatalf("updating a bias that does not exist yet returned no error")
	}
	execModel(t, b, store, func(scope *model.Scope, in []*graph.Node) []*graph.Node {
		return []*graph.Node{config.RouteTokens(scope, in[0], 3, 0.02, TokenOptions{}).Gates}
	}, [][][]float32{{{1, 2}}})

	if err := config.UpdateLossFreeBias(store.RootScope(), []float64{0.5, 0.3, 0.2}); err != nil {
		t.Fatalf("UpdateLossFreeBias failed: %v", err)
	}
	bias := tensors.MustCopyFlatData[float32](store.GetVariable("/router/token/loss_free_bias").MustValue())
	assertFloats(t, "bias after one update", bias, []float64{-0.01, 0.01, 0.01})

	variable := store.GetVariable("/router/token/loss_free_bias")
	if variable.Trainable {
		t.Errorf("the loss-free bias is trainable; the optimiser must not change it")
	}
}

// TestSelectionPathsAgree runs each selection with pairwise ranks and with
// the sorting fallback on gates with ties, and expects identical results.
func TestSelectionPathsAgree(t *testing.T) {
	b := sequentialGoBackend(t)
	gates := [][]float32{
		{0.3, 0.7, 0.3, 0.1, 0.7, 0.9, 0.3, 0.2},
		{0.5, 0.5, 0.5, 0.5, 0.1, 0.6, 0.6, 0.0},
	}
	candidates := [][]bool{
		{true, true, false, true, true, false, true, true},
		{true, false, true, true, true, true, true, false},
	}
	run := func() []*tensors.Tensor {
		return execGraph(t, b, func(in []*graph.Node) []*graph.Node {
			selection := SelectTopK(in[0], 3)
			return []*graph.Node{
				selection.Indices, selection.Gates, selection.Mask,
				SelectTopKMasked(in[0], in[1], 3),
				SelectDynamicTopKMasked(in[0], in[1], graph.Const(in[0].Graph(), [][]int32{{2}, {4}})),
			}
		}, gates, candidates)
	}

	withRanks := run()
	saved := maxRankElements
	maxRankElements = 0
	withSort := run()
	maxRankElements = saved

	// By hand, row 0: top-3 are 0.9 (5), 0.7 (1), 0.7 (4); row 1: 0.6 (5), 0.6 (6), then the tie 0.5 goes to index 0.
	assertInts(t, "indices with ranks", tensors.MustCopyFlatData[int32](withRanks[0]), []int32{1, 4, 5, 0, 5, 6})
	assertInts(t, "indices with sort", tensors.MustCopyFlatData[int32](withSort[0]), []int32{1, 4, 5, 0, 5, 6})
	assertFloats(t, "gates with sort", tensors.MustCopyFlatData[float32](withSort[1]), []float64{0.7, 0.7, 0.9, 0.5, 0.6, 0.6})
	names := []string{"selected gates", "selection mask", "masked top-k", "dynamic masked top-k"}
	for i, name := range names {
		output := i + 1
		if i == 0 {
			assertFloats(t, name, tensors.MustCopyFlatData[float32](withRanks[output]), []float64{0.7, 0.7, 0.9, 0.5, 0.6, 0.6})
			continue
		}
		assertBools(t, name+" (ranks against sort)", tensors.MustCopyFlatData[bool](withRanks[output]), tensors.MustCopyFlatData[bool](withSort[output]))
	}

	// Masked, row 0 among candidates {0,1,3,4,6,7}: 0.7 (1), 0.7 (4), then the tie 0.3 goes to 0.
	// Row 1 among {0,2,3,4,5,6}: 0.6 (5), 0.6 (6), 0.5 (0).
	assertBools(t, "masked top-k", tensors.MustCopyFlatData[bool](withRanks[3]), []bool{
		true, true, false, false, true, false, false, false,
		true, false, false, false, false, true, true, false,
	})
	// Dynamic with k = 2 in row 0 and 4 in row 1.
	assertBools(t, "dynamic masked top-k", tensors.MustCopyFlatData[bool](withRanks[4]), []bool{
		false, true, false, false, true, false, false, false,
		true, false, true, false, false, true, true, false,
	})
}

func TestMaskPositionsPadsShortRows(t *testing.T) {
	b := testutil.Backend(t, "go")
	outputs := execGraph(t, b, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{MaskPositions(in[0], 3)}
	}, [][]bool{{false, true, false, false}, {true, true, true, true}})
	// Row 0 has one true entry, so its last two slots stay 0. Row 1 keeps its first three.
	assertInts(t, "positions", tensors.MustCopyFlatData[int32](outputs[0]), []int32{1, 0, 0, 0, 1, 2})
}
