package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/training"
)

func init() {
	register(command{
		name:    "pack",
		summary: "tokenize a corpus into fixed-length rows stored in checked shard files",
		run:     runPack,
	})
}

// packFlags holds the flags of mor pack.
type packFlags struct {
	tokenizer          string
	data               string
	validationData     string
	out                string
	seqLen             int
	rowsPerShard       int
	validationFraction float64
	split              string
	textField          string
	idField            string
	keepBoilerplate    bool
	workers            int
}

func (f *packFlags) register(flags *flag.FlagSet) {
	flags.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer: a tokenizer.json file, a folder holding tokenizer.json or GPT-2's vocab.json and merges.txt, or \"tinytext\" for the shipped one (required)")
	flags.StringVar(&f.data, "data", "", "corpus: a .txt, .jsonl, .jsonl.zst or .parquet file, or a folder of them read in sorted order; a folder with train/ and val/ sub-folders packs each into its split unless --val-data, --val-fraction or --split is set (required)")
	flags.StringVar(&f.validationData, "val-data", "", "separate validation corpus, file or folder; all its documents go to the validation split")
	flags.StringVar(&f.out, "out", "", "output folder for train-NNNNN.shard, val-NNNNN.shard and pack.json (required)")
	flags.IntVar(&f.seqLen, "seq-len", 1024, "row length L in tokens; documents are joined with EOS and cut into rows of L tokens")
	flags.IntVar(&f.rowsPerShard, "rows-per-shard", datasets.DefaultRowsPerShard, "rows per shard file")
	flags.Float64Var(&f.validationFraction, "val-fraction", 0, "fraction of documents (chosen by a hash of the document ID) written to the validation split, in [0, 1)")
	flags.StringVar(&f.split, "split", "", "put every document of --data into this split: \"train\" or \"val\"; empty chooses by --val-fraction")
	flags.StringVar(&f.textField, "text-field", "text", "JSONL field or Parquet column holding the text")
	flags.StringVar(&f.idField, "id-field", "id", "JSONL field or Parquet column holding the document ID; records without it are named by file and line or row")
	flags.BoolVar(&f.keepBoilerplate, "keep-gutenberg-boilerplate", false, "keep the Project Gutenberg header and licence of .txt files instead of stripping them")
	flags.IntVar(&f.workers, "workers", 0, "goroutines that tokenize; 0 uses one per CPU core")
}

func runPack(args []string) error {
	var f packFlags
	flags := flag.NewFlagSet("pack", flag.ContinueOnError)
	f.register(flags)
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "Usage: mor pack --tokenizer PATH --data DIR_OR_FILE --seq-len L --out DIR [flags]\n\nTokenizes a corpus, appends EOS after each document, cuts the token stream into rows of L tokens and writes them to shard files with a checksum and the tokenizer's identity. The tokens after the last full row of each split are dropped. Prints the counts of documents, tokens, rows and shards.\n\nFlags:")
		flags.PrintDefaults()
	}
	err := flags.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; pass the corpus with --data", flags.Args())
	}
	if f.tokenizer == "" || f.data == "" || f.out == "" {
		return errors.New("--tokenizer, --data and --out are required; run `mor pack --help`")
	}
	return packCorpus(f)
}

func packCorpus(f packFlags) error {
	// training.LoadTokenizer also accepts "tinytext", and computes the identity mor train checks
	// when it reads a packed folder.
	tokenizer, identity, err := training.LoadTokenizer(f.tokenizer)
	if err != nil {
		return err
	}
	var tokenizerID [32]byte
	if _, err := hex.Decode(tokenizerID[:], []byte(identity.SHA256)); err != nil {
		return fmt.Errorf("tokenizer %s: invalid identity %q: %w", f.tokenizer, identity.SHA256, err)
	}

	corpusOptions := datasets.CorpusOptions{TextField: f.textField, IDField: f.idField, KeepGutenbergBoilerplate: f.keepBoilerplate}
	trainPath, validationPath := splitFolders(f)
	source, err := datasets.OpenCorpus(trainPath, corpusOptions)
	if err != nil {
		return err
	}
	defer source.Close()

	options := datasets.PackOptions{
		SeqLen:             f.seqLen,
		RowsPerShard:       f.rowsPerShard,
		ValidationFraction: f.validationFraction,
		Split:              f.split,
		Workers:            f.workers,
		TokenizerID:        tokenizerID,
		Progress:           newPackProgress(),
	}
	if validationPath != "" {
		validation, err := datasets.OpenCorpus(validationPath, corpusOptions)
		if err != nil {
			return err
		}
		defer validation.Close()
		options.ValidationSource = validation
	}

	start := time.Now()
	result, err := datasets.Pack(source, tokenizer, f.out, options)
	if err != nil {
		return err
	}
	printPackResult(f.out, result, time.Since(start))
	return nil
}

// splitFolders returns the training and validation corpora: the flags as
// given, or data/train and data/val when data has both sub-folders and no
// other way to choose validation documents was named.
func splitFolders(f packFlags) (train, validation string) {
	data := f.data
	if f.validationData != "" || f.split != "" || f.validationFraction > 0 {
		return data, f.validationData
	}
	trainDir, valDir := filepath.Join(data, "train"), filepath.Join(data, "val")
	trainInfo, trainErr := os.Stat(trainDir)
	valInfo, valErr := os.Stat(valDir)
	if trainErr == nil && valErr == nil && trainInfo.IsDir() && valInfo.IsDir() {
		return trainDir, valDir
	}
	return data, ""
}

// newPackProgress returns a callback that prints the totals to stderr at most every 5 seconds.
func newPackProgress() func(train, validation datasets.PackStats) {
	start := time.Now()
	last := start
	return func(train, validation datasets.PackStats) {
		if time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		tokens := train.Tokens + validation.Tokens
		fmt.Fprintf(os.Stderr, "mor pack: %d documents, %d tokens, %.0f tokens/s\n",
			train.Documents+validation.Documents, tokens, float64(tokens)/time.Since(start).Seconds())
	}
}

func printPackResult(out string, result datasets.PackResult, elapsed time.Duration) {
	fmt.Printf("packed into %s: rows of %d tokens, vocabulary %d, EOS %d, tokenizer sha256 %s\n",
		out, result.SeqLen, result.VocabSize, result.EOS, result.TokenizerID)
	var tokens int64
	for _, split := range []string{datasets.SplitTrain, datasets.SplitValidation} {
		stats, found := result.Splits[split]
		if !found {
			continue
		}
		tokens += stats.Tokens
		fmt.Printf("  %-5s %d documents (%d empty ones skipped), %d bytes, %d tokens, %d rows in %d shards, %d tokens dropped after the last full row\n",
			split, stats.Documents, stats.Empty, stats.Bytes, stats.Tokens, stats.Rows, stats.Shards, stats.DroppedTokens)
	}
	fmt.Printf("  %.1f s, %.0f tokens/s\n", elapsed.Seconds(), float64(tokens)/elapsed.Seconds())
}
