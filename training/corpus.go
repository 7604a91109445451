package training

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/datasets/tinytext"
)

// DataSpec says where the training text comes from and how to pack it.
type DataSpec struct {
	// Path is ShippedCorpusName (the corpus compiled into the binary) or a corpus: a
	// .txt/.jsonl/.jsonl.zst/.parquet file or a folder of them. A folder with train/ and val/
	// sub-folders (such as the Gutenberg split) keeps its split. A folder packed by datasets.Pack
	// (with pack.json, or train/ and val/ folders that have one) is used as it is.
	Path string

	// Tokenizer is a tokenizer.json file, a folder with tokenizer.json or vocab.json + merges.txt,
	// or "" for the shipped corpus's tokenizer.
	Tokenizer string

	SeqLen int

	// PackDir receives the packed shards of a raw corpus; a previous packing of the same corpus
	// with the same tokenizer and sequence length is reused.
	PackDir string

	// ValidationFraction is the fraction of documents held out when the corpus has no val/ folder.
	ValidationFraction float64

	// TextField is the JSONL field or Parquet column that holds the text; "" means "text".
	TextField string
}

// PreparedData is a packed corpus ready for training and evaluation.
type PreparedData struct {
	Train, Val *datasets.ShardSet
	Tokenizer  *datasets.BPE
	Identity   TokenizerIdentity
	PackDir    string
}

// packSource records what a packed folder was made from, so a stale packing is not reused.
type packSource struct {
	Corpus      string `json:"corpus"`
	TokenizerID string `json:"tokenizer_sha256"`
	SeqLen      int    `json:"seq_len"`
	TextField   string `json:"text_field,omitempty"`
}

const packSourceFile = "source.json"

// PrepareData loads the tokenizer and opens (packing first when needed) the train and val splits.
func PrepareData(spec DataSpec, logger *slog.Logger) (*PreparedData, error) {
	if logger == nil {
		logger = slog.Default()
	}
	tokenizer, identity, err := LoadTokenizer(spec.Tokenizer)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(spec.Path); err != nil && spec.Path != ShippedCorpusName {
		return nil, fmt.Errorf("training data %s not found: pass --data with a corpus file or folder, or a packed folder (%w)", spec.Path, err)
	}

	packed := spec.Path
	if !isPackedFolder(spec.Path) {
		packed = spec.PackDir
		if err := packCorpus(spec, tokenizer, identity, logger); err != nil {
			return nil, err
		}
	}
	data := &PreparedData{Tokenizer: tokenizer, Identity: identity, PackDir: packed}
	if data.Train, data.Val, err = openSplits(packed); err != nil {
		return nil, err
	}
	if data.Train.RowLength != spec.SeqLen {
		return nil, fmt.Errorf("packed corpus %s has rows of %d tokens but --seq-len is %d: use --seq-len %d or pack again", packed, data.Train.RowLength, spec.SeqLen, data.Train.RowLength)
	}
	if got := fmt.Sprintf("%x", data.Train.TokenizerID); got != identity.SHA256 {
		return nil, fmt.Errorf("packed corpus %s was tokenized with tokenizer sha256 %s but --tokenizer %s has %s: pass the tokenizer it was packed with", packed, got, spec.Tokenizer, identity.SHA256)
	}
	return data, nil
}

// LoadTokenizer loads a BPE tokenizer and computes its identity (name and sha256 of its files).
// An empty path or ShippedCorpusName selects the tokenizer compiled in with the shipped corpus.
func LoadTokenizer(path string) (*datasets.BPE, TokenizerIdentity, error) {
	if path == "" || path == ShippedCorpusName {
		tokenizer, err := tinytext.Tokenizer()
		if err != nil {
			return nil, TokenizerIdentity{}, err
		}
		sum := sha256.Sum256(tinytext.TokenizerJSON())
		return tokenizer, TokenizerIdentity{Name: ShippedCorpusName, SHA256: hex.EncodeToString(sum[:])}, nil
	}
	tokenizer, err := datasets.LoadTokenizer(path)
	if err != nil {
		return nil, TokenizerIdentity{}, fmt.Errorf("%w; pass --tokenizer with a tokenizer.json file or a folder holding one", err)
	}
	files := []string{path}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		files = []string{filepath.Join(path, "tokenizer.json")}
		if _, err := os.Stat(files[0]); err != nil {
			files = []string{filepath.Join(path, "vocab.json"), filepath.Join(path, "merges.txt")}
		}
	}
	sum, err := datasets.TokenizerIdentity(files...)
	if err != nil {
		return nil, TokenizerIdentity{}, err
	}
	name := filepath.Base(strings.TrimSuffix(path, string(filepath.Separator)))
	if name == "tokenizer.json" {
		name = filepath.Base(filepath.Dir(path))
	}
	return tokenizer, TokenizerIdentity{Name: name, SHA256: fmt.Sprintf("%x", sum)}, nil
}

