package backend_test

import (
	"math"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/gomor/gomor/backend"
	"github.com/gomor/gomor/internal/testutil"
)

// The parity test runs one causal self-attention layer and a SiLU MLP, each with a residual
// connection, on fixed weights, and takes the gradient of the mean squared output with respect
// to the input and every weight. Pure Go and XLA CPU must agree within parityTolerance, and the
// loss must match a float64 implementation in plain Go within referenceTolerance.
const (
	paritySequence = 6  // tokens
	parityWidth    = 8  // model width
	parityHidden   = 16 // MLP width

	// float32 sums of a few dozen products reassociated differently by the two backends
	// differ by a few ulps; 1e-4 relative to max(1, |value|) leaves a wide margin.
	parityTolerance    = 1e-4
	referenceTolerance = 1e-4
)

// parityWeights contains the input and the weights as [rows][columns] float32 matrices.
type parityWeights struct {
	x, wq, wk, wv, wo, w1, w2 [][]float32
}

func newParityWeights() parityWeights {
	state := uint32(12345)
	matrix := func(rows, columns int, scale float32) [][]float32 {
		m := make([][]float32, rows)
		for i := range m {
			m[i] = make([]float32, columns)
			for j := range m[i] {
				state = state*1664525 + 1013904223
				m[i][j] = scale * (float32(state>>8)/float32(1<<23) - 1)
			}
		}
		return m
	}
	return parityWeights{
		x:  matrix(paritySequence, parityWidth, 1),
		wq: matrix(parityWidth, parityWidth, 0.5),
		wk: matrix(parityWidth, parityWidth, 0.5),
		wv: matrix(parityWidth, parityWidth, 0.5),
		wo: matrix(parityWidth, parityWidth, 0.5),
		w1: matrix(parityWidth, parityHidden, 0.5),
		w2: matrix(parityHidden, parityWidth, 0.5),
	}
}

// causalMaskBias is 0 where a query may attend to a key (key <= query) and -1e9 elsewhere.
func causalMaskBias() [][]float32 {
	bias := make([][]float32, paritySequence)
	for query := range bias {
		bias[query] = make([]float32, paritySequence)
		for key := query + 1; key < paritySequence; key++ {
			bias[query][key] = -1e9
		}
	}
	return bias
}

// parityBlock builds the attention + MLP block and returns the loss.
func parityBlock(x, wq, wk, wv, wo, w1, w2, maskBias *Node) *Node {
	queries, keys, values := MatMul(x, wq), MatMul(x, wk), MatMul(x, wv) // [T, D] each

	scores := DivScalar(MatMul(queries, Transpose(keys, 0, 1)), math.Sqrt(parityWidth)) // [T, T]
	attention := Softmax(Add(scores, maskBias), -1)
	h := Add(x, MatMul(MatMul(attention, values), wo)) // [T, D]

	hidden := MatMul(h, w1)                                    // [T, H]
	output := Add(h, MatMul(Mul(hidden, Sigmoid(hidden)), w2)) // [T, D]
	return ReduceAllMean(Mul(output, output))
}

// runParity returns the loss followed by the gradients for x, wq, wk, wv, wo, w1, w2, flattened.
func runParity(t *testing.T, b compute.Backend, weights parityWeights) [][]float32 {
	t.Helper()
	outputs, err := ExecOnceN(b, func(g *Graph) []*Node {
		inputs := []*Node{
			Const(g, weights.x), Const(g, weights.wq), Const(g, weights.wk), Const(g, weights.wv),
			Const(g, weights.wo), Const(g, weights.w1), Const(g, weights.w2),
		}
		loss := parityBlock(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5], inputs[6], Const(g, causalMaskBias()))
		return append([]*Node{loss}, Gradient(loss, inputs...)...)
	})
	if err != nil {
		t.Fatalf("running the parity block on %s failed: %v", b.Name(), err)
	}
	flat := make([][]float32, len(outputs))
	for i, output := range outputs {
		flat[i] = tensors.MustCopyFlatData[float32](output)
	}
	return flat
}

