package datasets

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// Split names for the shards written by Pack.
const (
	SplitTrain      = "train"
	SplitValidation = "val"
)

// PackOptions configures Pack.
type PackOptions struct {
	// SeqLen is the row length L in tokens. The model reads a row and predicts
	// each token from those before it within the row.
	SeqLen int

	// RowsPerShard is the number of rows per shard file (DefaultRowsPerShard if zero).
	RowsPerShard int

	// ValidationFraction is the fraction of documents, chosen by a hash of the
	// document ID, written to the validation split. Zero writes no validation split.
	ValidationFraction float64

	// Split forces every document of the main source into one split (SplitTrain
	// or SplitValidation), for corpora that come already split, and overrides
	// ValidationFraction.
	Split string

	// ValidationSource, when set, is a separate corpus whose documents all go
	// to the validation split, read after the main source.
	ValidationSource DocumentSource

	// Workers is the number of goroutines that tokenize (GOMAXPROCS if zero).
	// Tokenizer.Encode must be safe for concurrent use when Workers > 1.
	Workers int

	// TokenizerID is written into every shard header (see TokenizerIdentity).
	TokenizerID [32]byte

	// Progress, when set, is called after each document with the totals so far.
	Progress func(train, validation PackStats)
}

// DefaultRowsPerShard keeps a shard of 1,024-token rows at 16 MiB with 2-byte tokens.
const DefaultRowsPerShard = 8192

// PackStats counts what Pack read and wrote for one split.
type PackStats struct {
	Documents     int64 `json:"documents"`
	Empty         int64 `json:"empty_documents"` // documents without text, skipped
	Bytes         int64 `json:"bytes"`           // UTF-8 text bytes read
	Tokens        int64 `json:"tokens"`          // tokens produced, EOS included
	Rows          int64 `json:"rows"`            // rows written
	DroppedTokens int64 `json:"dropped_tokens"`  // tail shorter than one row, not written
	Shards        int   `json:"shards"`
}

// PackResult describes a packed corpus. Pack writes it as pack.json in the output folder.
type PackResult struct {
	SeqLen      int                  `json:"seq_len"`
	VocabSize   int                  `json:"vocab_size"`
	EOS         int                  `json:"eos"`
	TokenizerID string               `json:"tokenizer_id"`
	Splits      map[string]PackStats `json:"splits"`
	Shards      map[string][]string  `json:"shards"` // file names per split, relative to the folder
}

// Pack tokenizes every document of source, appends EOS after each one, and
// cuts the token stream of each split into rows of SeqLen tokens stored in
// shards named "<split>-NNNNN.shard" in outDir. The tokens left after the last
// full row of a split are dropped and counted in PackStats.DroppedTokens.
// After an error, the shards already written stay in outDir but pack.json,
// which readers of a packed folder look for, is not written.
func Pack(source DocumentSource, tokenizer Tokenizer, outDir string, opts PackOptions) (PackResult, error) {
	if err := opts.validate(); err != nil {
		return PackResult{}, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return PackResult{}, fmt.Errorf("pack: %w", err)
	}

	writers := map[string]*splitWriter{}
	for _, split := range []string{SplitTrain, SplitValidation} {
		writers[split] = &splitWriter{
			split:     split,
			dir:       outDir,
			rowLength: opts.SeqLen,
			maxRows:   opts.rowsPerShard(),
			header:    ShardHeader{RowLength: opts.SeqLen, VocabSize: tokenizer.VocabSize(), TokenizerID: opts.TokenizerID},
		}
	}

	sources := []DocumentSource{source}
	if opts.ValidationSource != nil {
		sources = append(sources, opts.ValidationSource)
	}
	for i, current := range sources {
		isValidationSource := i == 1
		err := tokenizeInOrder(current, tokenizer, opts.workers(), func(doc Document, tokens []int32) error {
			split := opts.splitOf(doc.ID)
			if isValidationSource {
				split = SplitValidation
			}
			if err := writers[split].add(doc, tokens); err != nil {
				return err
			}
			if opts.Progress != nil {
				opts.Progress(writers[SplitTrain].stats, writers[SplitValidation].stats)
			}
			return nil
		})
		if err != nil {
			return PackResult{}, err
		}
	}

	result := PackResult{
		SeqLen:      opts.SeqLen,
		VocabSize:   tokenizer.VocabSize(),
		EOS:         tokenizer.EOS(),
		TokenizerID: ShardHeader{TokenizerID: opts.TokenizerID}.TokenizerIDString(),
		Splits:      map[string]PackStats{},
		Shards:      map[string][]string{},
	}
	for split, writer := range writers {
		if err := writer.finish(); err != nil {
			return PackResult{}, err
		}
		if writer.stats.Documents > 0 {
			result.Splits[split] = writer.stats
			result.Shards[split] = writer.files
		}
	}
	return result, writePackResult(outDir, result)
}

