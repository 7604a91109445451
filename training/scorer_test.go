package training

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/internal/testutil"
)

// TestScorerMatchesLogSoftmaxInGo checks ModelScorer against log-softmax computed in Go from the
// model's raw logits for the unpadded sequence.
func TestScorerMatchesLogSoftmaxInGo(t *testing.T) {
	b := testutil.Backend(t, "go")
	m := tinyModel{vocab: tinyVocab, dim: 16}
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, int64(5))
	requests := []datasets.Request{
		{Context: []int{1, 2, 3}, Continuation: []int{4, 5}},
		{Context: []int{7}, Continuation: []int{8, 9, 10, 11}},
		{Context: []int{3, 3, 3, 3, 3}, Continuation: []int{3}},
	}
	scorer := &ModelScorer{Backend: b, Store: store, Model: m, SeqLen: 8, BatchSize: 2, Routing: SequenceTopK, PadID: 0}
	results, err := scorer.LogLikelihoods(requests)
	if err != nil {
		t.Fatal(err)
	}

	for i, request := range requests {
		sequence := append(append([]int32{}, toInt32(request.Context)...), toInt32(request.Continuation)...)
		logits := modelLogits(t, b, store, m, sequence) // [L][V]
		want, greedy := 0.0, true
		for j, token := range request.Continuation {
			position := len(request.Context) + j - 1
			row := logits[position]
			want += float64(row[token]) - logSumExp(row)
			greedy = greedy && argMax(row) == token
		}
		if math.Abs(results[i].LogLikelihood-want) > 1e-4 {
			t.Errorf("request %d: log-likelihood %.6f, want %.6f from Go log-softmax", i, results[i].LogLikelihood, want)
		}
		if results[i].IsGreedy != greedy {
			t.Errorf("request %d: IsGreedy %v, want %v", i, results[i].IsGreedy, greedy)
		}
	}
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// modelLogits runs the model on one unpadded sequence and returns its logits as [L][V].
func modelLogits(t *testing.T, b compute.Backend, store *model.Store, m Model, sequence []int32) [][]float32 {
	t.Helper()
	logits, err := model.ExecOnce(b, store, func(scope *model.Scope, tokens *graph.Node) *graph.Node {
		return m.Forward(scope, tokens, ForwardOptions{}).Logits
	}, tensors.FromFlatDataAndDimensions(sequence, 1, len(sequence)))
	if err != nil {
		t.Fatal(err)
	}
	flat := tensors.MustCopyFlatData[float32](logits)
	vocab := len(flat) / len(sequence)
	rows := make([][]float32, len(sequence))
	for i := range rows {
		rows[i] = flat[i*vocab : (i+1)*vocab]
	}
	return rows
}

func logSumExp(row []float32) float64 {
	maxValue := math.Inf(-1)
	for _, v := range row {
		maxValue = math.Max(maxValue, float64(v))
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - maxValue)
	}
	return maxValue + math.Log(sum)
}

func argMax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}