func TestBackendParityAttentionMLP(t *testing.T) {
	weights := newParityWeights()
	goOutputs := runParity(t, testutil.Backend(t, backend.ConfigGo), weights)

	reference := referenceParityLoss(weights)
	if diff := math.Abs(float64(goOutputs[0][0]) - reference); diff > referenceTolerance*math.Max(1, math.Abs(reference)) {
		t.Errorf("pure-Go loss %v differs from the float64 reference %v by %g", goOutputs[0][0], reference, diff)
	}

	xlaOutputs := runParity(t, testutil.Backend(t, backend.ConfigXLACPU), weights)
	names := []string{"loss", "dx", "dwq", "dwk", "dwv", "dwo", "dw1", "dw2"}
	for i, name := range names {
		for j := range goOutputs[i] {
			goValue, xlaValue := float64(goOutputs[i][j]), float64(xlaOutputs[i][j])
			if diff := math.Abs(goValue - xlaValue); diff > parityTolerance*math.Max(1, math.Abs(goValue)) {
				t.Errorf("%s[%d]: pure Go %v, XLA CPU %v, difference %g exceeds %g relative", name, j, goValue, xlaValue, diff, parityTolerance)
			}
		}
	}
}

// referenceParityLoss computes the parity block's loss in float64 with plain loops.
func referenceParityLoss(w parityWeights) float64 {
	x := toFloat64(w.x)
	queries, keys, values := matMul64(x, w.wq), matMul64(x, w.wk), matMul64(x, w.wv)

	mixed := make([][]float64, paritySequence) // attention-weighted values, [T, D]
	for query := range mixed {
		scores := make([]float64, query+1)
		maxScore := math.Inf(-1)
		for key := 0; key <= query; key++ {
			for d := range parityWidth {
				scores[key] += queries[query][d] * keys[key][d]
			}
			scores[key] /= math.Sqrt(parityWidth)
			maxScore = math.Max(maxScore, scores[key])
		}
		var total float64
		for key := range scores {
			scores[key] = math.Exp(scores[key] - maxScore)
			total += scores[key]
		}
		mixed[query] = make([]float64, parityWidth)
		for key := range scores {
			for d := range parityWidth {
				mixed[query][d] += scores[key] / total * values[key][d]
			}
		}
	}
	h := addMatrices(x, matMul64(mixed, w.wo))

	hidden := matMul64(h, w.w1)
	for i := range hidden {
		for j := range hidden[i] {
			hidden[i][j] *= 1 / (1 + math.Exp(-hidden[i][j]))
		}
	}
	output := addMatrices(h, matMul64(hidden, w.w2))

	var sum float64
	for i := range output {
		for _, value := range output[i] {
			sum += value * value
		}
	}
	return sum / float64(paritySequence*parityWidth)
}

func toFloat64(m [][]float32) [][]float64 {
	result := make([][]float64, len(m))
	for i := range m {
		result[i] = make([]float64, len(m[i]))
		for j, value := range m[i] {
			result[i][j] = float64(value)
		}
	}
	return result
}

// matMul64 multiplies a [rows, inner] float64 matrix by a [inner, columns] float32 matrix in float64.
func matMul64[T float32 | float64](a [][]float64, b [][]T) [][]float64 {
	result := make([][]float64, len(a))
	for i := range a {
		result[i] = make([]float64, len(b[0]))
		for k := range b {
			for j := range b[k] {
				result[i][j] += a[i][k] * float64(b[k][j])
			}
		}
	}
	return result
}

func addMatrices(a, b [][]float64) [][]float64 {
	result := make([][]float64, len(a))
	for i := range a {
		result[i] = make([]float64, len(a[i]))
		for j := range a[i] {
			result[i][j] = a[i][j] + b[i][j]
		}
	}
	return result
}
