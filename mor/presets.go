package mor

// Named model configurations. "The paper" below is the Mixture-of-Recursions
// paper (Bae et al. 2025, arXiv 2507.10524): its four model sizes follow the
// SmolLM configurations, and its recursive models use Middle-Cycle sharing.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gomor/gomor/routers"
)

// TinyVocabSize is the vocabulary size of the tiny CPU family.
//
// NOTE: it must equal the vocabulary size of the tokenizer shipped with the
// repository for the tiny models; change it here when that tokenizer changes.
const TinyVocabSize = 4096

// paperVocabSize is the SmolLM tokenizer's vocabulary, used at every paper scale.
const paperVocabSize = 49152

// Preset families.
const (
	familyVanilla   = "vanilla"
	familyRecursive = "recursive"
	familyMoREC     = "mor-ec"
	familyMoRTC     = "mor-tc"
)

// presetFamilies are the preset families in listing order.
var presetFamilies = []string{familyVanilla, familyRecursive, familyMoREC, familyMoRTC}

// modelScale holds the dimensions of one base (vanilla) model size.
type modelScale struct {
	name       string
	dModel     int
	numHeads   int
	numKVHeads int
	ffnSize    int
	numLayers  int // N_L of the vanilla model
	vocabSize  int
	maxSeqLen  int
}

// modelScales are the four sizes of the MoR paper (SmolLM configurations,
// paper Table 6) and the tiny CPU family. Every scale uses head_dim 64.
var modelScales = []modelScale{
	{name: "135m", dModel: 576, numHeads: 9, numKVHeads: 3, ffnSize: 1536, numLayers: 30, vocabSize: paperVocabSize, maxSeqLen: 2048},
	{name: "360m", dModel: 960, numHeads: 15, numKVHeads: 5, ffnSize: 2560, numLayers: 32, vocabSize: paperVocabSize, maxSeqLen: 2048},
	{name: "730m", dModel: 1536, numHeads: 24, numKVHeads: 8, ffnSize: 4096, numLayers: 26, vocabSize: paperVocabSize, maxSeqLen: 2048},
	{name: "1.7b", dModel: 2048, numHeads: 32, numKVHeads: 32, ffnSize: 8192, numLayers: 24, vocabSize: paperVocabSize, maxSeqLen: 2048},
	{name: "tiny", dModel: 256, numHeads: 4, numKVHeads: 2, ffnSize: 768, numLayers: 8, vocabSize: TinyVocabSize, maxSeqLen: 256},
}

// listedRecursions are the N_r values PresetNames lists for recursive and MoR
// families; Preset accepts any N_r ≥ 2 that leaves at least one block layer.
var listedRecursions = []int{2, 3, 4}

// defaultPresetRecursions is N_r when a recursive or MoR name has no -r suffix:
// 3, the paper's main configuration.
const defaultPresetRecursions = 3

// kvShareSuffix selects recursive KV sharing for a MoR preset.
const kvShareSuffix = "-kvshare"

// Preset returns the named configuration. Names follow
// <family>-<scale>[-r<N_r>][-kvshare]:
//   - family: vanilla, recursive (Middle-Cycle, every token runs all N_r steps),
//     mor-ec (expert-choice routing) or mor-tc (token-choice routing);
//   - scale: 135m, 360m, 730m, 1.7b or tiny;
//   - -r<N_r>: number of recursions, recursive and MoR families only (default 3);
//   - -kvshare: recursive KV sharing, MoR families only;
//   - vanilla-<scale>-l<N_L> overrides the vanilla depth, e.g. vanilla-tiny-l4
//     (parameter-matched to the tiny recursive models) or vanilla-360m-l34.
//
// Recursive and MoR models use Middle-Cycle sharing with a unique first and
// last layer. Their unrolled depth N_L is the smallest depth not below the
// vanilla model's for which N_L − 2 is divisible by N_r. This rule gives every
// layout the paper uses: 135M r3 = 1+10+1 (32 layers), 360M r2/r3/r4 =
// 1+15+1 / 1+10+1 / 1+8+1 (34 layers), 730M r3 = 1+8+1 (26), 1.7B r2/r3 =
// 1+11+1 (24) / 1+8+1 (26), and for the tiny family 1+2+1 applied as
// 1+[2 × 3]+1 (8) and 1+3+1 as 1+[3 × 2]+1 (8).
func Preset(name string) (Config, error) {
	spec, err := parsePresetName(name)
	if err != nil {
		return Config{}, err
	}
	return spec.config(), nil
}

