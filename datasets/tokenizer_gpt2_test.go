package datasets

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomor/gomor/internal/testutil"

	"github.com/tiktoken-go/tokenizer/codec"
)

// loadGPT2ForTest loads the GPT-2 vocab.json and merges.txt of the shared data.
func loadGPT2ForTest(t testing.TB) *BPE {
	t.Helper()
	dir := filepath.Join(testutil.DataDir(t), "tokenizers", "gpt2")
	tokenizer, err := LoadGPT2Files(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatalf("LoadGPT2Files: %v", err)
	}
	return tokenizer
}

func readTestFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading test input: %v", err)
	}
	return string(data)
}

// tiktokenR50k encodes text with tiktoken-go's r50k_base, whose ranks are
// compiled into that module, so it runs offline.
func tiktokenR50k(t testing.TB, text string) []int {
	t.Helper()
	ids, _, err := codec.NewR50kBase().Encode(text)
	if err != nil {
		t.Fatalf("tiktoken r50k_base: %v", err)
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

// compareTokenIDs fails at the first position where got and want differ, with context.
func compareTokenIDs(t *testing.T, tokenizer *BPE, got, want []int) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			from := max(0, i-3)
			t.Fatalf("first difference at token %d: got %d (%q), want %d (%q); context got %v, want %v",
				i, got[i], tokenizer.IDToToken(got[i]), want[i], tokenizer.IDToToken(want[i]),
				got[from:min(len(got), i+4)], want[from:min(len(want), i+4)])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d tokens, want %d (equal over the common prefix)", len(got), len(want))
	}
}

func TestGPT2MatchesTiktokenOnShakespeare(t *testing.T) {
	tokenizer := loadGPT2ForTest(t)
	text := readTestFile(t, filepath.Join(testutil.DataDir(t), "text", "tinyshakespeare.txt"))

	got := tokenizer.Encode(text)

	// 338,025 is the published GPT-2 token count of this file.
	if len(got) != 338025 {
		t.Errorf("tinyshakespeare: got %d tokens, want the published 338025", len(got))
	}
	compareTokenIDs(t, tokenizer, got, tiktokenR50k(t, text))
	if decoded := tokenizer.Decode(got); decoded != text {
		t.Errorf("tinyshakespeare: Decode(Encode(text)) differs from text (%d bytes, want %d)", len(decoded), len(text))
	}
}

func TestGPT2MatchesTiktokenOnGutenbergBook(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole book: skipped with -short")
	}
	tokenizer := loadGPT2ForTest(t)

	// Nietzsche's "Thus Spake Zarathustra" (680 KB) kept raw: it has non-ASCII
	// letters and dashes, CRLF line ends, and the licence header and footer add
	// URLs and "***" lines.
	dir := filepath.Join(testutil.DataDir(t), "gutenberg")
	path := gutenbergBookPath(t, dir, "Nietzsche, Friedrich Wilhelm/Thus Spake Zarathustra: A Book for All and None.txt")
	text := readTestFile(t, path)

	got := tokenizer.Encode(text)
	compareTokenIDs(t, tokenizer, got, tiktokenR50k(t, text))
	if decoded := tokenizer.Decode(got); decoded != text {
		t.Errorf("book: Decode(Encode(text)) differs from text")
	}
}

// gutenbergBookPath returns the file of a book listed in MANIFEST.tsv
// (split, blob, bytes, Author/Title path) from its Author/Title path.
func gutenbergBookPath(t testing.TB, dir, bookPath string) string {
	t.Helper()
	manifest := readTestFile(t, filepath.Join(dir, "MANIFEST.tsv"))
	for line := range strings.Lines(manifest) {
		fields := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(fields) == 4 && fields[3] == bookPath {
			return filepath.Join(dir, fields[0], fields[1]+".txt")
		}
	}
	t.Fatalf("MANIFEST.tsv has no book %q", bookPath)
	return ""
}

func TestGPT2BatchMatchesEncode(t *testing.T) {
	tokenizer := loadGPT2ForTest(t)
	texts := []string{"Hello world", "", "  leading spaces", "digits 12345 and 'quotes' it's", "<|endoftext|>x"}

	batch := tokenizer.EncodeBatch(texts)
	for i, text := range texts {
		if want := tokenizer.Encode(text); !slices.Equal(batch[i], want) {
			t.Errorf("EncodeBatch[%d] = %v, Encode(%q) = %v", i, batch[i], text, want)
		}
	}
}
