package datasets

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomor/gomor/internal/testutil"
)

// BenchmarkEncodeGPT2 measures single-goroutine Encode of tinyshakespeare with
// the GPT-2 vocabulary; the MB/s column is input megabytes per second. The
// cache is warm after the first iteration, as it is after the first megabyte
// of a long corpus.
func BenchmarkEncodeGPT2(b *testing.B) {
	tokenizer := loadGPT2ForTest(b)
	text := readTestFile(b, filepath.Join(testutil.DataDir(b), "text", "tinyshakespeare.txt"))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tokenizer.Encode(text)
	}
}

// BenchmarkEncodeStreamGPT2 measures EncodeStream, which uses GOMAXPROCS goroutines.
func BenchmarkEncodeStreamGPT2(b *testing.B) {
	tokenizer := loadGPT2ForTest(b)
	text := readTestFile(b, filepath.Join(testutil.DataDir(b), "text", "tinyshakespeare.txt"))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := tokenizer.CountTokens(strings.NewReader(text)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreTokenizeGPT2 measures the GPT-2 pattern scanner alone.
func BenchmarkPreTokenizeGPT2(b *testing.B) {
	text := readTestFile(b, filepath.Join(testutil.DataDir(b), "text", "tinyshakespeare.txt"))
	b.SetBytes(int64(len(text)))
	var pieces []string
	for b.Loop() {
		pieces = appendGPT2Pieces(pieces[:0], text)
	}
}

// BenchmarkTrainBPE measures training a 4096-token vocabulary on tinyshakespeare (1.1 MB).
func BenchmarkTrainBPE(b *testing.B) {
	text := readTestFile(b, filepath.Join(testutil.DataDir(b), "text", "tinyshakespeare.txt"))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := TrainBPE(documentsOf(text), DefaultBPETrainOptions(4096)); err != nil {
			b.Fatal(err)
		}
	}
}