// PresetNames returns the canonical preset names, sorted.
func PresetNames() []string {
	var names []string
	for _, scale := range modelScales {
		names = append(names, familyVanilla+"-"+scale.name)
		for _, family := range presetFamilies[1:] {
			for _, numRecursions := range listedRecursions {
				base := fmt.Sprintf("%s-%s-r%d", family, scale.name, numRecursions)
				names = append(names, base)
				if family == familyMoREC || family == familyMoRTC {
					names = append(names, base+kvShareSuffix)
				}
			}
		}
	}
	names = append(names, "vanilla-tiny-l4", "vanilla-360m-l34")
	slices.Sort(names)
	return names
}

// presetSpec is a parsed preset name.
type presetSpec struct {
	name          string
	family        string
	scale         modelScale
	numRecursions int
	numLayers     int // vanilla depth override; 0 means the scale's depth
	kvShare       bool
}

// parsePresetName splits a name into family, scale and suffixes.
func parsePresetName(name string) (presetSpec, error) {
	spec := presetSpec{name: name}

	rest, found := "", false
	for _, family := range presetFamilies {
		if rest, found = strings.CutPrefix(name, family+"-"); found {
			spec.family = family
			break
		}
	}
	if !found {
		return presetSpec{}, unknownPresetError(name, "the family must be vanilla, recursive, mor-ec or mor-tc")
	}

	parts := strings.Split(rest, "-")
	scaleIndex := slices.IndexFunc(modelScales, func(s modelScale) bool { return s.name == parts[0] })
	if scaleIndex < 0 {
		return presetSpec{}, unknownPresetError(name, fmt.Sprintf("unknown scale %q", parts[0]))
	}
	spec.scale = modelScales[scaleIndex]

	if err := spec.parseSuffixes(parts[1:]); err != nil {
		return presetSpec{}, unknownPresetError(name, err.Error())
	}
	if spec.family != familyVanilla && spec.numRecursions == 0 {
		spec.numRecursions = defaultPresetRecursions
	}
	return spec, spec.checkDepth()
}

// parseSuffixes reads the -r<N_r>, -l<N_L> and -kvshare parts of a name, in that order.
func (spec *presetSpec) parseSuffixes(parts []string) error {
	isMoR := spec.family == familyMoREC || spec.family == familyMoRTC
	for i, part := range parts {
		switch {
		case part == strings.TrimPrefix(kvShareSuffix, "-") && i == len(parts)-1:
			if !isMoR {
				return fmt.Errorf("%s applies to the mor-ec and mor-tc families only", kvShareSuffix)
			}
			spec.kvShare = true
		case strings.HasPrefix(part, "r") && i == 0:
			if spec.family == familyVanilla {
				return fmt.Errorf("a vanilla model has no recursions; drop -%s", part)
			}
			n, err := strconv.Atoi(part[1:])
			if err != nil || n < 2 {
				return fmt.Errorf("-%s must be -r<N_r> with an integer N_r ≥ 2", part)
			}
			spec.numRecursions = n
		case strings.HasPrefix(part, "l") && i == 0:
			if spec.family != familyVanilla {
				return fmt.Errorf("-l<N_L> applies to the vanilla family only")
			}
			n, err := strconv.Atoi(part[1:])
			if err != nil || n < 1 {
				return fmt.Errorf("-%s must be -l<N_L> with an integer number of layers N_L ≥ 1", part)
			}
			spec.numLayers = n
		default:
			return fmt.Errorf("unexpected suffix %q", "-"+part)
		}
	}
	return nil
}

