package mor

import "fmt"

// Layout is the execution plan of a model: unique layers run once before the
// recursion (Prefix), a block of unique layers applied NumRecursions times
// (Block), and unique layers run once after it (Suffix). Entries are indices
// into the pool of unique layers.
//
// Vanilla: Prefix holds every layer, Block is empty and NumRecursions is 1.
// Cycle: Block holds K_b = N_L/N_r layers. Middle-Cycle: Prefix = [0],
// Block = [1..K_b], Suffix = [K_b+1]. Sequence and Middle-Sequence repeat each
// layer N_r times in a row, so they have no recursion block: their unrolled
// layers are listed in Prefix with repeated indices, and routing is not
// defined for them.
type Layout struct {
	Prefix        []int
	Block         []int
	Suffix        []int
	NumRecursions int
}

// BlockSize returns K_b: the layers of the shared block for Cycle and
// Middle-Cycle, the distinct repeated layers for Sequence and Middle-Sequence
// (each repeated N_r times in a row), and N_L for a vanilla model. It
// assumes a valid config, because it divides by N_r.
func (c Config) BlockSize() int {
	switch c.Sharing {
	case MiddleCycle, MiddleSequence:
		return (c.NumLayers - 2) / c.NumRecursions
	case Cycle, Sequence:
		return c.NumLayers / c.NumRecursions
	default:
		return c.NumLayers
	}
}

// LayerMap returns, for each unrolled layer ℓ = 0..N_L−1, the index of the
// unique layer whose parameters it uses. It assumes a valid config.
func (c Config) LayerMap() []int {
	n, kb := c.NumLayers, c.BlockSize()
	layerMap := make([]int, n)
	for l := range layerMap {
		switch c.Sharing {
		case Cycle:
			layerMap[l] = l % kb
		case Sequence:
			layerMap[l] = l / c.NumRecursions
		case MiddleCycle:
			layerMap[l] = middleIndex(l, n, kb, func(i int) int { return i%kb + 1 })
		case MiddleSequence:
			layerMap[l] = middleIndex(l, n, kb, func(i int) int { return i/c.NumRecursions + 1 })
		default:
			layerMap[l] = l
		}
	}
	return layerMap
}

// middleIndex maps layer l of a Middle-* scheme: the first and last layers are
// unique (indices 0 and kb+1), and inner layer l uses inner(l−1).
func middleIndex(l, n, kb int, inner func(int) int) int {
	switch l {
	case 0:
		return 0
	case n - 1:
		return kb + 1
	default:
		return inner(l - 1)
	}
}

// NumUniqueLayers returns the number of distinct parameter sets among the layers.
func (c Config) NumUniqueLayers() int {
	switch c.Sharing {
	case MiddleCycle, MiddleSequence:
		return c.BlockSize() + 2
	case Cycle, Sequence:
		return c.BlockSize()
	default:
		return c.NumLayers
	}
}

// Layout returns the execution plan of the config. It assumes a valid config.
func (c Config) Layout() Layout {
	kb := c.BlockSize()
	switch c.Sharing {
	case Cycle:
		return Layout{Block: seq(0, kb), NumRecursions: c.NumRecursions}
	case MiddleCycle:
		return Layout{Prefix: []int{0}, Block: seq(1, kb), Suffix: []int{kb + 1}, NumRecursions: c.NumRecursions}
	case Sequence, MiddleSequence, NoSharing:
		return Layout{Prefix: c.LayerMap(), NumRecursions: 1}
	default:
		panic(fmt.Sprintf("mor: unknown sharing scheme %q", c.Sharing))
	}
}

// seq returns [start, start+1, ..., start+n−1].
func seq(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}
