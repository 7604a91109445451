package datasets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLoadGPT2FilesFixture loads a four-merge GPT-2 style vocabulary whose
// merges.txt starts with a "#version" line. Its ids are the byte values, then
// Ġt 256, he 257, Ġthe 258, in 259 and <|endoftext|> 260; the merges are
// (Ġ t), (h e), (Ġt he), (i n) in rank order.
func TestLoadGPT2FilesFixture(t *testing.T) {
	tokenizer, err := LoadTokenizer(filepath.Join("testdata", "tokenizer"))
	if err != nil {
		t.Fatalf("LoadTokenizer(folder with vocab.json and merges.txt): %v", err)
	}
	if got := tokenizer.NumMerges(); got != 4 {
		t.Errorf("NumMerges() = %d, want 4 (the #version line is not a merge)", got)
	}
	if got := tokenizer.EOS(); got != 260 {
		t.Errorf("EOS() = %d, want 260", got)
	}

	// " thethin" merges Ġ+t, h+e, Ġt+he, then i+n: Ġthe t h in.
	// " hen" merges h+e only: Ġ he n. The added token is matched first.
	want := []int{258, 't', 'h', 259, ' ', 257, 'n', 260}
	if got := tokenizer.Encode(" thethin hen<|endoftext|>"); !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := tokenizer.EncodeOrdinary("<|endoftext|>"); slices.Contains(got, 260) {
		t.Errorf("EncodeOrdinary(<|endoftext|>) = %v, which contains the special id 260", got)
	}
}

// tinyTokenizerJSON returns a small valid tokenizer.json as a JSON object to mutate.
func tinyTokenizerJSON(t *testing.T) map[string]any {
	t.Helper()
	tokenizer, err := TrainBPE(documentsOf(strings.Repeat("the then these ", 20)), DefaultBPETrainOptions(260))
	if err != nil {
		t.Fatalf("TrainBPE: %v", err)
	}
	data, err := tokenizer.MarshalTokenizerJSON()
	if err != nil {
		t.Fatalf("MarshalTokenizerJSON: %v", err)
	}
	var object map[string]any
	if err := json.Unmarshal(data, &object); err != nil {
		t.Fatalf("decoding the saved tokenizer: %v", err)
	}
	return object
}

func TestParseTokenizerJSONErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(file map[string]any)
		want   string // part of the expected error
	}{
		{"WordPiece model", func(f map[string]any) { model(f)["type"] = "WordPiece" }, `model type "WordPiece" is not supported`},
		{"normalizer", func(f map[string]any) { f["normalizer"] = map[string]any{"type": "NFC"} }, `normalizer "NFC" is not supported`},
		{"byte fallback", func(f map[string]any) { model(f)["byte_fallback"] = true }, "byte_fallback is not supported"},
		{"dropout", func(f map[string]any) { model(f)["dropout"] = 0.1 }, "dropout 0.1 is not supported"},
		{"subword prefix", func(f map[string]any) { model(f)["continuing_subword_prefix"] = "##" }, `continuing_subword_prefix "##"`},
		{"Split pre-tokenizer", func(f map[string]any) {
			f["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{map[string]any{"type": "Split"}}}
		}, `pre-tokenizer "Split" is not supported`},
		{"no pre-tokenizer", func(f map[string]any) { f["pre_tokenizer"] = nil }, "pre_tokenizer is null"},
		{"Digits only", func(f map[string]any) { f["pre_tokenizer"] = map[string]any{"type": "Digits"} }, `no "ByteLevel" step`},
		{"Metaspace decoder", func(f map[string]any) { f["decoder"] = map[string]any{"type": "Metaspace"} }, "decoder Metaspace is not supported"},
		{"unknown post-processor", func(f map[string]any) { f["post_processor"] = map[string]any{"type": "Custom"} }, `post_processor "Custom" is not supported`},
		{"empty added token", func(f map[string]any) {
			f["added_tokens"].([]any)[0].(map[string]any)["content"] = ""
		}, "added token with id 0 has empty content"},
		{"merge of unknown token", func(f map[string]any) {
			model(f)["merges"] = []any{[]any{"zz", "q"}}
		}, `merge 0 ("zz" "q"): token "zz" is not in the vocabulary`},
		{"merge in bad form", func(f map[string]any) { model(f)["merges"] = []any{"a b c"} }, `merge "a b c" does not have the form "a b"`},
		{"no model", func(f map[string]any) { delete(f, "model") }, `no "model" field`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := tinyTokenizerJSON(t)
			c.mutate(file)
			data, err := json.Marshal(file)
			if err != nil {
				t.Fatalf("encoding the mutated file: %v", err)
			}
			_, err = ParseTokenizerJSON(data, "mutated.json")
			if err == nil {
				t.Fatalf("ParseTokenizerJSON succeeded; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "mutated.json") {
				t.Errorf("error %q; want one naming mutated.json and containing %q", err, c.want)
			}
		})
	}
}