func isPackedFolder(path string) bool {
	for _, candidate := range []string{path, filepath.Join(path, datasets.SplitTrain)} {
		if _, err := os.Stat(filepath.Join(candidate, datasets.PackResultFile)); err == nil {
			return true
		}
	}
	return false
}

// openSplits opens the train and val shards of a packed folder: either both splits in one
// folder, or train/ and val/ sub-folders.
func openSplits(dir string) (train, val *datasets.ShardSet, err error) {
	trainDir, valDir := dir, dir
	if _, err := os.Stat(filepath.Join(dir, datasets.SplitTrain, datasets.PackResultFile)); err == nil {
		trainDir, valDir = filepath.Join(dir, datasets.SplitTrain), filepath.Join(dir, datasets.SplitValidation)
	}
	if train, err = datasets.OpenShardSplit(trainDir, datasets.SplitTrain); err != nil {
		return nil, nil, err
	}
	if val, err = datasets.OpenShardSplit(valDir, datasets.SplitValidation); err != nil {
		train.Close()
		return nil, nil, fmt.Errorf("%w; the validation NLL needs a val split: use a corpus with a val/ folder or --val-fraction above 0", err)
	}
	return train, val, nil
}

// packCorpus packs spec.Path into spec.PackDir/train and spec.PackDir/val unless a packing of
// the same corpus, tokenizer and sequence length is already there.
func packCorpus(spec DataSpec, tokenizer *datasets.BPE, identity TokenizerIdentity, logger *slog.Logger) error {
	absolute, _ := filepath.Abs(spec.Path)
	if spec.Path == ShippedCorpusName {
		absolute = ShippedCorpusName
	}
	want := packSource{Corpus: absolute, TokenizerID: identity.SHA256, SeqLen: spec.SeqLen, TextField: spec.TextField}
	sourcePath := filepath.Join(spec.PackDir, packSourceFile)
	if data, err := os.ReadFile(sourcePath); err == nil {
		var have packSource
		if json.Unmarshal(data, &have) == nil && have == want {
			logger.Info("reusing packed corpus", "corpus", spec.Path, "packed", spec.PackDir)
			return nil
		}
	}
	if err := os.RemoveAll(spec.PackDir); err != nil {
		return fmt.Errorf("clearing stale packed corpus %s: %w", spec.PackDir, err)
	}

	var id [32]byte
	if decoded, err := hex.DecodeString(identity.SHA256); err != nil || len(decoded) != len(id) {
		return fmt.Errorf("invalid tokenizer identity %q: want 64 hexadecimal digits", identity.SHA256)
	} else {
		copy(id[:], decoded)
	}
	options := datasets.PackOptions{SeqLen: spec.SeqLen, TokenizerID: id}
	logger.Info("packing corpus", "corpus", spec.Path, "tokenizer", identity.Name, "seq_len", spec.SeqLen, "packed", spec.PackDir)

	trainPath, valPath := filepath.Join(spec.Path, datasets.SplitTrain), filepath.Join(spec.Path, datasets.SplitValidation)
	if spec.Path == ShippedCorpusName {
		if err := packShipped(tokenizer, spec.PackDir, options); err != nil {
			return err
		}
	} else if isDir(trainPath) && isDir(valPath) {
		if err := packSplit(trainPath, datasets.SplitTrain, spec.TextField, tokenizer, spec.PackDir, options); err != nil {
			return err
		}
		if err := packSplit(valPath, datasets.SplitValidation, spec.TextField, tokenizer, spec.PackDir, options); err != nil {
			return err
		}
	} else {
		if spec.ValidationFraction <= 0 || spec.ValidationFraction >= 1 {
			return fmt.Errorf("invalid --val-fraction %g: corpus %s has no val/ folder, so hold out a fraction in (0, 1) such as 0.05", spec.ValidationFraction, spec.Path)
		}
		options.ValidationFraction = spec.ValidationFraction
		if err := packSplit(spec.Path, "", spec.TextField, tokenizer, spec.PackDir, options); err != nil {
			return err
		}
	}
	data, _ := json.MarshalIndent(want, "", "  ")
	return writeFileAtomic(sourcePath, data)
}

// packSplit packs one corpus path. With split "" both splits go to packDir itself (the val split
// by a hash of each document ID); otherwise every document goes to packDir/<split>.
func packSplit(corpusPath, split, textField string, tokenizer *datasets.BPE, packDir string, options datasets.PackOptions) error {
	if split == "" {
		// Both splits land in one folder; openSplits reads them from there.
		source, err := datasets.OpenCorpus(corpusPath, datasets.CorpusOptions{TextField: textField, MaxPartBytes: heldOutPartBytes})
		if err != nil {
			return err
		}
		defer source.Close()
		result, err := datasets.Pack(&partSplitter{source: source, parts: map[string]int{}}, tokenizer, packDir, options)
		if err != nil {
			return err
		}
		return checkPackedRows(corpusPath, result, datasets.SplitTrain, datasets.SplitValidation)
	}
	source, err := datasets.OpenCorpus(corpusPath, datasets.CorpusOptions{TextField: textField})
	if err != nil {
		return err
	}
	defer source.Close()
	options.Split = split
	result, err := datasets.Pack(source, tokenizer, filepath.Join(packDir, split), options)
	if err != nil {
		return err
	}
	return checkPackedRows(corpusPath, result, split)
}