func (o PackOptions) validate() error {
	if o.SeqLen < 2 {
		return fmt.Errorf("pack: sequence length %d is too short; use at least 2 tokens per row", o.SeqLen)
	}
	if o.ValidationFraction < 0 || o.ValidationFraction >= 1 || math.IsNaN(o.ValidationFraction) {
		return fmt.Errorf("pack: invalid validation fraction %v; use a value in [0, 1)", o.ValidationFraction)
	}
	if o.ValidationSource != nil && (o.ValidationFraction > 0 || o.Split == SplitValidation) {
		return fmt.Errorf("pack: a separate validation corpus excludes a validation fraction and a forced validation split; use one way to choose validation documents")
	}
	if o.Split != "" && o.Split != SplitTrain && o.Split != SplitValidation {
		return fmt.Errorf("pack: unknown split %q; use %q or %q", o.Split, SplitTrain, SplitValidation)
	}
	return nil
}

func (o PackOptions) rowsPerShard() int {
	if o.RowsPerShard <= 0 {
		return DefaultRowsPerShard
	}
	return o.RowsPerShard
}

func (o PackOptions) workers() int {
	if o.Workers <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return o.Workers
}

// splitOf returns the split of a document: a fixed split, or one chosen by the
// first 8 bytes of the sha256 of its ID, so that the choice depends on nothing else.
func (o PackOptions) splitOf(id string) string {
	if o.Split != "" {
		return o.Split
	}
	if o.ValidationFraction == 0 {
		return SplitTrain
	}
	hash := sha256.Sum256([]byte(id))
	if float64(binary.BigEndian.Uint64(hash[:8]))/(1<<64) < o.ValidationFraction {
		return SplitValidation
	}
	return SplitTrain
}

// splitWriter collects the token stream of one split into rows and shards.
type splitWriter struct {
	split     string
	dir       string
	rowLength int
	maxRows   int
	header    ShardHeader

	buffer     []int32 // tokens not yet written: whole rows, then a partial row
	inDocument bool    // the last document added was a part with more to come
	stats      PackStats
	files      []string
}

// add appends a document's tokens, which end with EOS unless more parts
// follow, then writes a shard whenever a full one is buffered. A document
// without text is skipped, so that the rows hold no runs of EOS.
func (w *splitWriter) add(doc Document, tokens []int32) error {
	startsDocument := !w.inDocument
	w.inDocument = doc.Partial
	if doc.Text == "" && startsDocument && !doc.Partial {
		w.stats.Empty++
		return nil
	}
	if !doc.Partial {
		w.stats.Documents++
	}
	w.stats.Bytes += int64(len(doc.Text))
	w.stats.Tokens += int64(len(tokens))
	w.buffer = append(w.buffer, tokens...)

	shardTokens := w.maxRows * w.rowLength
	for len(w.buffer) >= shardTokens {
		if err := w.writeShard(w.buffer[:shardTokens]); err != nil {
			return err
		}
		w.buffer = append(w.buffer[:0], w.buffer[shardTokens:]...)
	}
	return nil
}

// finish writes the remaining full rows and drops the last partial row.
func (w *splitWriter) finish() error {
	fullRows := len(w.buffer) / w.rowLength
	w.stats.DroppedTokens = int64(len(w.buffer) - fullRows*w.rowLength)
	if fullRows > 0 {
		if err := w.writeShard(w.buffer[:fullRows*w.rowLength]); err != nil {
			return err
		}
	}
	w.buffer = nil
	return nil
}

func (w *splitWriter) writeShard(rows []int32) error {
	name := fmt.Sprintf("%s-%05d%s", w.split, len(w.files), ShardExtension)
	if err := WriteShard(filepath.Join(w.dir, name), w.header, rows); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	w.files = append(w.files, name)
	w.stats.Shards++
	w.stats.Rows += int64(len(rows) / w.rowLength)
	return nil
}

// PackResultFile is the name of the summary Pack writes beside the shards.
const PackResultFile = "pack.json"

