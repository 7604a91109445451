package analysis

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/internal/testutil"
	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/routers"
)

// byteTokenizer maps each byte to its own id, enough to feed text to a model of vocabulary 256.
type byteTokenizer struct{}

func (byteTokenizer) Encode(text string) []int {
	ids := make([]int, len(text))
	for i := range len(text) {
		ids[i] = int(text[i])
	}
	return ids
}

func (byteTokenizer) Decode(ids []int) string {
	bytes := make([]byte, len(ids))
	for i, id := range ids {
		bytes[i] = byte(id)
	}
	return string(bytes)
}

func (byteTokenizer) VocabSize() int { return 256 }
func (byteTokenizer) EOS() int       { return 0 }

// tinyRoutedConfig is a Middle-Cycle MoR of width 16 with a one-layer block applied 3 times.
func tinyRoutedConfig(router routers.Config) mor.Config {
	return mor.Config{
		Name: "analysis-test", VocabSize: 256, DModel: 16, NumHeads: 2, NumKVHeads: 1, HeadDim: 8, FFNSize: 24,
		NumLayers: 5, MaxSeqLen: 64, RoPETheta: 10000, NormEpsilon: 1e-5, TiedEmbeddings: true, InitStd: 0.2,
		Sharing: mor.MiddleCycle, ShareNorms: true, NumRecursions: 3, DType: "float32", Router: &router, KV: mor.RecursionWiseKV,
	}
}

func newSeededStore(t *testing.T) *model.Store {
	t.Helper()
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(5); err != nil {
		t.Fatal(err)
	}
	return store
}

// referenceLosses runs the model for its logits and computes each position's
// next-token cross-entropy in Go, independently of tokenLosses.
func referenceLosses(t *testing.T, b compute.Backend, store *model.Store, cfg mor.Config, row []int32) []float64 {
	t.Helper()
	exec, err := model.NewExec(b, store, func(scope *model.Scope, tokens *graph.Node) *graph.Node {
		return mor.Forward(scope, cfg, tokens, mor.ForwardOptions{Routing: mor.SequenceTopK}).Logits
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	outputs, err := exec.Call(tensors.FromFlatDataAndDimensions(row, 1, len(row)))
	if err != nil {
		t.Fatal(err)
	}
	logits := tensors.MustCopyFlatData[float32](outputs[0]) // [1, L, V]
	vocab := cfg.VocabSize
	losses := make([]float64, len(row)-1)
	for p := range losses {
		values := logits[p*vocab : (p+1)*vocab]
		maxLogit := math.Inf(-1)
		for _, v := range values {
			maxLogit = math.Max(maxLogit, float64(v))
		}
		sum := 0.0
		for _, v := range values {
			sum += math.Exp(float64(v) - maxLogit)
		}
		losses[p] = maxLogit + math.Log(sum) - float64(values[row[p+1]])
	}
	return losses
}

func TestExtractExpertChoiceTopK(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		cfg := tinyRoutedConfig(routers.DefaultExpertChoice())
		store := newSeededStore(t)
		text := "The cat sat on the mat, and 42 dogs barked."[:24] // 24 bytes: k_r = 24, 16, 8
		traces, err := ExtractTraces(b, store, cfg, byteTokenizer{}, []string{text}, ExtractOptions{})
		if err != nil {
			t.Fatalf("ExtractTraces: %v", err)
		}
		if len(traces) != 1 || traces[0].Length() != 24 {
			t.Fatalf("%d traces, first of %d tokens; want 1 trace of 24 tokens", len(traces), traces[0].Length())
		}
		tr := traces[0]
		if tr.Name != "text 0" || tr.Routing != RoutingTopK || tr.Router != RouterExpertChoice || tr.NumRecursions != 3 {
			t.Errorf("trace header %q %q %q N_r %d, want text 0, top-k, expert-choice, 3", tr.Name, tr.Routing, tr.Router, tr.NumRecursions)
		}
		if tr.Tokens[3].Text != " " || tr.Tokens[3].ID != ' ' {
			t.Errorf("token 3 is %q (id %d), want the space after \"The\" (id 32)", tr.Tokens[3].Text, tr.Tokens[3].ID)
		}

		// β = 1, 2/3, 1/3 of L = 24 gives k = 24, 16, 8, so 8 tokens end at each depth.
		assertInts(t, "depth histogram", DepthHistogramOf(traces).Counts, []int{0, 8, 8, 8})
		counts := SelectionCountsOf(traces)
		for step, want := range []int{24, 16, 8} {
			if got := sum(counts.Counts[step]); got != want {
				t.Errorf("step %d selected %d tokens, want %d", step+1, got, want)
			}
		}
		candidatesPerStep := SamplingAccuracy(traces, 0.5).Candidates
		assertInts(t, "candidates per step", candidatesPerStep, []int{24, 24, 16})

		reference := referenceLosses(t, b, store, cfg, []int32(encodeRow(text)))
		for p, want := range reference {
			assertClose(t, "next-token loss", tr.Tokens[p].Loss, want, 1e-4)
		}
		assertClose(t, "loss of the last token", tr.Tokens[23].Loss, math.NaN(), 0)
	})
}

