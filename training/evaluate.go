package training

import (
	"fmt"
	"math"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// NLLResult is the validation NLL of one routing mode and depth cap.
type NLLResult struct {
	Routing  RoutingMode `json:"routing"`
	MaxDepth int         `json:"max_depth"` // 0 means N_r
	Rows     int         `json:"rows"`

	// NLL is the mean over rows of each row's mean next-token NLL (nats), as the MoR paper reports.
	NLL float64 `json:"nll"`

	// DeadTokenRatio is the fraction of positions never selected at the last recursion step in
	// any evaluated row; only for routed models.
	DeadTokenRatio *float64 `json:"dead_token_ratio,omitempty"`

	// Error is set when the model cannot run this mode or cap; NLL is then 0.
	Error string `json:"error,omitempty"`
}

// rowEvaluation is the outcome of running a model over validation rows once.
type rowEvaluation struct {
	rowNLL    []float64
	everAlive []bool // per position: selected at the last step in at least one row
	routed    bool
}

// EvaluateNLL runs the model over rows (each of one length L) in batches of batchSize and returns
// the MoR paper's validation NLL for the given routing mode and depth cap. A final partial batch is
// padded with copies of the last row, whose results are dropped.
func EvaluateNLL(backend compute.Backend, store *model.Store, m Model, rows [][]int32, batchSize int, routing RoutingMode, maxDepth int) (result NLLResult) {
	result = NLLResult{Routing: routing, MaxDepth: maxDepth, Rows: len(rows)}
	if len(rows) == 0 {
		result.Error = "no validation rows"
		return result
	}
	evaluation, err := evaluateRows(backend, store, m, rows, batchSize, ForwardOptions{Routing: routing, MaxDepth: maxDepth})
	if err != nil {
		result.Error = err.Error()
		return result
	}
	var sum float64
	for _, nll := range evaluation.rowNLL {
		sum += nll
	}
	result.NLL = sum / float64(len(evaluation.rowNLL))
	if evaluation.routed {
		dead := 0
		for _, alive := range evaluation.everAlive {
			if !alive {
				dead++
			}
		}
		ratio := float64(dead) / float64(len(evaluation.everAlive))
		result.DeadTokenRatio = &ratio
	}
	return result
}

func evaluateRows(backend compute.Backend, store *model.Store, m Model, rows [][]int32, batchSize int, options ForwardOptions) (*rowEvaluation, error) {
	seqLen := len(rows[0])
	batchSize = max(1, min(batchSize, len(rows)))
	evaluation := &rowEvaluation{everAlive: make([]bool, seqLen)}

	exec, err := model.NewExec(backend, store, func(scope *model.Scope, tokens *graph.Node) []*graph.Node {
		out := m.Forward(scope, tokens, options)
		outputs := []*graph.Node{RowNLL(out.Logits, tokens)}
		if out.LastStepActive != nil {
			outputs = append(outputs, graph.ConvertDType(out.LastStepActive, dtypes.Float32))
		}
		return outputs
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()

	for start := 0; start < len(rows); start += batchSize {
		batch := make([]int32, 0, batchSize*seqLen)
		for i := range batchSize {
			row := rows[min(start+i, len(rows)-1)]
			if len(row) != seqLen {
				return nil, fmt.Errorf("validation row %d has %d tokens, want %d like the first row", start+i, len(row), seqLen)
			}
			batch = append(batch, row...)
		}
		var outputs []*tensors.Tensor
		var callErr error
		if panicErr := exceptions.TryCatch[error](func() {
			outputs, callErr = exec.Call(tensors.FromFlatDataAndDimensions(batch, batchSize, seqLen))
		}); panicErr != nil {
			return nil, panicErr
		}
		if callErr != nil {
			return nil, callErr
		}
		real := min(batchSize, len(rows)-start)
		evaluation.addBatch(outputs, real, seqLen)
	}
	return evaluation, nil
}

// addBatch records the NLL of the real (unpadded) rows of a batch and the positions alive at the
// last recursion step.
func (e *rowEvaluation) addBatch(outputs []*tensors.Tensor, realRows, seqLen int) {
	nll := tensors.MustCopyFlatData[float32](outputs[0])
	for i := range realRows {
		e.rowNLL = append(e.rowNLL, float64(nll[i]))
	}
	if len(outputs) > 1 {
		e.routed = true
		active := tensors.MustCopyFlatData[float32](outputs[1]) // [B, L]
		for i := range realRows {
			for p := range seqLen {
				if active[i*seqLen+p] > 0 {
					e.everAlive[p] = true
				}
			}
		}
	}
	for _, t := range outputs {
		_ = t.FinalizeAll()
	}
}

// EvalPlan lists the NLL evaluations to run on a model.
type EvalPlan struct {
	Routings  []RoutingMode
	DepthCaps []int // 0 is N_r
}

// DefaultEvalPlan returns both routing modes for routed models and top-k alone otherwise. Models
// with a recursion block also get depth caps 1..N_r−1, and recursive baselines N_r+1 as well,
// because a routed model has routers for N_r steps only and never runs more.
func DefaultEvalPlan(m Model, hasBlock bool) EvalPlan {
	plan := EvalPlan{Routings: []RoutingMode{SequenceTopK}, DepthCaps: []int{0}}
	if m.Routed() {
		plan.Routings = append(plan.Routings, CausalRouting)
	}
	if hasBlock && m.NumRecursions() > 1 {
		for depth := 1; depth < m.NumRecursions(); depth++ {
			plan.DepthCaps = append(plan.DepthCaps, depth)
		}
		if !m.Routed() {
			plan.DepthCaps = append(plan.DepthCaps, m.NumRecursions()+1)
		}
	}
	return plan
}

// RunEvalPlan evaluates every routing mode at full depth, and every depth cap with sequence
// top-k routing, and returns the results in that order with the total wall time.
func RunEvalPlan(backend compute.Backend, store *model.Store, m Model, rows [][]int32, batchSize int, plan EvalPlan) ([]NLLResult, time.Duration) {
	start := time.Now()
	var results []NLLResult
	for _, routing := range plan.Routings {
		results = append(results, EvaluateNLL(backend, store, m, rows, batchSize, routing, 0))
	}
	for _, depth := range plan.DepthCaps {
		if depth == 0 {
			continue
		}
		results = append(results, EvaluateNLL(backend, store, m, rows, batchSize, SequenceTopK, depth))
	}
	return results, time.Since(start)
}

// Perplexity returns exp(nll).
func Perplexity(nll float64) float64 { return math.Exp(nll) }