func model(file map[string]any) map[string]any {
	return file["model"].(map[string]any)
}

func TestParseTokenizerJSONValidVariants(t *testing.T) {
	// Merges in "a b" string form load like the pair form.
	file := tinyTokenizerJSON(t)
	var stringMerges []any
	for _, pair := range model(file)["merges"].([]any) {
		parts := pair.([]any)
		stringMerges = append(stringMerges, parts[0].(string)+" "+parts[1].(string))
	}
	pairData, _ := json.Marshal(file)
	model(file)["merges"] = stringMerges
	stringData, _ := json.Marshal(file)

	pairForm, err := ParseTokenizerJSON(pairData, "pairs.json")
	if err != nil {
		t.Fatalf("pair form: %v", err)
	}
	stringForm, err := ParseTokenizerJSON(stringData, "strings.json")
	if err != nil {
		t.Fatalf("string form: %v", err)
	}
	text := "these then the 42"
	if got, want := stringForm.Encode(text), pairForm.Encode(text); !slices.Equal(got, want) {
		t.Errorf("string-form merges encode %v, pair form %v", got, want)
	}
}

func TestLoadTokenizerFileErrors(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.json")
	if err := os.WriteFile(truncated, []byte(`{"version":"1.0","model":{"type":"BPE","vocab":{"a":`), 0o644); err != nil {
		t.Fatal(err)
	}
	vocabOnly := filepath.Join(dir, "vocab-only")
	if err := os.Mkdir(vocabOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vocabOnly, "vocab.json"), []byte(`{"a":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	badMerges := filepath.Join(dir, "merges.txt")
	if err := os.WriteFile(badMerges, []byte("Ġ t\nonly-one-token\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		load func() error
		want string
	}{
		{"truncated JSON", func() error { _, err := LoadTokenizer(truncated); return err }, "truncated.json: invalid tokenizer JSON"},
		{"missing file", func() error { _, err := LoadTokenizer(filepath.Join(dir, "absent.json")); return err }, "absent.json: no such file"},
		{"folder without merges.txt", func() error { _, err := LoadTokenizer(vocabOnly); return err }, "neither tokenizer.json nor both vocab.json and merges.txt"},
		{"bad merges line", func() error {
			_, err := LoadGPT2Files(filepath.Join("testdata", "tokenizer", "vocab.json"), badMerges)
			return err
		}, `merges.txt:2: merge "only-one-token" does not have the form "a b"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.load()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v; want one containing %q", err, c.want)
			}
		})
	}
}

// TestIgnoreMergesUsesWholeToken adds the token "xyz" to a vocabulary without a
// merge that builds it. BPE alone gives x, y, z; with ignore_merges a piece
// that is a token is emitted whole.
func TestIgnoreMergesUsesWholeToken(t *testing.T) {
	file := tinyTokenizerJSON(t)
	vocab := model(file)["vocab"].(map[string]any)
	vocab["xyz"] = float64(len(vocab))
	xyzID := len(vocab) - 1

	merging := parseMap(t, file)
	want := []int{1 + 'x', 1 + 'y', 1 + 'z'}
	if got := merging.Encode("xyz"); !slices.Equal(got, want) {
		t.Errorf("without ignore_merges: Encode(xyz) = %v, want %v", got, want)
	}

	model(file)["ignore_merges"] = true
	whole := parseMap(t, file)
	if got := whole.Encode("xyz"); !slices.Equal(got, []int{xyzID}) {
		t.Errorf("with ignore_merges: Encode(xyz) = %v, want [%d]", got, xyzID)
	}
}

