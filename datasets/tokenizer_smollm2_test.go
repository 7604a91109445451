package datasets

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomor/gomor/internal/testutil"
)

// smolLM2Reference is the vocabulary and merge list of the SmolLM2
// tokenizer.json, read with encoding/json alone, to look up the expected ids
// of the fixtures independently of the tokenizer under test.
type smolLM2Reference struct {
	Model struct {
		Vocab  map[string]int `json:"vocab"`
		Merges [][2]string    `json:"merges"`
	} `json:"model"`
}

func loadSmolLM2ForTest(t *testing.T) (*BPE, smolLM2Reference) {
	t.Helper()
	path := filepath.Join(testutil.DataDir(t), "tokenizers", "smollm2", "tokenizer.json")
	tokenizer, err := LoadTokenizerJSON(path)
	if err != nil {
		t.Fatalf("LoadTokenizerJSON: %v", err)
	}
	var reference smolLM2Reference
	if err := json.Unmarshal([]byte(readTestFile(t, path)), &reference); err != nil {
		t.Fatalf("reading the reference vocabulary: %v", err)
	}
	return tokenizer, reference
}

// TestSmolLM2Fixtures checks inputs whose tokens follow from the format. The
// pre-tokenizer is Digits(individual_digits) then ByteLevel(use_regex, no
// prefix space). So each digit is a piece, a space before a digit is a piece of
// its own, and "'s" is a piece. A run of spaces before a word leaves its last
// space to the word. Added tokens are matched before any of this. Each
// expected piece below is a whole word of the vocabulary that BPE reaches by
// merging.
func TestSmolLM2Fixtures(t *testing.T) {
	tokenizer, reference := loadSmolLM2ForTest(t)
	cases := []struct {
		name   string
		text   string
		tokens []string // in byte-level form: Ġ is a space, Ċ a newline, č a carriage return
	}{
		{"split digits", "In 2024, 12 apples", []string{"In", "Ġ", "2", "0", "2", "4", ",", "Ġ", "1", "2", "Ġapples"}},
		// A whitespace run before a word leaves its last character to the next
		// piece, so "\r\n" before a word is two pieces and at the end one.
		{"CRLF before a word", "line one\r\nline two", []string{"line", "Ġone", "č", "Ċ", "line", "Ġtwo"}},
		{"CRLF at the end", "end\r\n", []string{"end", "čĊ"}},
		{"two CRLF", "a\r\n\r\nb", []string{"a", "čĊč", "Ċ", "b"}},
		{"run of spaces", "a    b", []string{"a", "ĠĠĠ", "Ġb"}},
		{"trailing spaces", "Hello world  ", []string{"Hello", "Ġworld", "ĠĠ"}},
		{"contraction 's", "John's dog's", []string{"John", "'s", "Ġdog", "'s"}},
		{"added tokens", "<|im_start|>user\nHi<|im_end|>", []string{"<|im_start|>", "user", "Ċ", "Hi", "<|im_end|>"}},
		{"endoftext inside text", "x<|endoftext|>y", []string{"x", "<|endoftext|>", "y"}},
		{"tabs and newlines", "\t\tand\n\n\nHello", []string{"ĉ", "ĉ", "and", "ĊĊ", "Ċ", "Hello"}},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := make([]int, len(c.tokens))
			for i, token := range c.tokens {
				id, found := reference.Model.Vocab[token]
				if !found {
					t.Fatalf("fixture token %q is not in the SmolLM2 vocabulary", token)
				}
				want[i] = id
			}

			got := tokenizer.Encode(c.text)
			if !slices.Equal(got, want) {
				t.Errorf("Encode(%q) = %v, want %v (%q)", c.text, got, want, c.tokens)
			}
			if decoded := tokenizer.Decode(got); decoded != c.text {
				t.Errorf("Decode(Encode(%q)) = %q", c.text, decoded)
			}
		})
	}
}

func TestSmolLM2Header(t *testing.T) {
	tokenizer, _ := loadSmolLM2ForTest(t)
	if got := tokenizer.VocabSize(); got != 49152 {
		t.Errorf("VocabSize() = %d, want 49152", got)
	}
	if got := tokenizer.EOS(); got != 0 {
		t.Errorf("EOS() = %d, want 0 (<|endoftext|>)", got)
	}
	if got := len(tokenizer.AddedTokens()); got != 17 {
		t.Errorf("len(AddedTokens()) = %d, want 17", got)
	}
	if got := tokenizer.NumMerges(); got != 48900 {
		t.Errorf("NumMerges() = %d, want 48900", got)
	}
}
