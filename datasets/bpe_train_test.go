package datasets

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func documentsOf(texts ...string) func(yield func(string) bool) {
	return slices.Values(texts)
}

// TestTrainBPEHandComputedMerges follows training by hand on "ab ab ab cd".
// The pieces are "ab" once, " ab" twice and " cd" once, so the pair counts are
// (a,b) 3, (' ',a) 2, (' ',c) 1, (c,d) 1. The first merge is "ab". Then
// (' ',ab) has count 2 and is merged. Then (' ',c) and (c,d) tie at 1, and the
// smaller pair of ids, (' ',c), wins.
func TestTrainBPEHandComputedMerges(t *testing.T) {
	options := DefaultBPETrainOptions(1 + 256 + 3)
	options.MinFrequency = 1
	tokenizer, err := TrainBPE(documentsOf("ab ab ab cd"), options)
	if err != nil {
		t.Fatalf("TrainBPE: %v", err)
	}

	wantMerged := []string{"ab", "Ġab", "Ġc"}
	for i, token := range wantMerged {
		if got := tokenizer.IDToToken(257 + i); got != token {
			t.Errorf("id %d is %q, want %q", 257+i, got, token)
		}
	}
	if got := tokenizer.VocabSize(); got != 260 {
		t.Errorf("VocabSize() = %d, want 260", got)
	}
	if got := tokenizer.EOS(); got != 0 {
		t.Errorf("EOS() = %d, want 0", got)
	}
	if got := tokenizer.IDToToken(0); got != "<|endoftext|>" {
		t.Errorf("id 0 is %q, want <|endoftext|>", got)
	}
	// Byte b has id 1+b.
	for _, b := range []byte{0, 'a', ' ', 0xFF} {
		raw, err := tokenizer.TokenBytes(1 + int(b))
		if err != nil || len(raw) != 1 || raw[0] != b {
			t.Errorf("TokenBytes(%d) = %v, %v; want [%d]", 1+int(b), raw, err, b)
		}
	}

	// "ab ab cd" is ab, Ġab, Ġc, d.
	want := []int{257, 258, 259, 1 + 'd'}
	if got := tokenizer.Encode("ab ab cd"); !slices.Equal(got, want) {
		t.Errorf(`Encode("ab ab cd") = %v, want %v`, got, want)
	}
}

func TestTrainBPEMinFrequencyStops(t *testing.T) {
	options := DefaultBPETrainOptions(1 + 256 + 3) // the third merge would need count 1
	_, err := TrainBPE(documentsOf("ab ab ab cd"), options)
	if err == nil || !strings.Contains(err.Error(), "allows only 2 merges") {
		t.Errorf("TrainBPE with too small a corpus: error %v, want one that says it allows only 2 merges", err)
	}
}

func TestTrainBPEDigitsAndSpecialTokens(t *testing.T) {
	options := DefaultBPETrainOptions(1 + 256 + 2)
	// "12" occurs often, but digits are split, so no digit merge can be learned.
	// "<|endoftext|>" is cut out before counting, so "<|" is never a pair.
	corpus := strings.Repeat("12<|endoftext|>12 xy ", 50)
	tokenizer, err := TrainBPE(documentsOf(corpus), options)
	if err != nil {
		t.Fatalf("TrainBPE: %v", err)
	}
	for id := 257; id < tokenizer.VocabSize(); id++ {
		token := tokenizer.IDToToken(id)
		if strings.ContainsAny(token, "0123456789<|") {
			t.Errorf("learned token %d is %q, which joins digits or parts of <|endoftext|>", id, token)
		}
	}
	want := []int{1 + '1', 1 + '2', 0}
	if got := tokenizer.Encode("12<|endoftext|>"); !slices.Equal(got, want) {
		t.Errorf(`Encode("12<|endoftext|>") = %v, want %v`, got, want)
	}
}

