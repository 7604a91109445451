package training

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph-building code reads better unqualified
)

// RowNLL returns the mean next-token negative log-likelihood (natural log) of each row, [B]
// float32: position t predicts token t+1, so each row averages over its L−1 predictions.
// The mean of RowNLL over rows is the MoR paper's validation NLL; with equal-length rows it is
// also the mean over all predicted tokens, the training LM loss.
func RowNLL(logits, tokens *Node) *Node {
	seqLen := tokens.Shape().Dim(1)
	vocab := logits.Shape().Dim(2)

	predictions := Slice(logits, AxisRange(), AxisRange(0, seqLen-1)) // [B, L−1, V]
	targets := Slice(tokens, AxisRange(), AxisRange(1, seqLen))       // [B, L−1]
	logProbs := LogSoftmax(ConvertDType(predictions, dtypes.Float32), -1)

	targetMask := OneHot(targets, vocab, dtypes.Float32)      // [B, L−1, V]
	tokenNLL := Neg(ReduceSum(Mul(logProbs, targetMask), -1)) // [B, L−1]
	return ReduceMean(tokenNLL, -1)                           // [B]
}
