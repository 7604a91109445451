package training

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"

	"github.com/gomor/gomor/mor"
)

// RowNLL returns the mean next-token negative log-likelihood (natural log) of each row, [B]
// float32: position t predicts token t+1, so each row averages over its L−1 predictions.
// The mean of RowNLL over rows is the MoR paper's validation NLL. With equal-length rows it is
// also the mean over all predicted tokens, the training LM loss. mor.LMLoss gathers the target
// logits, so no one-hot [B, L, V] tensor is built.
func RowNLL(logits, tokens *graph.Node) *graph.Node {
	return graph.ConvertDType(mor.LMLoss(logits, tokens, nil).PerRow, dtypes.Float32)
}
