package datasets

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gomor/gomor/internal/testutil"
)

// streamIDs encodes text with encodeStream in chunks of about chunkBytes.
func streamIDs(t *testing.T, tokenizer *BPE, text string, chunkBytes int) []int {
	t.Helper()
	var ids []int
	err := tokenizer.encodeStream(iotest.HalfReader(strings.NewReader(text)), chunkBytes, func(chunk []int) error {
		ids = append(ids, chunk...)
		return nil
	})
	if err != nil {
		t.Fatalf("encodeStream: %v", err)
	}
	return ids
}

func TestEncodeStreamMatchesEncode(t *testing.T) {
	tokenizer := loadGPT2ForTest(t)
	text := readTestFile(t, filepath.Join(testutil.DataDir(t), "text", "tinyshakespeare.txt"))
	if testing.Short() {
		text = text[:100000]
	}
	want := tokenizer.Encode(text)

	for _, chunkBytes := range []int{1000, 64 << 10} {
		if got := streamIDs(t, tokenizer, text, chunkBytes); !slices.Equal(got, want) {
			t.Errorf("chunks of %d bytes: %d ids, differing from Encode's %d", chunkBytes, len(got), len(want))
		}
	}
}

// TestEncodeStreamHardCuts puts added tokens, whitespace runs, digits and
// text without spaces at every distance from the chunk boundaries.
func TestEncodeStreamHardCuts(t *testing.T) {
	tokenizer := trainSmallBPE(t, 340)
	var b strings.Builder
	for i := range 300 {
		b.WriteString(strings.Repeat(" ", i%5))
		b.WriteString("word<|endoftext|>12\r\n\t")
		b.WriteString(strings.Repeat("x", i%40))
		b.WriteString("’s café\n\n")
	}
	text := b.String()
	want := tokenizer.Encode(text)
	for _, chunkBytes := range []int{1, 7, 16, 33, 100} {
		if got := streamIDs(t, tokenizer, text, chunkBytes); !slices.Equal(got, want) {
			t.Errorf("chunks of %d bytes: ids differ from Encode (%d vs %d ids)", chunkBytes, len(got), len(want))
		}
	}
}

// TestPrefixSpaceOnlyAtStart checks that add_prefix_space adds one space at
// the start of the whole text, also when the text is longer than one
// pre-tokenization block or is read as a stream of chunks. The result must be
// the encoding of " " + text without the option.
func TestPrefixSpaceOnlyAtStart(t *testing.T) {
	file := tinyTokenizerJSON(t)
	plain := parseMap(t, file)
	file["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}
	tokenizer := parseMap(t, file)

	text := strings.Repeat("then the these\n", 10000) // 150 KB, more than two blocks
	want := plain.Encode(" " + text)
	if got := tokenizer.Encode(text); !slices.Equal(got, want) {
		t.Errorf("Encode with add_prefix_space: %d ids differing from the %d of Encode(\" \" + text) without it", len(got), len(want))
	}
	if got := streamIDs(t, tokenizer, text, 2000); !slices.Equal(got, want) {
		t.Errorf("stream with add_prefix_space: %d ids differing from Encode's %d", len(got), len(want))
	}
	if first, _ := tokenizer.TokenBytes(want[0]); first[0] != ' ' {
		t.Errorf("first token %q does not start with the prefix space", first)
	}
}

func TestEncodeStreamErrors(t *testing.T) {
	tokenizer := trainSmallBPE(t, 300)
	readErr := errors.New("disk failed")
	err := tokenizer.EncodeStream(iotest.ErrReader(readErr), func([]int) error { return nil })
	if !errors.Is(err, readErr) {
		t.Errorf("read error: got %v, want it wrapped", err)
	}
	stop := errors.New("stop")
	err = tokenizer.EncodeStream(strings.NewReader("some text"), func([]int) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("emit error: got %v, want it returned", err)
	}
}

func TestCountTokens(t *testing.T) {
	tokenizer := trainSmallBPE(t, 300)
	text := "The cat's hats sat on the mat."
	count, err := tokenizer.CountTokens(strings.NewReader(text))
	if err != nil || count != int64(len(tokenizer.Encode(text))) {
		t.Errorf("CountTokens = %d, %v; want %d", count, err, len(tokenizer.Encode(text)))
	}
}

// TestEncodeConcurrent encodes from several goroutines at once, which shares
// the BPE's pool of encoder states; run it with -race to check the sharing.
func TestEncodeConcurrent(t *testing.T) {
	tokenizer := trainSmallBPE(t, 340)
	texts := []string{"The cat's 12 hats", "naïve café", strings.Repeat("x", 300), "<|endoftext|> then"}
	want := make([][]int, len(texts))
	for i, text := range texts {
		want[i] = tokenizer.Encode(text)
	}

	done := make(chan string)
	for worker := range 4 {
		go func() {
			for round := range 50 {
				i := (worker + round) % len(texts)
				if got := tokenizer.Encode(texts[i]); !slices.Equal(got, want[i]) {
					done <- fmt.Sprintf("goroutine %d: Encode(%q) = %v, want %v", worker, texts[i], got, want[i])
					return
				}
			}
			done <- ""
		}()
	}
	for range 4 {
		if message := <-done; message != "" {
			t.Error(message)
		}
	}
}
