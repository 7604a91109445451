package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/datasets/tinytext"
)

func init() {
	register(command{
		name:    "tokenize",
		summary: "print the token ids of text files, or only their count",
		run:     runTokenize,
	})
	register(command{
		name:    "train-tokenizer",
		summary: "learn a byte-level BPE tokenizer from a corpus and save it as tokenizer.json",
		run:     runTrainTokenizer,
	})
}

// shippedTokenizerName selects the tokenizer of the shipped corpus.
const shippedTokenizerName = "tinytext"

func runTokenize(args []string) error {
	return tokenizeCommand(args, os.Stdout, os.Stderr)
}

// tokenizeCommand is `mor tokenize` writing to stdout and stderr.
func tokenizeCommand(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	flags.SetOutput(stderr)
	tokenizerPath := flags.String("tokenizer", shippedTokenizerName,
		`tokenizer: a tokenizer.json file, a folder with tokenizer.json or with vocab.json and merges.txt, or "tinytext" for the shipped one`)
	count := flags.Bool("count", false, "print only the number of tokens of each file (and the total when there are several)")
	showTokens := flags.Bool("tokens", false, "print one token per line: its id and its text as a quoted Go string")
	stats := flags.Bool("stats", false, "print input size, token count, time and speed in MB/s (10^6 bytes per second) to standard error")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage: mor tokenize [flags] FILE...\n\n"+
			"Encodes each FILE (\"-\" is standard input) as one text and prints its token ids,\n"+
			"separated by spaces, one line per file. Files are read in chunks of about 256 KiB\n"+
			"and encoded on all cores.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return errors.New("no input file; pass one or more files, or - for standard input")
	}

	tokenizer, err := loadTokenizerFlag(*tokenizerPath)
	if err != nil {
		return err
	}

	out := bufio.NewWriterSize(stdout, 1<<20)
	defer out.Flush()
	start := time.Now()
	var totalBytes, totalTokens int64
	for _, path := range flags.Args() {
		bytes, tokens, err := tokenizeFile(tokenizer, path, out, *count, *showTokens)
		if err != nil {
			return err
		}
		totalBytes += bytes
		totalTokens += tokens
	}
	if *count && flags.NArg() > 1 {
		fmt.Fprintf(out, "%d\ttotal\n", totalTokens)
	}
	if *stats {
		printTokenizeStats(stderr, totalBytes, totalTokens, time.Since(start))
	}
	return out.Flush()
}

// loadTokenizerFlag loads the tokenizer named by --tokenizer.
func loadTokenizerFlag(path string) (*datasets.BPE, error) {
	if path == shippedTokenizerName {
		return tinytext.Tokenizer()
	}
	return datasets.LoadTokenizer(path)
}