func TestTrainBPERejectsBadOptions(t *testing.T) {
	if _, err := TrainBPE(documentsOf("x"), DefaultBPETrainOptions(100)); err == nil || !strings.Contains(err.Error(), "below 257") {
		t.Errorf("vocabulary size 100: error %v, want one about the 257 minimum", err)
	}
	options := DefaultBPETrainOptions(300)
	options.SpecialTokens = []string{"<a>", "<a>"}
	if _, err := TrainBPE(documentsOf("x"), options); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("repeated special token: error %v, want one that says it is listed twice", err)
	}
}

// trainSmallBPE trains on text that mixes words, digits, punctuation and
// non-ASCII letters, enough for a few hundred merges.
func trainSmallBPE(t testing.TB, vocabSize int) *BPE {
	t.Helper()
	corpus := strings.Repeat("The cat's 12 hats sat on the mat; naïve café owners said “hello” 3.5 times.\n"+
		"  Indented line\twith tabs\r\nand CRLF, then Ελληνικά and 日本語.\n", 40)
	tokenizer, err := TrainBPE(documentsOf(corpus, "another document"), DefaultBPETrainOptions(vocabSize))
	if err != nil {
		t.Fatalf("TrainBPE: %v", err)
	}
	return tokenizer
}

func TestTrainedTokenizerSavesAndLoads(t *testing.T) {
	trained := trainSmallBPE(t, 340)
	data, err := trained.MarshalTokenizerJSON()
	if err != nil {
		t.Fatalf("MarshalTokenizerJSON: %v", err)
	}

	// The file follows the Hugging Face schema.
	var schema struct {
		Version      string `json:"version"`
		PreTokenizer struct {
			Type          string `json:"type"`
			PreTokenizers []struct {
				Type string `json:"type"`
			} `json:"pretokenizers"`
		} `json:"pre_tokenizer"`
		Decoder struct {
			Type string `json:"type"`
		} `json:"decoder"`
		AddedTokens []addedTokenJSON `json:"added_tokens"`
		Model       struct {
			Type   string         `json:"type"`
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("saved tokenizer.json is not valid JSON: %v", err)
	}
	if schema.Version != "1.0" || schema.Model.Type != "BPE" || schema.Decoder.Type != "ByteLevel" {
		t.Errorf("version %q, model %q, decoder %q; want 1.0, BPE, ByteLevel", schema.Version, schema.Model.Type, schema.Decoder.Type)
	}
	if got := len(schema.PreTokenizer.PreTokenizers); schema.PreTokenizer.Type != "Sequence" || got != 2 {
		t.Errorf("pre_tokenizer %q with %d steps, want a Sequence of Digits and ByteLevel", schema.PreTokenizer.Type, got)
	}
	if len(schema.Model.Vocab) != 340 || len(schema.Model.Merges) != 340-257 {
		t.Errorf("vocab has %d entries and %d merges, want 340 and %d", len(schema.Model.Vocab), len(schema.Model.Merges), 340-257)
	}
	if len(schema.AddedTokens) != 1 || schema.AddedTokens[0].Content != "<|endoftext|>" || !schema.AddedTokens[0].Special {
		t.Errorf("added_tokens = %+v, want only the special <|endoftext|>", schema.AddedTokens)
	}

	loaded, err := ParseTokenizerJSON(data, "saved.json")
	if err != nil {
		t.Fatalf("ParseTokenizerJSON of the saved file: %v", err)
	}
	text := "The owners' 2024 hats: “naïve” café\r\n\tEλληνικά<|endoftext|>next"
	if got, want := loaded.Encode(text), trained.Encode(text); !slices.Equal(got, want) {
		t.Errorf("reloaded tokenizer encodes %v, trained one %v", got, want)
	}
	if again, _ := loaded.MarshalTokenizerJSON(); string(again) != string(data) {
		t.Error("saving the reloaded tokenizer gives a different file")
	}
}