func writePackResult(dir string, result PackResult) error {
	data, err := json.MarshalIndent(result, "", "  ")
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	return writeFileAtomically(filepath.Join(dir, PackResultFile), append(data, '\n'))
}

// ReadPackResult reads the pack.json summary of a packed folder.
func ReadPackResult(dir string) (PackResult, error) {
	var result PackResult
	data, err := os.ReadFile(filepath.Join(dir, PackResultFile))
	if err != nil {
		return result, fmt.Errorf("packed corpus %s: %w; pack it with `mor pack`", dir, err)
	}
	if err := json.Unmarshal(data, &result); err != nil {
		return result, fmt.Errorf("packed corpus %s: invalid %s: %w", dir, PackResultFile, err)
	}
	return result, nil
}

// tokenizeJob is one document and its position in the source order.
type tokenizeJob struct {
	seq int64
	doc Document
}

// tokenizeResult is the tokens of one job, EOS appended for a final part.
type tokenizeResult struct {
	seq    int64
	doc    Document
	tokens []int32
}

// tokenizeInOrder encodes documents on several goroutines and calls emit with
// each document's tokens in source order. At most 4×workers documents are in
// flight, which bounds memory.
func tokenizeInOrder(source DocumentSource, tokenizer Tokenizer, workers int, emit func(Document, []int32) error) error {
	jobs := make(chan tokenizeJob)
	results := make(chan tokenizeResult, workers)
	slots := make(chan struct{}, 4*workers) // one per document in flight
	stop := make(chan struct{})

	var workerGroup sync.WaitGroup
	for range workers {
		workerGroup.Go(func() {
			for job := range jobs {
				results <- tokenizeResult{seq: job.seq, doc: job.doc, tokens: encodeDocument(tokenizer, job.doc)}
			}
		})
	}

	readErr := make(chan error, 1)
	go func() {
		readErr <- feedJobs(source, jobs, slots, stop)
		close(jobs)
		workerGroup.Wait()
		close(results)
	}()

	emitErr := emitInOrder(results, slots, emit)
	if emitErr != nil {
		close(stop)
		for range results { // let the workers finish
		}
	}
	if err := <-readErr; err != nil && emitErr == nil {
		return err
	}
	return emitErr
}

// feedJobs reads documents and sends them as jobs, taking one slot for each.
func feedJobs(source DocumentSource, jobs chan<- tokenizeJob, slots chan struct{}, stop <-chan struct{}) error {
	for seq := int64(0); ; seq++ {
		doc, err := source.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case slots <- struct{}{}:
		case <-stop:
			return nil
		}
		select {
		case jobs <- tokenizeJob{seq: seq, doc: doc}:
		case <-stop:
			return nil
		}
	}
}

// emitInOrder reorders results by sequence number and emits them, releasing a
// slot after each emitted document.
func emitInOrder(results <-chan tokenizeResult, slots <-chan struct{}, emit func(Document, []int32) error) error {
	pending := map[int64]tokenizeResult{}
	next := int64(0)
	for result := range results {
		pending[result.seq] = result
		for {
			ready, found := pending[next]
			if !found {
				break
			}
			delete(pending, next)
			next++
			<-slots
			if err := emit(ready.doc, ready.tokens); err != nil {
				return err
			}
		}
	}
	return nil
}

// encodeDocument returns the tokens of a document, with EOS after its last part.
func encodeDocument(tokenizer Tokenizer, doc Document) []int32 {
	ids := tokenizer.Encode(doc.Text)
	tokens := make([]int32, 0, len(ids)+1)
	for _, id := range ids {
		tokens = append(tokens, int32(id))
	}
	if !doc.Partial {
		tokens = append(tokens, int32(tokenizer.EOS()))
	}
	return tokens
}

// TokenizerFiles returns the files that define the tokenizer at path, resolved
// as LoadTokenizer resolves it: the file itself, a folder's tokenizer.json, or
// a folder's vocab.json and merges.txt.
func TokenizerFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	jsonPath := filepath.Join(path, "tokenizer.json")
	if _, err := os.Stat(jsonPath); err == nil {
		return []string{jsonPath}, nil
	}
	gpt2 := []string{filepath.Join(path, "vocab.json"), filepath.Join(path, "merges.txt")}
	for _, file := range gpt2 {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("tokenizer: folder %s has neither tokenizer.json nor both vocab.json and merges.txt", path)
		}
	}
	return gpt2, nil
}
