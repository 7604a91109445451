package analysis

import (
	"fmt"
	"strings"
)

// KV caching strategies, with the same values as mor.KVStrategy.
const (
	KVRecursionWise = "recursion-wise"
	KVShared        = "shared"
)

// AttentionMask returns which keys each query may attend to at one recursion
// step (0-based) of a trace: mask[i][j] is true when token i, processed at
// that step, may attend to token j. The mask is causal (j ≤ i) in both
// strategies. With recursion-wise caching the keys are the tokens processed
// at the same step. With recursive KV sharing every earlier token's step-1
// key is cached, so all j ≤ i are visible. Rows of tokens the step skipped are all false.
func AttentionMask(tr Trace, step int, strategy string) ([][]bool, error) {
	if step < 0 || step >= tr.NumRecursions {
		return nil, fmt.Errorf("step %d is outside 0..N_r−1 = 0..%d", step, tr.NumRecursions-1)
	}
	if strategy != KVRecursionWise && strategy != KVShared {
		return nil, fmt.Errorf("KV strategy %q is invalid: use %q or %q", strategy, KVRecursionWise, KVShared)
	}
	n := tr.Length()
	mask := make([][]bool, n)
	for i := range mask {
		mask[i] = make([]bool, n)
		if !tr.Tokens[i].Selected[step] {
			continue
		}
		for j := 0; j <= i; j++ {
			mask[i][j] = strategy == KVShared || tr.Tokens[j].Selected[step]
		}
	}
	return mask, nil
}

// CachedKVEntries returns how many key-value pairs per block layer a
// recursion caches for a trace: Σ_r k_r (the tokens processed at each step)
// with recursion-wise caching, and L (step 1 only) with recursive KV sharing.
func CachedKVEntries(tr Trace, strategy string) int {
	if strategy == KVShared {
		return tr.Length()
	}
	entries := 0
	for _, token := range tr.Tokens {
		entries += token.Depth
	}
	return entries
}

// MaskSVG draws a boolean matrix as a grid of dark (true) and light (false)
// cells, with row and column labels, e.g. an attention mask with queries as
// rows and keys as columns.
func MaskSVG(title string, mask [][]bool, labels []string) string {
	const cell, left, top = 16.0, 72.0, 84.0
	n := len(mask)
	c := &canvas{width: left + cell*float64(n) + 16, height: top + cell*float64(n) + 16}
	c.width = max(c.width, 360)
	c.text(8, 18, title, "start", 13, "bold", 0)
	for i, row := range mask {
		label := ""
		if i < len(labels) {
			label = shortLabel(labels[i])
		}
		c.text(left-4, top+cell*float64(i)+cell-4, label, "end", 10, "normal", 0)
		c.text(left+cell*float64(i)+cell-4, top-4, label, "start", 10, "normal", -60)
		for j, on := range row {
			fill := "#f2f2f2"
			if on {
				fill = "#1f3b73"
			}
			fmt.Fprintf(&c.body, `<rect x="%.1f" y="%.1f" width="%g" height="%g" fill="%s" stroke="#bbb" stroke-width="0.5"/>`,
				left+cell*float64(j), top+cell*float64(i), cell, cell, fill)
		}
	}
	return c.finish()
}

// DepthComparison compares the depths two routing modes give the same tokens.
type DepthComparison struct {
	// Confusion[a][b] counts tokens of depth a in the first set and depth b in the second.
	Confusion [][]int `json:"confusion"`
	// Agreement is the fraction of tokens with equal depths.
	Agreement float64 `json:"agreement"`
	Tokens    int     `json:"tokens"`
}

// CompareDepths pairs the tokens of two trace sets of the same texts (for
// example top-k and causal traces) and counts their depths side by side.
func CompareDepths(first, second []Trace) (DepthComparison, error) {
	if len(first) != len(second) {
		return DepthComparison{}, fmt.Errorf("compare depths: %d traces against %d; trace the same texts in both modes", len(first), len(second))
	}
	numRecursions := max(maxRecursions(first), maxRecursions(second))
	result := DepthComparison{Confusion: make([][]int, numRecursions+1)}
	for d := range result.Confusion {
		result.Confusion[d] = make([]int, numRecursions+1)
	}
	same := 0
	for i := range first {
		if first[i].Length() != second[i].Length() {
			return DepthComparison{}, fmt.Errorf("compare depths: trace %q has %d tokens but its partner %q has %d",
				first[i].Name, first[i].Length(), second[i].Name, second[i].Length())
		}
		for p, token := range first[i].Tokens {
			other := second[i].Tokens[p].Depth
			result.Confusion[token.Depth][other]++
			result.Tokens++
			if token.Depth == other {
				same++
			}
		}
	}
	result.Agreement = ratio(same, result.Tokens)
	return result, nil
}

// ConfusionHTML renders a depth comparison as an HTML table, rows for the
// first set and columns for the second, named by firstName and secondName.
func ConfusionHTML(comparison DepthComparison, firstName, secondName string) string {
	var b strings.Builder
	cellStyle := `style="border:1px solid #ccc;padding:3px 8px;text-align:right"`
	fmt.Fprintf(&b, `<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px"><tr><th %s>%s ↓ / %s →</th>`,
		cellStyle, escapeXML(firstName), escapeXML(secondName))
	for d := 1; d < len(comparison.Confusion); d++ {
		fmt.Fprintf(&b, `<th %s>depth %d</th>`, cellStyle, d)
	}
	b.WriteString(`</tr>`)
	for a := 1; a < len(comparison.Confusion); a++ {
		fmt.Fprintf(&b, `<tr><th %s>depth %d</th>`, cellStyle, a)
		for d := 1; d < len(comparison.Confusion[a]); d++ {
			fmt.Fprintf(&b, `<td %s>%d</td>`, cellStyle, comparison.Confusion[a][d])
		}
		b.WriteString(`</tr>`)
	}
	fmt.Fprintf(&b, `</table><p style="font-family:sans-serif;font-size:12px">%d tokens, %.1f%% with the same depth in both.</p>`,
		comparison.Tokens, 100*comparison.Agreement)
	return b.String()
}
