package training

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph-building code reads better unqualified
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/mor"
)

// ModelScorer implements datasets.Scorer with a trained model: each request becomes one row of
// SeqLen tokens (context, continuation, then padding), and the continuation's log-likelihood is
// summed from the log-softmax at the positions before each of its tokens.
//
// NOTE: with sequence-level top-k routing the padding takes part in the routing decision, so a
// routed model's scores depend slightly on SeqLen. Causal routing has no such dependence.
type ModelScorer struct {
	Backend   compute.Backend
	Store     *model.Store
	Model     Model
	SeqLen    int
	BatchSize int
	Routing   RoutingMode
	PadID     int

	exec *model.Exec
}

var _ datasets.Scorer = (*ModelScorer)(nil)

// MaxLength is the longest request input the scorer accepts, for datasets.EvalOptions.MaxLength:
// the context and all but the last continuation token must fit in SeqLen−1 predictions.
func (s *ModelScorer) MaxLength() int { return s.SeqLen - 1 }

// LogLikelihoods implements datasets.Scorer.
func (s *ModelScorer) LogLikelihoods(requests []datasets.Request) ([]datasets.Result, error) {
	if s.exec == nil {
		if err := s.build(); err != nil {
			return nil, err
		}
	}
	batchSize := max(1, s.BatchSize)
	results := make([]datasets.Result, 0, len(requests))
	for start := 0; start < len(requests); start += batchSize {
		end := min(start+batchSize, len(requests))
		part, err := s.scoreBatch(requests[start:end], batchSize)
		if err != nil {
			return nil, err
		}
		results = append(results, part...)
	}
	return results, nil
}

// build compiles the graph tokens [B, L] → (log p of each next token [B, L−1], whether it is the
// argmax [B, L−1]).
func (s *ModelScorer) build() error {
	exec, err := model.NewExec(s.Backend, s.Store, func(scope *model.Scope, tokens *Node) []*Node {
		out := s.Model.Forward(scope, tokens, ForwardOptions{Routing: s.Routing})
		seqLen := tokens.Shape().Dim(1)
		targetLogProbs := mor.LMLoss(out.Logits, tokens, nil).TargetLogProbs  // [B, L−1]
		predictions := Slice(out.Logits, AxisRange(), AxisRange(0, seqLen-1)) // [B, L−1, V]
		targets := Slice(tokens, AxisRange(), AxisRange(1, seqLen))           // [B, L−1]
		isArgmax := Equal(ArgMax(predictions, -1, targets.DType()), targets)  // [B, L−1]
		return []*Node{ConvertDType(targetLogProbs, dtypes.Float32), ConvertDType(isArgmax, dtypes.Float32)}
	})
	if err != nil {
		return err
	}
	s.exec = exec
	return nil
}

func (s *ModelScorer) scoreBatch(requests []datasets.Request, batchSize int) ([]datasets.Result, error) {
	tokens := make([]int32, batchSize*s.SeqLen)
	for i := range tokens {
		tokens[i] = int32(s.PadID)
	}
	for i, request := range requests {
		length := len(request.Context) + len(request.Continuation)
		if len(request.Context) == 0 || len(request.Continuation) == 0 || length > s.SeqLen {
			return nil, fmt.Errorf("request with %d context and %d continuation tokens does not fit a %d-token row: truncate it with MaxLength %d", len(request.Context), len(request.Continuation), s.SeqLen, s.MaxLength())
		}
		row := tokens[i*s.SeqLen : (i+1)*s.SeqLen]
		for j, id := range append(append([]int{}, request.Context...), request.Continuation...) {
			row[j] = int32(id)
		}
	}

	var outputs []*tensors.Tensor
	var callErr error
	if panicErr := exceptions.TryCatch[error](func() {
		outputs, callErr = s.exec.Call(tensors.FromFlatDataAndDimensions(tokens, batchSize, s.SeqLen))
	}); panicErr != nil {
		return nil, panicErr
	}
	if callErr != nil {
		return nil, callErr
	}
	logProbs := tensors.MustCopyFlatData[float32](outputs[0])
	argmax := tensors.MustCopyFlatData[float32](outputs[1])
	for _, t := range outputs {
		_ = t.FinalizeAll()
	}

	// Continuation token j sits at row position len(context)+j and is predicted at the position
	// before it, index len(context)+j−1 of the [B, L−1] outputs.
	predictions := s.SeqLen - 1
	results := make([]datasets.Result, len(requests))
	for i, request := range requests {
		result := datasets.Result{IsGreedy: true}
		for j := range request.Continuation {
			index := i*predictions + len(request.Context) + j - 1
			result.LogLikelihood += float64(logProbs[index])
			result.IsGreedy = result.IsGreedy && argmax[index] > 0
		}
		results[i] = result
	}
	return results, nil
}
