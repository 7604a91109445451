package mor

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gomlx/gomlx/ml/model"
)

// VariableTree lists every variable of store, sorted by path, with its
// dtype and shape, its element count and whether it is trainable, then the
// totals. Variables appear only after a graph that uses them was built.
func VariableTree(store *model.Store) string {
	variables := slices.Collect(store.IterVariables())
	slices.SortFunc(variables, func(a, b *model.Variable) int { return strings.Compare(a.Path(), b.Path()) })

	var text strings.Builder
	table := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "PATH\tSHAPE\tELEMENTS\tTRAINABLE")
	trainable, total := 0, 0
	for _, v := range variables {
		size := v.Shape().Size()
		total += size
		if v.Trainable {
			trainable += size
		}
		fmt.Fprintf(table, "%s\t%s\t%d\t%v\n", v.Path(), v.Shape(), size, v.Trainable)
	}
	_ = table.Flush()
	fmt.Fprintf(&text, "%d variables, %d elements, %d trainable\n", len(variables), total, trainable)
	return text.String()
}

// SharingEntry describes one unrolled layer of a model.
type SharingEntry struct {
	Unrolled int    // ℓ, 0-based position in the unrolled depth
	Unique   int    // index of the unique layer whose projections it uses
	Stage    string // "prefix", "recursion r, block layer j" or "suffix"
	Weights  string // scope of the projections, e.g. "/layer_01"
	Norms    string // scope of the RMSNorm scales: Weights when shared, else "/unrolled_07"
}

// SharingMap returns, for each unrolled layer, the unique layer and the
// variable scopes it reads, following the same rules as Forward.
func SharingMap(cfg Config) []SharingEntry {
	layout := cfg.Layout()
	entries := make([]SharingEntry, 0, cfg.NumLayers)
	add := func(l, u int, stage string) {
		entry := SharingEntry{Unrolled: l, Unique: u, Stage: stage, Weights: "/" + uniqueLayerScopeName(u)}
		entry.Norms = entry.Weights
		if !normsAreShared(cfg, u) {
			entry.Norms = "/" + unrolledNormScopeName(l)
		}
		entries = append(entries, entry)
	}

	for l, u := range layout.Prefix {
		add(l, u, "prefix")
	}
	for r := 1; r <= layout.NumRecursions && len(layout.Block) > 0; r++ {
		for j, u := range layout.Block {
			add(blockUnrolledIndex(layout, j, r), u, fmt.Sprintf("recursion %d, block layer %d", r, j))
		}
	}
	suffixStart := len(layout.Prefix) + layout.NumRecursions*len(layout.Block)
	for k, u := range layout.Suffix {
		add(suffixStart+k, u, "suffix")
	}
	return entries
}

// DescribeSharing renders SharingMap as a table, followed by the groups of
// unrolled layers that share one unique layer, so users see where weights are tied.
func DescribeSharing(cfg Config) string {
	entries := SharingMap(cfg)

	var text strings.Builder
	fmt.Fprintf(&text, "sharing %q, %d unrolled layers, %d unique layers, N_r = %d, norms shared: %v\n",
		cfg.Sharing, len(entries), cfg.NumUniqueLayers(), cfg.NumRecursions, cfg.ShareNorms)
	table := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "UNROLLED\tUNIQUE\tSTAGE\tWEIGHTS\tNORMS")
	for _, e := range entries {
		fmt.Fprintf(table, "%d\t%d\t%s\t%s\t%s\n", e.Unrolled, e.Unique, e.Stage, e.Weights, e.Norms)
	}
	_ = table.Flush()

	uses := make(map[int][]int)
	for _, e := range entries {
		uses[e.Unique] = append(uses[e.Unique], e.Unrolled)
	}
	for u := range cfg.NumUniqueLayers() {
		if len(uses[u]) > 1 {
			fmt.Fprintf(&text, "/%s is tied across unrolled layers %v\n", uniqueLayerScopeName(u), uses[u])
		}
	}
	return text.String()
}
