package mor

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/backend"
	"github.com/gomor/gomor/routers"
)

// Benchmark sizes: big enough that the block's matmuls dominate the step
// time, small enough for two CPU cores.
const (
	benchBatch  = 4
	benchLength = 192
)

// benchConfig is a Middle-Cycle model with a 2-layer block applied 3 times.
func benchConfig(router *routers.Config) Config {
	return Config{
		Name:           "routed-bench",
		VocabSize:      512,
		DModel:         128,
		NumHeads:       4,
		NumKVHeads:     2,
		HeadDim:        32,
		FFNSize:        384,
		NumLayers:      8,
		MaxSeqLen:      benchLength,
		RoPETheta:      10000,
		NormEpsilon:    1e-5,
		TiedEmbeddings: true,
		InitStd:        0.02,
		Sharing:        MiddleCycle,
		ShareNorms:     true,
		NumRecursions:  3,
		DType:          "float32",
		Router:         router,
		KV:             RecursionWiseKV,
	}
}

// BenchmarkCompactedBlockByCapacity times one pass of the shared block on
// k = L, 2L/3 and L/3 gathered tokens: the work of one compacted
// expert-choice step at capacities 1, 2/3 and 1/3. The time per op should
// fall with k (linear layers ∝ k, attention ∝ k²).
//
//	go test ./mor -run '^$' -bench CompactedBlockByCapacity -benchtime 20x
func BenchmarkCompactedBlockByCapacity(b *testing.B) {
	compute, err := backend.New()
	if err != nil {
		b.Fatalf("creating the backend failed: %v", err)
	}
	cfg := benchConfig(nil)
	store := model.NewStore()

	for _, k := range []int{benchLength, 2 * benchLength / 3, benchLength / 3} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			exec, err := model.NewExec(compute, store, func(scope *model.Scope, x *graph.Node) *graph.Node {
				positions := graph.Iota(x.Graph(), shapes.Make(dtypes.Int32, benchBatch, k), 1)
				return NewBlockFunc(scope, cfg)(x, positions, BlockAttention{Step: 1}).Output
			})
			if err != nil {
				b.Fatalf("creating the executor failed: %v", err)
			}
			defer exec.Finalize()
			input := tensors.FromValue(benchHidden(benchBatch, k, cfg.DModel)) // converted once, outside the timed loop
			if _, err := exec.Exec(input); err != nil {                        // compiles outside the timed loop
				b.Fatalf("running the block failed: %v", err)
			}

			b.ResetTimer()
			for range b.N {
				if _, err := exec.Exec(input); err != nil {
					b.Fatalf("running the block failed: %v", err)
				}
			}
		})
	}
}

// BenchmarkForwardExpertChoiceVsRecursive times the forward pass of the
// Recursive baseline and of expert-choice MoR (default capacities 1, 2/3,
// 1/3) at the same config. Each reports the paper-rule FLOPs per token and
// the executed matmul FLOPs per token, so the time ratio can be set next to
// the FLOPs ratio.
//
//	go test ./mor -run '^$' -bench ForwardExpertChoiceVsRecursive -benchtime 20x
func BenchmarkForwardExpertChoiceVsRecursive(b *testing.B) {
	compute, err := backend.New()
	if err != nil {
		b.Fatalf("creating the backend failed: %v", err)
	}
	router := routers.DefaultExpertChoice()
	variants := []struct {
		name string
		cfg  Config
	}{
		{"recursive", benchConfig(nil)},
		{"mor-expert-choice", benchConfig(&router)},
	}
	tokens := tensors.FromValue(benchTokens(benchBatch, benchLength, 512))

	for _, variant := range variants {
		b.Run(variant.name, func(b *testing.B) {
			store := model.NewStore()
			exec, err := model.NewExec(compute, store, func(scope *model.Scope, x *graph.Node) *graph.Node {
				return Forward(scope, variant.cfg, x, ForwardOptions{}).Logits
			})
			if err != nil {
				b.Fatalf("creating the executor failed: %v", err)
			}
			defer exec.Finalize()
			if _, err := exec.Exec(tokens); err != nil {
				b.Fatalf("running Forward failed: %v", err)
			}

			b.ResetTimer()
			for range b.N {
				if _, err := exec.Exec(tokens); err != nil {
					b.Fatalf("running Forward failed: %v", err)
				}
			}
			b.StopTimer()

			flopsOptions := FLOPsOptions{ContextLength: benchLength}
			b.ReportMetric(ForwardFLOPsPerToken(variant.cfg, flopsOptions), "paper-flops/token")
			b.ReportMetric(ExecutedFLOPsPerToken(variant.cfg, flopsOptions).Forward, "executed-flops/token")
		})
	}
}

// benchHidden returns a [batch, length, dModel] normal residual stream.
func benchHidden(batch, length, dModel int) [][][]float32 {
	return randomHidden(uint64(length), batch, length, dModel)
}

// benchTokens returns a [batch, length] batch of random tokens below vocab.
func benchTokens(batch, length, vocab int) [][]int32 {
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := make([][]int32, batch)
	for i := range tokens {
		tokens[i] = make([]int32, length)
		for j := range tokens[i] {
			tokens[i][j] = int32(rng.IntN(vocab))
		}
	}
	return tokens
}