// checkPackedRows returns an error naming the corpus when a split got no row: its text has
// fewer tokens than one row of the sequence length.
func checkPackedRows(corpusPath string, result datasets.PackResult, splits ...string) error {
	for _, split := range splits {
		stats := result.Splits[split]
		if stats.Rows > 0 {
			continue
		}
		return fmt.Errorf("corpus %s: its %s split has %d tokens, fewer than one row of --seq-len %d: use more text, a smaller --seq-len or, without a val/ folder, a larger --val-fraction",
			corpusPath, split, stats.Tokens, result.SeqLen)
	}
	return nil
}

// heldOutPartBytes is the size of the pieces of text that a validation fraction chooses among.
const heldOutPartBytes = 16 << 10

// partSplitter cuts every document into pieces of about heldOutPartBytes at line ends and gives
// each piece its own document ID, so that a validation fraction can hold out parts of a corpus
// made of a single book. All pieces but the document's last are Partial, so the packer inserts
// no EOS between them.
type partSplitter struct {
	source  datasets.DocumentSource
	parts   map[string]int
	pending []datasets.Document
}

func (p *partSplitter) Next() (datasets.Document, error) {
	for len(p.pending) == 0 {
		doc, err := p.source.Next()
		if err != nil {
			return doc, err
		}
		p.pending = p.split(doc)
	}
	doc := p.pending[0]
	p.pending = p.pending[1:]
	return doc, nil
}

func (p *partSplitter) split(doc datasets.Document) []datasets.Document {
	var pieces []datasets.Document
	text := doc.Text
	for len(text) > 0 {
		cut := len(text)
		if cut > heldOutPartBytes {
			cut = heldOutPartBytes
			if newline := strings.IndexByte(text[cut:], '\n'); newline >= 0 {
				cut += newline + 1
			} else {
				cut = len(text)
			}
		}
		part := p.parts[doc.ID]
		p.parts[doc.ID] = part + 1
		pieces = append(pieces, datasets.Document{ID: fmt.Sprintf("%s#part%d", doc.ID, part), Text: text[:cut], Partial: true})
		text = text[cut:]
	}
	if len(pieces) == 0 {
		return []datasets.Document{doc}
	}
	pieces[len(pieces)-1].Partial = doc.Partial
	return pieces
}

func (p *partSplitter) Close() error { return p.source.Close() }

// packShipped packs the train and val books of the corpus compiled into the binary.
func packShipped(tokenizer *datasets.BPE, packDir string, options datasets.PackOptions) error {
	for _, split := range []tinytext.Split{tinytext.SplitTrain, tinytext.SplitValidation} {
		options.Split = string(split)
		if _, err := datasets.Pack(tinytext.Source(split), tokenizer, filepath.Join(packDir, string(split)), options); err != nil {
			return err
		}
	}
	return nil
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// ReadRows reads the first n rows of a shard set (all rows when n ≤ 0 or n exceeds them).
func ReadRows(set *datasets.ShardSet, n int) ([][]int32, error) {
	total := int(set.Rows())
	if n <= 0 || n > total {
		n = total
	}
	rows := make([][]int32, n)
	for i := range rows {
		rows[i] = make([]int32, set.RowLength)
		if err := set.ReadRow(int64(i), rows[i]); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// ShardBatches serves training batches from packed shards through datasets.BatchIterator.
type ShardBatches struct {
	iterator *datasets.BatchIterator
	tokens   int
}

var _ BatchSource = (*ShardBatches)(nil)

// NewShardBatches returns shuffled batches of batchSize rows; the order depends only on seed.
func NewShardBatches(set *datasets.ShardSet, batchSize int, seed uint64) (*ShardBatches, error) {
	iterator, err := datasets.NewBatchIterator(set, batchSize, seed, true)
	if err != nil {
		return nil, err
	}
	return &ShardBatches{iterator: iterator, tokens: batchSize * set.RowLength}, nil
}

// Next implements BatchSource.
func (s *ShardBatches) Next() ([]int32, error) {
	batch := make([]int32, s.tokens)
	return batch, s.iterator.Next(batch)
}

// Position implements BatchSource.
func (s *ShardBatches) Position() ([]byte, error) { return json.Marshal(s.iterator.Position()) }

// Restore implements BatchSource.
func (s *ShardBatches) Restore(position []byte) error {
	var p datasets.IteratorPosition
	if err := json.Unmarshal(position, &p); err != nil {
		return fmt.Errorf("invalid data position %q: %w", position, err)
	}
	return s.iterator.Restore(p)
}
