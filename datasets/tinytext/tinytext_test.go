package tinytext

import (
	"bytes"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/gomor/gomor/datasets"
)

func TestTokenizerLoads(t *testing.T) {
	tokenizer, err := Tokenizer()
	if err != nil {
		t.Fatalf("Tokenizer(): %v", err)
	}
	if got := tokenizer.VocabSize(); got != 4096 {
		t.Errorf("VocabSize() = %d, want 4096", got)
	}
	if got := tokenizer.EOS(); got != 0 {
		t.Errorf("EOS() = %d, want 0", got)
	}
	if got := tokenizer.IDToToken(0); got != "<|endoftext|>" {
		t.Errorf("id 0 is %q, want <|endoftext|>", got)
	}
	if got := tokenizer.NumMerges(); got != 4096-1-256 {
		t.Errorf("NumMerges() = %d, want %d", got, 4096-1-256)
	}
	if missing := tokenizer.MissingBytes(); len(missing) != 0 {
		t.Errorf("bytes without a token: %v", missing)
	}
	// Every digit is its own piece, so "1918" is four one-byte tokens (id 1+b).
	want := []int{1 + '1', 1 + '9', 1 + '1', 1 + '8'}
	if got := tokenizer.Encode("1918"); !slices.Equal(got, want) {
		t.Errorf(`Encode("1918") = %v, want %v`, got, want)
	}
}

func TestBooks(t *testing.T) {
	books := Books()
	splitBytes := map[Split]int{}
	splitBooks := map[Split]int{}
	for _, book := range books {
		text := book.Text()
		if len(text) != book.Bytes {
			t.Errorf("%s: books.tsv says %d bytes, the file has %d", book.File, book.Bytes, len(text))
		}
		if strings.Contains(text, "\r") {
			t.Errorf("%s contains a carriage return", book.File)
		}
		for _, marker := range []string{"*** START OF", "***START OF", "*** END OF", "***END OF"} {
			if strings.Contains(strings.ToUpper(text), marker) {
				t.Errorf("%s still contains the Gutenberg marker %q", book.File, marker)
			}
		}
		if book.Author == "" || book.Title == "" || len(book.BlobSHA1) != 40 {
			t.Errorf("%s: incomplete metadata %+v", book.File, book)
		}
		splitBytes[book.Split] += len(text)
		splitBooks[book.Split]++
	}

	if splitBooks[SplitTrain] != 8 || splitBooks[SplitValidation] != 2 {
		t.Errorf("books per split: %v, want 8 train and 2 val", splitBooks)
	}
	if got := splitBytes[SplitTrain]; got < 2_500_000 || got > 3_500_000 {
		t.Errorf("training text is %d bytes, want about 3 MB", got)
	}
	if got := splitBytes[SplitValidation]; got < 250_000 || got > 350_000 {
		t.Errorf("validation text is %d bytes, want about 300 KB", got)
	}
	if got := count(Train()); got != 8 {
		t.Errorf("Train() yields %d documents, want 8", got)
	}
	if got := count(Validation()); got != 2 {
		t.Errorf("Validation() yields %d documents, want 2", got)
	}
}

func count(documents iter.Seq[string]) int {
	n := 0
	for range documents {
		n++
	}
	return n
}

func TestSourceServesSplit(t *testing.T) {
	source := Source(SplitValidation)
	defer source.Close()
	first, err := source.Next()
	if err != nil {
		t.Fatalf("Next(): %v", err)
	}
	if first.ID != "val/09-twinkle-and-chubbins.txt" || !strings.Contains(first.Text, "Twinkle") {
		t.Errorf("first validation document %q does not look like Twinkle and Chubbins", first.ID)
	}
}

// TestShippedTokenizerIsReproducible retrains on the embedded training books
// and expects the shipped file byte for byte, so the tokenizer, the text and
// the trainer cannot drift apart.
func TestShippedTokenizerIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("retrains the 4096-token vocabulary: skipped with -short")
	}
	trained, err := datasets.TrainBPE(Train(), datasets.DefaultBPETrainOptions(VocabSize))
	if err != nil {
		t.Fatalf("TrainBPE: %v", err)
	}
	data, err := trained.MarshalTokenizerJSON()
	if err != nil {
		t.Fatalf("MarshalTokenizerJSON: %v", err)
	}
	if !bytes.Equal(data, TokenizerJSON()) {
		t.Errorf("retrained tokenizer.json (%d bytes) differs from the shipped one (%d bytes); "+
			"rebuild it with `go run ./cmd/mor train-tokenizer --output datasets/tinytext/tokenizer.json tinytext`",
			len(data), len(TokenizerJSON()))
	}
}

func TestValidationRoundTrip(t *testing.T) {
	tokenizer, err := Tokenizer()
	if err != nil {
		t.Fatalf("Tokenizer(): %v", err)
	}
	for text := range Validation() {
		ids := tokenizer.Encode(text)
		if decoded := tokenizer.Decode(ids); decoded != text {
			t.Errorf("Decode(Encode(validation book)) differs from the book")
		}
	}
}

// FuzzRoundTrip checks that the shipped vocabulary is byte-complete: any byte
// sequence encodes to ids below 4096 and decodes back to itself. The seeds run
// in every go test; go test -fuzz FuzzRoundTrip explores further.
func FuzzRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "Alice was beginning", "\x00\xff\xc0\x80", "\xe2\x80", "1918–1919 “quoted”",
		"<|endoftext|>", "  \r\n\t ", "日本語", strings.Repeat("-", 200)} {
		f.Add([]byte(seed))
	}
	tokenizer, err := Tokenizer()
	if err != nil {
		f.Fatalf("Tokenizer(): %v", err)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		ids := tokenizer.Encode(string(input))
		for _, id := range ids {
			if id < 0 || id >= VocabSize {
				t.Fatalf("Encode(%q) gave id %d outside [0, %d)", input, id, VocabSize)
			}
		}
		decoded, err := tokenizer.DecodeBytes(ids)
		if err != nil {
			t.Fatalf("DecodeBytes: %v", err)
		}
		if !bytes.Equal(decoded, input) {
			t.Fatalf("Decode(Encode(%q)) = %q", input, decoded)
		}
	})
}
