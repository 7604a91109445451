package backend_test

import (
	"math"
	"testing"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/gomor/gomor/internal/testutil"
)

// The expected values in these tests are computed by hand from the inputs in each comment.

// runGraph executes graphFn once on b and returns its outputs as flat float64 slices.
func runGraph(t *testing.T, b compute.Backend, graphFn func(g *Graph) []*Node) [][]float64 {
	t.Helper()
	outputs, err := ExecOnceN(b, func(g *Graph) []*Node {
		nodes := graphFn(g)
		for i, node := range nodes {
			nodes[i] = ConvertDType(node, dtypes.Float64)
		}
		return nodes
	})
	if err != nil {
		t.Fatalf("executing the graph on %s failed: %v", b.Name(), err)
	}
	flat := make([][]float64, len(outputs))
	for i, output := range outputs {
		converted, err := tensors.CopyFlatData[float64](output)
		if err != nil {
			t.Fatalf("reading output %d on %s failed: %v", i, b.Name(), err)
		}
		flat[i] = converted
	}
	return flat
}

func assertClose(t *testing.T, label string, got, want []float64, tolerance float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s has %d elements %v, want %d elements %v", label, len(got), got, len(want), want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tolerance {
			t.Errorf("%s[%d] = %v, want %v (tolerance %g); whole output %v", label, i, got[i], want[i], tolerance, got)
		}
	}
}

func TestMatMulAndGradient(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		outputs := runGraph(t, b, func(g *Graph) []*Node {
			x := Const(g, [][]float32{{1, 2}, {3, 4}})
			w := Const(g, [][]float32{{5, 6}, {7, 8}})
			y := MatMul(x, w) // [2, 2]

			// loss = sum(x·w), so dloss/dw[k][j] = sum_i x[i][k] = column sums of x.
			gradient := Gradient(ReduceAllSum(y), w)[0]
			return []*Node{y, gradient}
		})
		assertClose(t, "x·w", outputs[0], []float64{19, 22, 43, 50}, 1e-5)
		assertClose(t, "dsum(x·w)/dw", outputs[1], []float64{4, 4, 6, 6}, 1e-5)
	})
}

func TestSoftmaxGradient(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		outputs := runGraph(t, b, func(g *Graph) []*Node {
			logits := Const(g, []float32{0, float32(math.Log(3))})
			probabilities := Softmax(logits) // [0.25, 0.75]

			// d p[1] / d logits = p[1]·(onehot(1) - p) = [-0.1875, 0.1875].
			gradient := Gradient(ReduceAllSum(Slice(probabilities, AxisRange(1, 2))), logits)[0]
			return []*Node{probabilities, gradient}
		})
		assertClose(t, "softmax", outputs[0], []float64{0.25, 0.75}, 1e-5)
		assertClose(t, "dsoftmax[1]/dlogits", outputs[1], []float64{-0.1875, 0.1875}, 1e-5)
	})
}

func TestTopKAndSort(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		outputs := runGraph(t, b, func(g *Graph) []*Node {
			scores := Const(g, [][]float32{{0.3, 0.9, 0.1, 0.7, 0.5}, {0.2, 0.4, 0.8, 0.6, 0.0}})
			values, indices := TopK(scores, 3, -1) // [2, 3] each

			// Expert-choice routing re-sorts the selected positions into causal order.
			causalOrder := Sort(indices, -1, true)
			return []*Node{values, indices, causalOrder}
		})
		assertClose(t, "top-3 values", outputs[0], []float64{0.9, 0.7, 0.5, 0.8, 0.6, 0.4}, 1e-6)
		assertClose(t, "top-3 indices", outputs[1], []float64{1, 3, 4, 2, 3, 1}, 0)
		assertClose(t, "sorted indices", outputs[2], []float64{1, 3, 4, 1, 2, 3}, 0)
	})
}

func TestGatherScatterAndGradients(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		outputs := runGraph(t, b, func(g *Graph) []*Node {
			// Batch 2, length 3, width 2, flattened to [6, 2] with row b·3 + position.
			hidden := Const(g, [][]float32{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}})
			selected := Const(g, [][]int32{{2}, {0}, {4}}) // [3, 1]: rows (0,2), (0,0), (1,1)

			gathered := Gather(hidden, selected) // [3, 2]
			doubled := MulScalar(gathered, 2)
			merged := ScatterSum(hidden, selected, doubled, false, true) // [6, 2]

			// loss = sum(merged) = sum(hidden) + 2·sum(hidden[selected]), so the gradient is
			// 3 on the selected rows and 1 elsewhere.
			gradient := Gradient(ReduceAllSum(merged), hidden)[0]
			return []*Node{gathered, merged, gradient}
		})
		assertClose(t, "gathered rows", outputs[0], []float64{5, 6, 1, 2, 9, 10}, 0)
		assertClose(t, "scattered sum", outputs[1], []float64{3, 6, 3, 4, 15, 18, 7, 8, 27, 30, 11, 12}, 1e-6)
		assertClose(t, "gradient through gather and scatter", outputs[2], []float64{3, 3, 1, 1, 3, 3, 1, 1, 3, 3, 1, 1}, 1e-6)
	})
}

func TestManyParallelSortsFinish(t *testing.T) {
	// Sixteen independent sorts, more than the pure-Go backend's workers, deadlocked
	// compute v0.1.5's default parallel op execution. The backend package selects
	// sequential op execution to avoid that.
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		const sorts = 16
		done := make(chan error, 1)
		go func() {
			outputs, err := ExecOnceN(b, func(g *Graph) []*Node {
				var sorted []*Node
				for i := range sorts {
					// Row r of the [4, 64] input is -(64·r + column + i), so each row sorts to its reverse.
					input := Neg(AddScalar(IotaFull(g, shapes.Make(dtypes.Float32, 4, 64)), float64(i)))
					sorted = append(sorted, Sort(input, -1, true))
				}
				return sorted
			})
			if err == nil {
				got := tensors.MustCopyFlatData[float32](outputs[sorts-1])
				// The first row of the last sort ascends from -(63 + 15) = -78 to -15.
				if got[0] != -78 || got[63] != -15 {
					t.Errorf("last sort's first row runs from %v to %v, want -78 to -15", got[0], got[63])
				}
			}
			done <- err
		}()

		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("running %d sorts on %s failed: %v", sorts, b.Name(), err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("%d independent sorts on %s did not finish within 2 minutes: the backend deadlocked", sorts, b.Name())
		}
	})
}
