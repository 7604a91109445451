package analysis

import "testing"

func TestClassifyShapesMixedText(t *testing.T) {
	pieces := []string{"The", " def", "ens", "ively", ",", " 19", "99", " cat", "\n", "'s", "3rd", "(", "hello", ")", " ", "—"}
	want := []TokenClass{
		ClassWholeWord,    // "The": first token, next piece starts a new word
		ClassWordStart,    // " def": followed by the continuation "ens"
		ClassContinuation, // "ens"
		ClassContinuation, // "ively"
		ClassPunctuation,  // ","
		ClassDigits,       // " 19"
		ClassDigits,       // "99"
		ClassWholeWord,    // " cat": followed by a newline
		ClassWhitespace,   // "\n"
		ClassOther,        // "'s"
		ClassOther,        // "3rd"
		ClassPunctuation,  // "("
		ClassWholeWord,    // "hello": starts a word because it follows punctuation
		ClassPunctuation,  // ")"
		ClassWhitespace,   // " "
		ClassPunctuation,  // "—"
	}
	got := ClassifyShapes(pieces)
	for i := range pieces {
		if got[i] != want[i] {
			t.Errorf("piece %d %q: class %q, want %q", i, pieces[i], got[i], want[i])
		}
	}
}

func TestClassifyShapesWordAfterNewline(t *testing.T) {
	got := ClassifyShapes([]string{"\n", "Chap", "ter"})
	if got[1] != ClassWordStart {
		t.Errorf("\"Chap\" after a newline: class %q, want %q", got[1], ClassWordStart)
	}
	if got[2] != ClassContinuation {
		t.Errorf("\"ter\": class %q, want %q", got[2], ClassContinuation)
	}
}

func TestClassifyShapesInvalidUTF8(t *testing.T) {
	got := ClassifyShapes([]string{"\xe2\x80"})
	if got[0] != ClassOther {
		t.Errorf("a partial UTF-8 sequence: class %q, want %q", got[0], ClassOther)
	}
}

func TestFrequencyTableCutOff(t *testing.T) {
	corpus := []int{1, 1, 1, 1, 2, 2, 3, 4} // counts 4, 2, 1, 1 of 8 tokens
	half := NewFrequencyTable(corpus, 0.5)
	if half.Total != 8 {
		t.Errorf("total = %d, want 8", half.Total)
	}
	if half.Class(1) != ClassFrequent || half.Class(2) != ClassRare {
		t.Errorf("mass 0.5: ids 1, 2 are %q, %q; want frequent, rare (id 1 alone covers 4/8)", half.Class(1), half.Class(2))
	}
	wider := NewFrequencyTable(corpus, 0.6)
	if wider.NumFrequent() != 2 || wider.Class(2) != ClassFrequent || wider.Class(3) != ClassRare {
		t.Errorf("mass 0.6: %d frequent ids, id 2 %q, id 3 %q; want 2, frequent, rare", wider.NumFrequent(), wider.Class(2), wider.Class(3))
	}
	if half.Class(99) != ClassRare {
		t.Errorf("an id missing from the corpus is %q, want rare", half.Class(99))
	}
}
