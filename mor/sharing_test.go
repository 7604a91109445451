package mor

import (
	"slices"
	"testing"
)

// schemeConfig returns a minimal config for layer-map tests.
func schemeConfig(scheme SharingScheme, numLayers, numRecursions int) Config {
	return Config{Sharing: scheme, NumLayers: numLayers, NumRecursions: numRecursions}
}

// TestLayerMapPaperExamples checks the four schemes against the worked
// examples of the MoR paper's sharing table: N_L = 9 for Cycle and Sequence,
// N_L = 11 for the Middle schemes, N_r = 3.
func TestLayerMapPaperExamples(t *testing.T) {
	cases := []struct {
		scheme    SharingScheme
		numLayers int
		want      []int
	}{
		{Cycle, 9, []int{0, 1, 2, 0, 1, 2, 0, 1, 2}},
		{Sequence, 9, []int{0, 0, 0, 1, 1, 1, 2, 2, 2}},
		{MiddleCycle, 11, []int{0, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4}},
		{MiddleSequence, 11, []int{0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4}},
	}
	for _, tc := range cases {
		t.Run(string(tc.scheme), func(t *testing.T) {
			got := schemeConfig(tc.scheme, tc.numLayers, 3).LayerMap()
			if !slices.Equal(got, tc.want) {
				t.Errorf("LayerMap() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLayerMapVanillaIsIdentity(t *testing.T) {
	got := schemeConfig(NoSharing, 5, 1).LayerMap()
	want := []int{0, 1, 2, 3, 4}
	if !slices.Equal(got, want) {
		t.Errorf("LayerMap() = %v, want %v", got, want)
	}
}

func TestUniqueLayersAndBlockSize(t *testing.T) {
	cases := []struct {
		name          string
		config        Config
		wantBlockSize int
		wantUnique    int
	}{
		{"cycle 9/3", schemeConfig(Cycle, 9, 3), 3, 3},
		{"sequence 9/3", schemeConfig(Sequence, 9, 3), 3, 3},
		{"middle-cycle 11/3", schemeConfig(MiddleCycle, 11, 3), 3, 5},
		{"middle-sequence 11/3", schemeConfig(MiddleSequence, 11, 3), 3, 5},
		{"middle-cycle 360m r3", schemeConfig(MiddleCycle, 32, 3), 10, 12},
		{"middle-cycle 360m r4", schemeConfig(MiddleCycle, 34, 4), 8, 10},
		{"vanilla 32", schemeConfig(NoSharing, 32, 1), 32, 32},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.config.BlockSize(); got != tc.wantBlockSize {
				t.Errorf("BlockSize() = %d, want %d", got, tc.wantBlockSize)
			}
			if got := tc.config.NumUniqueLayers(); got != tc.wantUnique {
				t.Errorf("NumUniqueLayers() = %d, want %d", got, tc.wantUnique)
			}
		})
	}
}

// TestMiddleCycleMatchesReferenceAliasing checks the reference code's
// formulation: physical layers 1 + j + r·K_b, r = 0..N_r−1, all alias
// physical layer 1 + j, and the first and last layers are unique.
func TestMiddleCycleMatchesReferenceAliasing(t *testing.T) {
	const numLayers, numRecursions = 32, 3
	blockSize := (numLayers - 2) / numRecursions
	layerMap := schemeConfig(MiddleCycle, numLayers, numRecursions).LayerMap()

	if layerMap[0] != 0 {
		t.Errorf("first layer uses %d, want 0", layerMap[0])
	}
	if layerMap[numLayers-1] != blockSize+1 {
		t.Errorf("last layer uses %d, want %d", layerMap[numLayers-1], blockSize+1)
	}
	for j := range blockSize {
		for r := range numRecursions {
			physical := 1 + j + r*blockSize
			if layerMap[physical] != 1+j {
				t.Errorf("physical layer %d uses %d, want %d (block layer j = %d, recursion r = %d)", physical, layerMap[physical], 1+j, j, r)
			}
		}
	}
}

func TestLayoutMiddleCycle(t *testing.T) {
	layout := schemeConfig(MiddleCycle, 32, 3).Layout()
	if !slices.Equal(layout.Prefix, []int{0}) {
		t.Errorf("Prefix = %v, want [0]", layout.Prefix)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(layout.Block, want) {
		t.Errorf("Block = %v, want %v", layout.Block, want)
	}
	if !slices.Equal(layout.Suffix, []int{11}) {
		t.Errorf("Suffix = %v, want [11]", layout.Suffix)
	}
	if layout.NumRecursions != 3 {
		t.Errorf("NumRecursions = %d, want 3", layout.NumRecursions)
	}
}

func TestLayoutCycleHasOnlyBlock(t *testing.T) {
	layout := schemeConfig(Cycle, 9, 3).Layout()
	if len(layout.Prefix) != 0 || len(layout.Suffix) != 0 {
		t.Errorf("Prefix = %v, Suffix = %v, want both empty", layout.Prefix, layout.Suffix)
	}
	if want := []int{0, 1, 2}; !slices.Equal(layout.Block, want) {
		t.Errorf("Block = %v, want %v", layout.Block, want)
	}
}

// TestLayoutSequenceRunsInPrefix checks that schemes without a recursion
// block list the unrolled layers in Prefix with repeated indices.
func TestLayoutSequenceRunsInPrefix(t *testing.T) {
	layout := schemeConfig(MiddleSequence, 11, 3).Layout()
	if want := []int{0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4}; !slices.Equal(layout.Prefix, want) {
		t.Errorf("Prefix = %v, want %v", layout.Prefix, want)
	}
	if len(layout.Block) != 0 || layout.NumRecursions != 1 {
		t.Errorf("Block = %v, NumRecursions = %d, want no block and 1", layout.Block, layout.NumRecursions)
	}
}

// TestLayoutUnrollsToLayerMap checks that running Prefix, Block × N_r and
// Suffix in order visits the unique layers of LayerMap.
func TestLayoutUnrollsToLayerMap(t *testing.T) {
	for _, config := range []Config{
		schemeConfig(Cycle, 12, 4),
		schemeConfig(MiddleCycle, 26, 3),
		schemeConfig(MiddleCycle, 8, 2),
		schemeConfig(NoSharing, 6, 1),
	} {
		layout := config.Layout()
		unrolled := slices.Clone(layout.Prefix)
		for range layout.NumRecursions {
			unrolled = append(unrolled, layout.Block...)
		}
		unrolled = append(unrolled, layout.Suffix...)
		if want := config.LayerMap(); !slices.Equal(unrolled, want) {
			t.Errorf("%s N_L = %d N_r = %d: unrolled layout %v, want LayerMap %v",
				config.Sharing, config.NumLayers, config.NumRecursions, unrolled, want)
		}
	}
}