// tokenizeFile encodes one file and writes its ids, tokens or count to out.
// It returns the number of bytes read and of tokens.
func tokenizeFile(tokenizer *datasets.BPE, path string, out *bufio.Writer, countOnly, showTokens bool) (int64, int64, error) {
	input, closeInput, err := openInput(path)
	if err != nil {
		return 0, 0, err
	}
	defer closeInput()
	counted := &countingReader{reader: input}

	var tokens int64
	err = tokenizer.EncodeStream(counted, func(ids []int) error {
		tokens += int64(len(ids))
		switch {
		case countOnly:
		case showTokens:
			writeTokenLines(out, tokenizer, ids)
		default:
			writeIDs(out, ids, tokens == int64(len(ids)))
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}

	switch {
	case countOnly:
		fmt.Fprintf(out, "%d\t%s\n", tokens, path)
	case !showTokens:
		out.WriteByte('\n')
	}
	return counted.bytes, tokens, nil
}

func openInput(path string) (io.Reader, func(), error) {
	if path == "-" {
		return os.Stdin, func() {}, nil
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return file, func() { file.Close() }, nil
}

// writeIDs writes ids separated by spaces; first is set for the first chunk of a file.
func writeIDs(out *bufio.Writer, ids []int, first bool) {
	for i, id := range ids {
		if i > 0 || !first {
			out.WriteByte(' ')
		}
		fmt.Fprint(out, id)
	}
}

func writeTokenLines(out *bufio.Writer, tokenizer *datasets.BPE, ids []int) {
	for _, id := range ids {
		raw, _ := tokenizer.TokenBytes(id)
		fmt.Fprintf(out, "%d\t%q\n", id, raw)
	}
}

func printTokenizeStats(stderr io.Writer, bytes, tokens int64, elapsed time.Duration) {
	seconds := elapsed.Seconds()
	bytesPerToken := 0.0
	if tokens > 0 {
		bytesPerToken = float64(bytes) / float64(tokens)
	}
	fmt.Fprintf(stderr, "%d bytes, %d tokens (%.2f bytes/token) in %.2f s: %.2f MB/s\n",
		bytes, tokens, bytesPerToken, seconds, float64(bytes)/1e6/seconds)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	reader io.Reader
	bytes  int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.reader.Read(p)
	c.bytes += int64(n)
	return n, err
}

func runTrainTokenizer(args []string) error {
	flags := flag.NewFlagSet("train-tokenizer", flag.ContinueOnError)
	vocabSize := flags.Int("vocab-size", tinytext.VocabSize, "number of token ids, special tokens and the 256 byte tokens included")
	output := flags.String("output", "tokenizer.json", "file to write the Hugging Face tokenizer.json to")
	special := flags.String("special", "<|endoftext|>", "comma-separated special tokens, given ids 0, 1, ... in order; the first usual end-of-text name among them is the EOS")
	individualDigits := flags.Bool("individual-digits", true, "make every digit a pre-token of its own, so that no token joins digits; false keeps runs of digits together as GPT-2 does")
	minFrequency := flags.Int("min-frequency", 2, "smallest number of occurrences of a pair of tokens that is still merged")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage: mor train-tokenizer [flags] CORPUS...\n\n"+
			"Learns a byte-level BPE from each CORPUS: a .txt, .jsonl, .jsonl.zst or .parquet file,\n"+
			"a folder of them, or \"tinytext\" for the training split of the shipped corpus.\n"+
			"Text files have their Project Gutenberg header and licence removed.\n"+
			"The shipped tokenizer was made with:\n"+
			"  mor train-tokenizer --vocab-size 4096 --output datasets/tinytext/tokenizer.json tinytext\n\nFlags:\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return errors.New("no corpus; pass one or more files or folders, or tinytext")
	}

	options := datasets.BPETrainOptions{
		VocabSize:        *vocabSize,
		SpecialTokens:    strings.Split(*special, ","),
		IndividualDigits: *individualDigits,
		MinFrequency:     *minFrequency,
	}
	var readErr error
	start := time.Now()
	tokenizer, err := datasets.TrainBPE(corpusDocuments(flags.Args(), &readErr), options)
	if readErr != nil {
		return readErr
	}
	if err != nil {
		return err
	}
	if err := tokenizer.SaveTokenizerJSON(*output); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "trained a BPE of %d ids (%d merges) in %.1f s and saved it to %s\n",
		tokenizer.VocabSize(), tokenizer.NumMerges(), time.Since(start).Seconds(), *output)
	return nil
}

// corpusDocuments yields the documents of each corpus path in order. It stops
// at the first read error and stores it in *readErr.
//
// NOTE: parts of a text file larger than datasets.DefaultMaxPartBytes are
// counted as separate documents, so pre-tokens at a part boundary can differ
// slightly from those of the whole file.
func corpusDocuments(paths []string, readErr *error) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, path := range paths {
			if path == shippedTokenizerName {
				for text := range tinytext.Train() {
					if !yield(text) {
						return
					}
				}
				continue
			}
			if !yieldCorpus(path, yield, readErr) {
				return
			}
		}
	}
}

// yieldCorpus yields the documents of one corpus path; it returns false when
// the caller stopped or reading failed.
func yieldCorpus(path string, yield func(string) bool, readErr *error) bool {
	source, err := datasets.OpenCorpus(path, datasets.CorpusOptions{})
	if err != nil {
		*readErr = err
		return false
	}
	defer source.Close()
	for {
		document, err := source.Next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			*readErr = err
			return false
		}
		if !yield(document.Text) {
			return false
		}
	}
}
