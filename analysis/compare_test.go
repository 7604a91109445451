package analysis

import "testing"

func TestAttentionMaskRecursionWise(t *testing.T) {
	// Depths 3 1 2 3: at step 2 (index 1) tokens 0, 2 and 3 are processed.
	tr := traceFromDepths("kv", 3, []int{3, 1, 2, 3})
	mask, err := AttentionMask(tr, 1, KVRecursionWise)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]bool{
		{true, false, false, false},
		{false, false, false, false}, // token 1 skipped step 2
		{true, false, true, false},   // token 1's key is not cached at step 2
		{true, false, true, true},
	}
	for i := range want {
		for j := range want[i] {
			if mask[i][j] != want[i][j] {
				t.Errorf("recursion-wise mask[%d][%d] = %v, want %v", i, j, mask[i][j], want[i][j])
			}
		}
	}
	if got := CachedKVEntries(tr, KVRecursionWise); got != 9 {
		t.Errorf("recursion-wise cache holds %d entries, want 9 (the sum of depths)", got)
	}
}

func TestAttentionMaskShared(t *testing.T) {
	tr := traceFromDepths("kv", 3, []int{3, 1, 2, 3})
	mask, err := AttentionMask(tr, 1, KVShared)
	if err != nil {
		t.Fatal(err)
	}
	if !mask[2][1] || !mask[3][1] {
		t.Errorf("shared KV: tokens 2 and 3 cannot see token 1's step-1 key (mask rows %v, %v)", mask[2], mask[3])
	}
	if mask[1][0] || mask[0][1] {
		t.Errorf("shared KV: skipped token 1 attends, or token 0 sees a later key (rows %v, %v)", mask[0], mask[1])
	}
	if got := CachedKVEntries(tr, KVShared); got != 4 {
		t.Errorf("shared cache holds %d entries, want 4 (one per token)", got)
	}
	if _, err := AttentionMask(tr, 3, KVShared); err == nil {
		t.Errorf("step 3 of N_r = 3 (0-based): no error, want one")
	}
	parseXML(t, MaskSVG(`mask <&>`, mask, []string{"<a>", "b", "c", "d"}))
}

func TestCompareDepths(t *testing.T) {
	topK := []Trace{traceFromDepths("a", 3, []int{1, 2, 3, 3})}
	causal := []Trace{traceFromDepths("a", 3, []int{1, 3, 2, 3})}
	comparison, err := CompareDepths(topK, causal)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "agreement", comparison.Agreement, 0.5, 1e-12)
	if comparison.Confusion[2][3] != 1 || comparison.Confusion[3][2] != 1 || comparison.Confusion[3][3] != 1 {
		t.Errorf("confusion %v, want one token each at (2,3), (3,2) and (3,3)", comparison.Confusion)
	}
	parseXML(t, ConfusionHTML(comparison, "top-k", "causal"))
	if _, err := CompareDepths(topK, nil); err == nil {
		t.Errorf("different trace counts: no error, want one")
	}
}