func TestExtractCausalAgreesWithThreshold(t *testing.T) {
	b := testutil.Backend(t, "go") // pure Go compiles these small graphs in well under a second
	cfg := tinyRoutedConfig(routers.DefaultExpertChoice())
	traces, err := ExtractTraces(b, newSeededStore(t), cfg, byteTokenizer{}, []string{"Causal routing never looks ahead."},
		ExtractOptions{Routing: RoutingCausal})
	if err != nil {
		t.Fatalf("ExtractTraces: %v", err)
	}
	// Step 1 has capacity 1 and passes every token. At later steps a candidate
	// continues exactly when its score reaches 0.5.
	accuracy := SamplingAccuracy(traces, 0.5)
	for step := 1; step < 3; step++ {
		if accuracy.Candidates[step] > 0 {
			assertClose(t, "causal sampling accuracy after step 1", accuracy.PerStep[step], 1, 0)
		}
	}
	for p, token := range traces[0].Tokens {
		if !token.Selected[0] {
			t.Errorf("position %d skipped step 1, which has capacity 1", p)
		}
	}
	if traces[0].Routing != RoutingCausal {
		t.Errorf("routing %q, want causal", traces[0].Routing)
	}
}

func TestExtractTokenChoiceDepthIsArgmax(t *testing.T) {
	b := testutil.Backend(t, "go") // pure Go compiles these small graphs in well under a second
	cfg := tinyRoutedConfig(routers.DefaultTokenChoice())
	traces, err := ExtractTraces(b, newSeededStore(t), cfg, byteTokenizer{}, []string{"Token-choice picks a depth up front."}, ExtractOptions{})
	if err != nil {
		t.Fatalf("ExtractTraces: %v", err)
	}
	for p, token := range traces[0].Tokens {
		// Each token's depth d is the argmax of its depth probabilities, so p_d is at least every earlier p_r it was scored for.
		for step := 0; step < token.Depth-1; step++ {
			if token.IsCandidate(step) && token.Scores[step] > token.Scores[token.Depth-1]+1e-6 {
				t.Errorf("position %d of depth %d: p(depth %d) = %.4f exceeds p(depth %d) = %.4f",
					p, token.Depth, step+1, token.Scores[step], token.Depth, token.Scores[token.Depth-1])
			}
		}
		if !token.IsCandidate(0) {
			t.Errorf("position %d has no score at step 1; every token is a token-choice candidate there", p)
		}
	}
}

func TestExtractSplitsLongTexts(t *testing.T) {
	b := testutil.Backend(t, "go") // pure Go compiles these small graphs in well under a second
	cfg := tinyRoutedConfig(routers.DefaultExpertChoice())
	traces, err := ExtractTraces(b, newSeededStore(t), cfg, byteTokenizer{}, []string{"abcdefghijklmnopqrstuvwxyz", "xy"},
		ExtractOptions{SeqLen: 10})
	if err != nil {
		t.Fatalf("ExtractTraces: %v", err)
	}
	var names []string
	var lengths []int
	for _, tr := range traces {
		names = append(names, tr.Name)
		lengths = append(lengths, tr.Length())
	}
	assertInts(t, "row lengths", lengths, []int{10, 10, 6, 2})
	if names[0] != "text 0, row 0" || names[2] != "text 0, row 2" || names[3] != "text 1" {
		t.Errorf("names %q, want text 0, row 0..2 then text 1", names)
	}
	if _, err := ExtractTraces(b, newSeededStore(t), cfg, byteTokenizer{}, []string{"x"}, ExtractOptions{}); err == nil {
		t.Errorf("a one-token text: no error, want one")
	}
}

func encodeRow(text string) []int32 {
	row := make([]int32, len(text))
	for i := range len(text) {
		row[i] = int32(text[i])
	}
	return row
}
