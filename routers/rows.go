package routers

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

// Per-sequence gathers and scatters. GatherWithBatchDims is commented out in
// GoMLX v0.28.6, so these flatten the batch into the index: row b, position p
// of a [B, L, ...] tensor is row b·L + p of its [B·L, ...] reshape.

// flatRowIndices turns per-row indices [B, k] into flat indices [B, k, 1]
// int32 into the [B·L, ...] reshape of a tensor with rows of length length.
func flatRowIndices(indices *graph.Node, length int) *graph.Node {
	indices = graph.ConvertDType(indices, dtypes.Int32)
	rowStart := graph.MulScalar(graph.IotaLike(indices, 0), length) // [B, k]: b·L
	return graph.InsertAxes(graph.Add(rowStart, indices), -1)       // [B, k, 1]
}

// GatherRows returns out[b, i, ...] = x[b, indices[b, i], ...] for x [B, L, ...]
// and integer indices [B, k]; out is [B, k, ...]. The gradient flows to x.
func GatherRows(x, indices *graph.Node) *graph.Node {
	dims := x.Shape().Dimensions
	batch, length := dims[0], dims[1]
	trailing := dims[2:]

	flatDims := append([]int{batch * length}, trailing...)
	flat := graph.Reshape(x, flatDims...) // [B·L, ...]
	return graph.Gather(flat, flatRowIndices(indices, length))
}

// ScatterAddRows returns x with updates[b, i, ...] added to x[b, indices[b, i], ...].
// x is [B, L, ...], indices [B, k] and updates [B, k, ...]; indices within a row
// should be distinct (a repeated index adds twice).
func ScatterAddRows(x, indices, updates *graph.Node) *graph.Node {
	return scatterAddRows(x, indices, updates, true)
}

// scatterAddRows is ScatterAddRows with the uniqueness hint of ScatterSum:
// unique must be false when indices repeat within a row.
func scatterAddRows(x, indices, updates *graph.Node, unique bool) *graph.Node {
	dims := x.Shape().Dimensions
	batch, length := dims[0], dims[1]
	trailing := dims[2:]

	flatDims := append([]int{batch * length}, trailing...)
	flat := graph.Reshape(x, flatDims...) // [B·L, ...]
	summed := graph.ScatterSum(flat, flatRowIndices(indices, length), updates, false, unique)
	return graph.Reshape(summed, dims...) // [B, L, ...]
}

// RowMask returns a [B, length] bool mask that is true at the integer indices [B, k].
func RowMask(indices *graph.Node, length int) *graph.Node {
	batch, count := indices.Shape().Dim(0), indices.Shape().Dim(1)
	g := indices.Graph()
	zeros := graph.Zeros(g, shapes.Make(dtypes.Float32, batch, length))
	ones := graph.Ones(g, shapes.Make(dtypes.Float32, batch, count))
	return graph.GreaterThan(ScatterAddRows(zeros, indices, ones), graph.ScalarZero(g, dtypes.Float32))
}

// MaskPositions returns the positions of the true entries of mask [B, L] in
// ascending order, [B, count] int32, when every row has exactly count of
// them. It compacts with a cumulative sum and a scatter, without sorting.
// A row with fewer true entries leaves its last slots at 0.
func MaskPositions(mask *graph.Node, count int) *graph.Node {
	g := mask.Graph()
	batch, length := mask.Shape().Dim(0), mask.Shape().Dim(1)
	positions := graph.Iota(g, shapes.Make(dtypes.Int32, batch, length), 1) // [B, L]

	// slot: the index of each true entry among the true entries of its row.
	// False entries, and true entries past count, go to a spare slot count.
	slot := graph.CumSum(graph.ConvertDType(mask, dtypes.Int32), 1, &graph.CumSumOptions{Exclusive: true})
	spare := graph.Scalar(g, dtypes.Int32, count)
	slot = graph.Where(graph.LogicalAnd(mask, graph.LessThan(slot, spare)), slot, spare)

	// compacted: [B, count+1] with the spare slot last, then [B, count].
	compacted := scatterAddRows(graph.Zeros(g, shapes.Make(dtypes.Int32, batch, count+1)), slot, positions, false)
	return graph.Slice(compacted, graph.AxisRange(), graph.AxisRange(0, count))
}
