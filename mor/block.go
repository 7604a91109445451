package mor

import (
	"fmt"

	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// uniqueLayerScopeName is the scope of unique layer u's projections (and of
// its norms when they are shared): "layer_03".
func uniqueLayerScopeName(u int) string {
	return fmt.Sprintf("layer_%02d", u)
}

// unrolledNormScopeName is the scope of the norm scales of unrolled layer ℓ
// when norms are not shared: "unrolled_07".
func unrolledNormScopeName(l int) string {
	return fmt.Sprintf("unrolled_%02d", l)
}

// normsAreShared reports whether unique layer u keeps its norm scales in its
// own scope: always when ShareNorms is set, and for layers used only once.
func normsAreShared(cfg Config, u int) bool {
	if cfg.ShareNorms {
		return true
	}
	uses := 0
	for _, m := range cfg.LayerMap() {
		if m == u {
			uses++
		}
	}
	return uses <= 1
}

// scopesForLayer returns the variable scopes of unrolled layer ℓ, which uses unique layer u.
//
// Tying relies on how gomlx v0.28.6 names variables: a variable is its full
// path in the Store, and Scope.VariableWithShape returns the existing
// variable for a path (panicking when the shape differs), so no Reuse() call
// is needed. Scope.In panics when one Scope value enters the same sub-scope
// twice, so the model uses Scope.At, which allows re-entry.
func scopesForLayer(root *model.Scope, cfg Config, u, l int) layerScopes {
	weights := root.At("%s", uniqueLayerScopeName(u))
	if normsAreShared(cfg, u) {
		return layerScopes{weights: weights, norms: weights}
	}
	return layerScopes{weights: weights, norms: root.At("%s", unrolledNormScopeName(l))}
}

// blockUnrolledIndex returns the unrolled index ℓ of block layer j at
// recursion step r (1-based) for a layout with a recursion block. Steps past
// N_r (depth extrapolation) map to step N_r, so per-step norms are reused.
func blockUnrolledIndex(layout Layout, j, r int) int {
	step := min(r, layout.NumRecursions)
	return len(layout.Prefix) + (step-1)*len(layout.Block) + j
}

// NewBlockFunc returns the shared recursion block of cfg: the K_b layers of
// cfg.Layout().Block run in order, each reading the one set of variables of
// its unique layer, whichever recursion step calls it. It panics for layouts
// without a recursion block (vanilla, Sequence, Middle-Sequence).
//
// When norms are not shared, the block reads the norm scales of the unrolled
// layers of recursion step BlockAttention.Step. A zero Step counts calls, so
// the n-th call is step n.
func NewBlockFunc(root *model.Scope, cfg Config) BlockFunc {
	layout := cfg.Layout()
	if len(layout.Block) == 0 {
		exceptions.Panicf("mor: sharing scheme %q has no recursion block; only %q and %q do",
			cfg.Sharing, Cycle, MiddleCycle)
	}

	calls := 0
	return func(x, positions *graph.Node, attention BlockAttention) BlockResult {
		calls++
		step := attention.Step
		if step == 0 {
			step = calls
		}
		if attention.SharedKV != nil && len(attention.SharedKV) != len(layout.Block) {
			exceptions.Panicf("mor: BlockAttention.SharedKV has %d entries, the block has %d layers",
				len(attention.SharedKV), len(layout.Block))
		}

		result := BlockResult{Output: x}
		for j, u := range layout.Block {
			opts := LayerAttention{
				UpdateShared: attention.UpdateShared,
				KeyMask:      attention.KeyMask,
				ReturnKV:     attention.ReturnKV,
			}
			if attention.SharedKV != nil {
				opts.SharedKV = &attention.SharedKV[j]
			}

			scopes := scopesForLayer(root, cfg, u, blockUnrolledIndex(layout, j, step))
			var kv LayerKV
			result.Output, kv = decoderLayer(scopes, cfg, result.Output, positions, opts)
			if attention.ReturnKV {
				result.KV = append(result.KV, kv)
			}
		}
		return result
	}
}