// checkDepth rejects an N_r that leaves the shared block without layers.
func (spec presetSpec) checkDepth() error {
	if spec.family == familyVanilla {
		return nil
	}
	if spec.scale.numLayers-2 < spec.numRecursions {
		return unknownPresetError(spec.name, fmt.Sprintf(
			"N_r = %d leaves no layer for the shared block of a %d-layer %s model; use N_r ≤ %d",
			spec.numRecursions, spec.scale.numLayers, spec.scale.name, spec.scale.numLayers-2))
	}
	return nil
}

// unknownPresetError names the rejected preset, the reason and every valid name.
func unknownPresetError(name, reason string) error {
	return fmt.Errorf("unknown preset %q (%s); names are <family>-<scale>[-r<N_r>][-kvshare], valid names: %s",
		name, reason, strings.Join(PresetNames(), ", "))
}

// config builds the Config of a parsed preset name.
func (spec presetSpec) config() Config {
	s := spec.scale
	c := Config{
		Name:           canonicalPresetName(spec),
		VocabSize:      s.vocabSize,
		DModel:         s.dModel,
		NumHeads:       s.numHeads,
		NumKVHeads:     s.numKVHeads,
		HeadDim:        64,
		FFNSize:        s.ffnSize,
		NumLayers:      s.numLayers,
		MaxSeqLen:      s.maxSeqLen,
		RoPETheta:      10000,
		NormEpsilon:    1e-5,
		TiedEmbeddings: true,
		InitStd:        0.02,
		Sharing:        NoSharing,
		ShareNorms:     true,
		NumRecursions:  1,
		// NOTE: the paper trained in bf16 mixed precision, which keeps float32
		// master weights; presets keep float32 parameters on every backend.
		DType: "float32",
		KV:    RecursionWiseKV,
	}

	if spec.family == familyVanilla {
		if spec.numLayers > 0 {
			c.NumLayers = spec.numLayers
		}
		return c
	}

	c.Sharing = MiddleCycle
	c.NumRecursions = spec.numRecursions
	c.NumLayers = middleCycleDepth(s.numLayers, spec.numRecursions)

	switch spec.family {
	case familyMoREC:
		router := routers.DefaultExpertChoice()
		c.Router = &router
	case familyMoRTC:
		router := routers.DefaultTokenChoice()
		c.Router = &router
	}
	if spec.kvShare {
		c.KV = SharedKV
	}
	return c
}

// middleCycleDepth returns the smallest N_L ≥ baseLayers with N_L − 2 divisible by N_r.
func middleCycleDepth(baseLayers, numRecursions int) int {
	n := baseLayers
	for (n-2)%numRecursions != 0 {
		n++
	}
	return n
}

// canonicalPresetName spells out the default N_r, so that "recursive-360m"
// and "recursive-360m-r3" produce the same Config.
func canonicalPresetName(spec presetSpec) string {
	name := spec.family + "-" + spec.scale.name
	switch {
	case spec.family == familyVanilla && spec.numLayers > 0:
		name += "-l" + strconv.Itoa(spec.numLayers)
	case spec.family != familyVanilla:
		name += "-r" + strconv.Itoa(spec.numRecursions)
	}
	if spec.kvShare {
		name += kvShareSuffix
	}
	return name
}

// defaultRouter returns the router package's defaults for a routing kind,
// the paper's final recipe of that kind.
func defaultRouter(kind routers.Kind) (routers.Config, error) {
	switch kind {
	case routers.ExpertChoice:
		return routers.DefaultExpertChoice(), nil
	case routers.TokenChoice:
		return routers.DefaultTokenChoice(), nil
	default:
		return routers.Config{}, fmt.Errorf("router.kind %q is not a known router kind; use %q or %q", kind, routers.ExpertChoice, routers.TokenChoice)
	}
}
