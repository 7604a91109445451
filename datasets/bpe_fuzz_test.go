package datasets

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"testing"
)

func parseMap(t testing.TB, file map[string]any) *BPE {
	t.Helper()
	data, err := json.Marshal(file)
	if err != nil {
		t.Fatalf("encoding tokenizer JSON: %v", err)
	}
	tokenizer, err := ParseTokenizerJSON(data, "test.json")
	if err != nil {
		t.Fatalf("ParseTokenizerJSON: %v", err)
	}
	return tokenizer
}

var (
	fuzzTokenizerOnce sync.Once
	fuzzTokenizer     *BPE
)

// FuzzRoundTrip checks that a trained vocabulary is byte-complete: any byte
// sequence, valid UTF-8 or not, encodes to ids in the vocabulary, and decoding
// them returns the input. It also checks the heap merge loop against the scan
// loop on every piece. The seeds run in every go test.
func FuzzRoundTrip(f *testing.F) {
	seeds := []string{
		"", "a", "The cat's 12 hats.", "\x00\x01\xff\xfe", "\xe2\x82", "naïve café “quoted”",
		"<|endoftext|>", "<|endoftext", "a\r\n\r\nb", "   \t\n ", "日本語 Ελληνικά",
		string(bytes.Repeat([]byte("=-"), 100)),
	}
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		fuzzTokenizerOnce.Do(func() { fuzzTokenizer = trainSmallBPE(t, 340) })
		tokenizer := fuzzTokenizer
		text := string(input)

		ids := tokenizer.Encode(text)
		for _, id := range ids {
			if id < 0 || id >= tokenizer.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary of %d", text, id, tokenizer.VocabSize())
			}
		}
		decoded, err := tokenizer.DecodeBytes(ids)
		if err != nil {
			t.Fatalf("DecodeBytes: %v", err)
		}
		if !bytes.Equal(decoded, input) {
			t.Fatalf("Decode(Encode(%q)) = %q", input, decoded)
		}

		ordinary, _ := tokenizer.DecodeBytes(tokenizer.EncodeOrdinary(text))
		if !bytes.Equal(ordinary, input) {
			t.Fatalf("Decode(EncodeOrdinary(%q)) = %q", input, ordinary)
		}

		checkMergeLoopsAgree(t, tokenizer, text)
	})
}

// checkMergeLoopsAgree compares the O(n²) scan merge with the heap merge on each piece of text.
func checkMergeLoopsAgree(t *testing.T, tokenizer *BPE, text string) {
	t.Helper()
	var heapState heapMergeState
	for _, piece := range appendGPT2Pieces(nil, text) {
		if len(piece) < 2 {
			continue
		}
		symbols := make([]int32, len(piece))
		for i := range len(piece) {
			symbols[i] = tokenizer.byteIDs[piece[i]]
		}
		scanned, _ := scanMerge(tokenizer.merges, slices.Clone(symbols), nil)
		heaped := heapState.merge(tokenizer.merges, slices.Clone(symbols))
		if !slices.Equal(scanned, heaped) {
			t.Fatalf("piece %q: scan merge %v, heap merge %v", piece, scanned, heaped)
		}
	}
}

func TestMergeLoopsAgreeOnGPT2(t *testing.T) {
	tokenizer := loadGPT2ForTest(t)
	text := "Supercalifragilisticexpialidocious antidisestablishmentarianism " +
		"================================================================================ " +
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	checkMergeLoopsAgree(t, tokenizer, text)
}