// TestMissingByteToken removes the token of byte 0x00 ("Ā" in byte-level form).
// Without unk_token the byte is dropped, as Hugging Face tokenizers drops it;
// with one, the byte encodes as the unk token.
func TestMissingByteToken(t *testing.T) {
	file := tinyTokenizerJSON(t)
	delete(model(file)["vocab"].(map[string]any), "Ā")

	dropping := parseMap(t, file)
	if got := dropping.MissingBytes(); !slices.Equal(got, []byte{0}) {
		t.Errorf("MissingBytes() = %v, want [0]", got)
	}
	if got, want := dropping.Encode("\x00a"), []int{1 + 'a'}; !slices.Equal(got, want) {
		t.Errorf(`without unk_token: Encode("\x00a") = %v, want %v`, got, want)
	}

	model(file)["unk_token"] = "<|endoftext|>"
	withUnk := parseMap(t, file)
	if got, want := withUnk.Encode("\x00a"), []int{0, 1 + 'a'}; !slices.Equal(got, want) {
		t.Errorf(`with unk_token: Encode("\x00a") = %v, want %v`, got, want)
	}
}

// TestAddedTokenOptions checks single_word, lstrip and rstrip as Hugging Face
// tokenizers defines them: lstrip and rstrip take in all whitespace beside the
// match, and single_word rejects a match next to a letter, a number or '_'.
// The text between matches must encode as the tokenizer without added tokens
// encodes it.
func TestAddedTokenOptions(t *testing.T) {
	file := tinyTokenizerJSON(t)
	plain := parseMap(t, file)

	vocab := model(file)["vocab"].(map[string]any)
	addToken := func(content string, special, singleWord, lstrip, rstrip bool) int {
		id := len(vocab)
		vocab[content] = float64(id)
		file["added_tokens"] = append(file["added_tokens"].([]any), map[string]any{
			"id": id, "content": content, "special": special,
			"single_word": singleWord, "lstrip": lstrip, "rstrip": rstrip, "normalized": false,
		})
		return id
	}
	mask := addToken("<mask>", true, false, true, false)
	right := addToken("<r>", true, false, false, true)
	cat := addToken("cat", false, true, false, false)
	dog := addToken("dog", false, true, true, true)
	tokenizer := parseMap(t, file)

	cases := []struct {
		name     string
		text     string
		segments []any // a string is ordinary text, an int an added token id
	}{
		{"lstrip takes the spaces before", "I saw a  <mask> x", []any{"I saw a", mask, " x"}},
		{"lstrip takes tabs and newlines", "a\n\t<mask>b", []any{"a", mask, "b"}},
		{"rstrip takes the whitespace after", "x<r>  \n y", []any{"x", right, "y"}},
		{"single_word", "cat catalog bobcat cat_ cat. (cat) écat 1cat",
			[]any{cat, " catalog bobcat cat_ ", cat, ". (", cat, ") écat 1cat"}},
		{"single_word with both strips", " dog  dogs  dog ", []any{dog, "dogs", dog}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []int
			for _, segment := range c.segments {
				switch segment := segment.(type) {
				case string:
					want = append(want, plain.Encode(segment)...)
				case int:
					want = append(want, segment)
				}
			}
			if got := tokenizer.Encode(c.text); !slices.Equal(got, want) {
				t.Errorf("Encode(%q) = %v, want %v", c.text, got, want)
			}
			if got := streamIDs(t, tokenizer, c.text, 1); !slices.Equal(got, want) {
				t.Errorf("stream of %q in 1-byte chunks = %v, want %v", c.text, got, want)
			}
		})
	}
}
