package datasets

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomor/gomor/internal/testutil"

	"github.com/tiktoken-go/tokenizer/codec"
)

// byteTestTokenizer maps each byte to its value and uses 256 as EOS.
type byteTestTokenizer struct{}

func (byteTestTokenizer) Encode(text string) []int {
	ids := make([]int, len(text))
	for i := range len(text) {
		ids[i] = int(text[i])
	}
	return ids
}

func (byteTestTokenizer) Decode(ids []int) string {
	b := make([]byte, 0, len(ids))
	for _, id := range ids {
		if id < 256 {
			b = append(b, byte(id))
		}
	}
	return string(b)
}

func (byteTestTokenizer) VocabSize() int { return 257 }
func (byteTestTokenizer) EOS() int       { return 256 }

const testEOS = 256

// readSplitRows returns every row of a packed split.
func readSplitRows(t *testing.T, dir, split string) [][]int32 {
	t.Helper()
	set, err := OpenShardSplit(dir, split)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var rows [][]int32
	for i := range set.Rows() {
		row := make([]int32, set.RowLength)
		if err := set.ReadRow(i, row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	return rows
}

func TestPackRowsWithEOS(t *testing.T) {
	dir := t.TempDir()
	source := &SliceSource{Documents: []Document{
		{ID: "one", Text: "abc"},
		{ID: "two", Text: "de"},
	}}
	result, err := Pack(source, byteTestTokenizer{}, dir, PackOptions{SeqLen: 3, RowsPerShard: 1})
	if err != nil {
		t.Fatal(err)
	}

	// Token stream: a b c EOS d e EOS, cut into rows of 3; the last EOS is dropped.
	expected := [][]int32{{'a', 'b', 'c'}, {testEOS, 'd', 'e'}}
	rows := readSplitRows(t, dir, SplitTrain)
	if fmt.Sprint(rows) != fmt.Sprint(expected) {
		t.Errorf("rows = %v, expected %v", rows, expected)
	}

	stats := result.Splits[SplitTrain]
	if stats.Documents != 2 {
		t.Errorf("documents = %d, expected 2", stats.Documents)
	}
	if stats.Tokens != 7 {
		t.Errorf("tokens = %d, expected 7", stats.Tokens)
	}
	if stats.Rows != 2 {
		t.Errorf("rows = %d, expected 2", stats.Rows)
	}
	if stats.DroppedTokens != 1 {
		t.Errorf("dropped tokens = %d, expected 1", stats.DroppedTokens)
	}
	if stats.Shards != 2 {
		t.Errorf("shards = %d, expected 2 with one row per shard", stats.Shards)
	}

	saved, err := ReadPackResult(dir)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Splits[SplitTrain] != stats {
		t.Errorf("pack.json stats = %+v, expected %+v", saved.Splits[SplitTrain], stats)
	}
}

func TestPackSkipsEmptyDocuments(t *testing.T) {
	dir := t.TempDir()
	source := &SliceSource{Documents: []Document{
		{ID: "a", Text: "ab"},
		{ID: "empty", Text: ""},
		{ID: "book", Text: "c", Partial: true},
		{ID: "book", Text: ""}, // an empty last part still ends the book
	}}
	result, err := Pack(source, byteTestTokenizer{}, dir, PackOptions{SeqLen: 5})
	if err != nil {
		t.Fatal(err)
	}
	expected := [][]int32{{'a', 'b', testEOS, 'c', testEOS}}
	if rows := readSplitRows(t, dir, SplitTrain); fmt.Sprint(rows) != fmt.Sprint(expected) {
		t.Errorf("rows = %v, expected %v", rows, expected)
	}
	stats := result.Splits[SplitTrain]
	if stats.Documents != 2 || stats.Empty != 1 {
		t.Errorf("documents = %d, empty = %d; expected 2 and 1", stats.Documents, stats.Empty)
	}
}

func TestPackPartialDocumentsOneEOS(t *testing.T) {
	dir := t.TempDir()
	source := &SliceSource{Documents: []Document{
		{ID: "book", Text: "ab", Partial: true},
		{ID: "book", Text: "c"},
		{ID: "next", Text: "d"},
	}}
	result, err := Pack(source, byteTestTokenizer{}, dir, PackOptions{SeqLen: 6})
	if err != nil {
		t.Fatal(err)
	}
	expected := [][]int32{{'a', 'b', 'c', testEOS, 'd', testEOS}}
	if rows := readSplitRows(t, dir, SplitTrain); fmt.Sprint(rows) != fmt.Sprint(expected) {
		t.Errorf("rows = %v, expected %v", rows, expected)
	}
	if docs := result.Splits[SplitTrain].Documents; docs != 2 {
		t.Errorf("documents = %d, expected 2 (parts of one book count once)", docs)
	}
}

// testDocuments returns n documents of varied lengths.
func testDocuments(n int) []Document {
	docs := make([]Document, n)
	for i := range docs {
		docs[i] = Document{ID: fmt.Sprintf("doc-%d", i), Text: strings.Repeat(string(rune('a'+i%26)), 1+i%37)}
	}
	return docs
}

func TestPackParallelMatchesSerial(t *testing.T) {
	serialDir, parallelDir := t.TempDir(), t.TempDir()
	options := PackOptions{SeqLen: 16, RowsPerShard: 7, Workers: 1}
	if _, err := Pack(&SliceSource{Documents: testDocuments(300)}, byteTestTokenizer{}, serialDir, options); err != nil {
		t.Fatal(err)
	}
	options.Workers = 3
	if _, err := Pack(&SliceSource{Documents: testDocuments(300)}, byteTestTokenizer{}, parallelDir, options); err != nil {
		t.Fatal(err)
	}

	serialFiles, _ := filepath.Glob(filepath.Join(serialDir, "*"+ShardExtension))
	if len(serialFiles) < 3 {
		t.Fatalf("only %d shards written, expected several", len(serialFiles))
	}
	for _, path := range serialFiles {
		serial, _ := os.ReadFile(path)
		parallel, err := os.ReadFile(filepath.Join(parallelDir, filepath.Base(path)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(serial, parallel) {
			t.Errorf("%s differs between 1 and 3 workers", filepath.Base(path))
		}
	}
}

func TestPackValidationSplitByDocument(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	var results []PackResult
	for _, dir := range dirs {
		result, err := Pack(&SliceSource{Documents: testDocuments(400)}, byteTestTokenizer{}, dir,
			PackOptions{SeqLen: 8, ValidationFraction: 0.25})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, result)
	}

	train, validation := results[0].Splits[SplitTrain], results[0].Splits[SplitValidation]
	if train.Documents+validation.Documents != 400 {
		t.Errorf("train %d + validation %d documents, expected 400 in all", train.Documents, validation.Documents)
	}
	if validation.Documents < 60 || validation.Documents > 140 {
		t.Errorf("validation documents = %d, expected about 100 for a fraction of 0.25", validation.Documents)
	}
	if fmt.Sprint(results[0].Splits) != fmt.Sprint(results[1].Splits) {
		t.Errorf("two runs split differently: %v vs %v", results[0].Splits, results[1].Splits)
	}
	if rows := readSplitRows(t, dirs[0], SplitValidation); int64(len(rows)) != validation.Rows {
		t.Errorf("validation shards hold %d rows, pack.json says %d", len(rows), validation.Rows)
	}
}

func TestShardWideTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wide.shard")
	rows := []int32{0, 69_999, 65_536, 7}
	if err := WriteShard(path, ShardHeader{RowLength: 2, VocabSize: 70_000}, rows); err != nil {
		t.Fatal(err)
	}
	shard, err := OpenShard(path)
	if err != nil {
		t.Fatal(err)
	}
	defer shard.Close()
	if shard.Header.TokenWidth != 4 {
		t.Errorf("token width = %d, expected 4 for a vocabulary of 70,000", shard.Header.TokenWidth)
	}
	row := make([]int32, 2)
	if err := shard.ReadRow(0, row); err != nil {
		t.Fatal(err)
	}
	if row[1] != 69_999 {
		t.Errorf("row 0 = %v, expected [0 69999]", row)
	}

	err = WriteShard(path, ShardHeader{RowLength: 2, VocabSize: 100}, []int32{1, 100})
	if err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("token 100 with a vocabulary of 100: error = %v, expected outside the vocabulary", err)
	}
}

// writeTestShard writes a two-row shard of 2-byte tokens and returns its path and bytes.
func writeTestShard(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "train-00000.shard")
	if err := WriteShard(path, ShardHeader{RowLength: 4, VocabSize: 257}, []int32{1, 2, 3, 4, 5, 6, 7, 256}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 128+8*2 {
		t.Fatalf("shard is %d bytes, expected 128 + 16", len(data))
	}
	return path, data
}

func TestShardErrors(t *testing.T) {
	cases := []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"corrupt payload", func(b []byte) []byte { b[130] ^= 0xFF; return b }, "corrupt payload"},
		{"truncated payload", func(b []byte) []byte { return b[:len(b)-3] }, "truncated: 141 bytes, expected 144"},
		{"truncated header", func(b []byte) []byte { return b[:60] }, "truncated: 60 bytes"},
		{"trailing data", func(b []byte) []byte { return append(b, 0) }, "trailing data"},
		{"wrong version", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 2); return b }, "format version 2 is not supported"},
		{"wrong magic", func(b []byte) []byte { copy(b, "PK\x03\x04"); return b }, "not a gomor shard"},
		{"corrupt header", func(b []byte) []byte { b[24] = 1; return b }, "corrupt header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, data := writeTestShard(t)
			if err := os.WriteFile(path, c.damage(data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := OpenShard(path)
			if err == nil {
				t.Fatalf("OpenShard accepted a shard with %s", c.name)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestShardUndamagedOpens(t *testing.T) {
	path, _ := writeTestShard(t)
	shard, err := OpenShard(path)
	if err != nil {
		t.Fatalf("undamaged shard: %v", err)
	}
	defer shard.Close()
	row := make([]int32, 4)
	if err := shard.ReadRow(1, row); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(row) != "[5 6 7 256]" {
		t.Errorf("row 1 = %v, expected [5 6 7 256]", row)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after an atomic write, expected only the shard", len(entries))
	}
}

// packRows packs n one-row documents of length rowLength so that row i starts with token i.
func packRows(t *testing.T, n, rowLength int) *ShardSet {
	t.Helper()
	dir := t.TempDir()
	var docs []Document
	for i := range n {
		// rowLength-1 bytes plus EOS fill exactly one row; the first byte names the row.
		docs = append(docs, Document{ID: fmt.Sprint(i), Text: string(rune(i)) + strings.Repeat("x", rowLength-2)})
	}
	if _, err := Pack(&SliceSource{Documents: docs}, byteTestTokenizer{}, dir, PackOptions{SeqLen: rowLength, RowsPerShard: 9}); err != nil {
		t.Fatal(err)
	}
	set, err := OpenShardSplit(dir, SplitTrain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	if set.Rows() != int64(n) {
		t.Fatalf("packed %d rows, expected %d", set.Rows(), n)
	}
	return set
}

// nextRowIDs returns the first token of each row of the next batch.
func nextRowIDs(t *testing.T, it *BatchIterator) []int32 {
	t.Helper()
	batch := make([]int32, it.BatchSize()*it.RowLength())
	if err := it.Next(batch); err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, it.BatchSize())
	for b := range ids {
		ids[b] = batch[b*it.RowLength()]
	}
	return ids
}

func TestIteratorResumeExactly(t *testing.T) {
	set := packRows(t, 50, 4)
	original, err := NewBatchIterator(set, 4, 7, true)
	if err != nil {
		t.Fatal(err)
	}

	var saved []byte
	var expectedAfterSave [][]int32
	for step := range 20 { // 80 rows: crosses the end of the first 50-row epoch
		if step == 9 {
			saved, err = json.Marshal(original.Position())
			if err != nil {
				t.Fatal(err)
			}
		}
		ids := nextRowIDs(t, original)
		if step >= 9 {
			expectedAfterSave = append(expectedAfterSave, ids)
		}
	}

	var position IteratorPosition
	if err := json.Unmarshal(saved, &position); err != nil {
		t.Fatal(err)
	}
	if position.Epoch != 0 || position.Index != 36 {
		t.Errorf("saved position epoch %d index %d, expected epoch 0 index 36", position.Epoch, position.Index)
	}
	resumed, err := NewBatchIterator(set, 4, 999, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := resumed.Restore(position); err != nil {
		t.Fatal(err)
	}
	for step, expected := range expectedAfterSave {
		if got := nextRowIDs(t, resumed); !slices.Equal(got, expected) {
			t.Errorf("batch %d after resume = %v, expected %v", step+9, got, expected)
		}
	}
}

func TestIteratorRestoreOtherCorpus(t *testing.T) {
	set := packRows(t, 10, 4)
	it, err := NewBatchIterator(set, 2, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	err = it.Restore(IteratorPosition{Seed: 1, Shuffle: true, Epoch: 0, Index: 3, Rows: 11})
	if err == nil || !strings.Contains(err.Error(), "saved over 11 rows but these shards hold 10") {
		t.Errorf("error = %v, expected a row count mismatch", err)
	}
}

func TestIteratorEpochVisitsEveryRow(t *testing.T) {
	set := packRows(t, 30, 4)
	it, err := NewBatchIterator(set, 5, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int32]int{}
	var order []int32
	for range 6 {
		for _, id := range nextRowIDs(t, it) {
			seen[id]++
			order = append(order, id)
		}
	}
	for row := range int32(30) {
		if seen[row] != 1 {
			t.Errorf("row %d seen %d times in one epoch, expected once", row, seen[row])
		}
	}
	if slices.IsSorted(order) {
		t.Errorf("shuffled epoch is in storage order: %v", order)
	}
	if position := it.Position(); position.Epoch != 1 || position.Index != 0 {
		t.Errorf("after one epoch position = %+v, expected epoch 1 index 0", position)
	}
}

func TestShuffledOrderDeterministic(t *testing.T) {
	first := ShuffledOrder(1000, 42, 0)
	again := ShuffledOrder(1000, 42, 0)
	otherSeed := ShuffledOrder(1000, 43, 0)
	otherEpoch := ShuffledOrder(1000, 42, 1)

	if !slices.Equal(first, again) {
		t.Errorf("same seed and epoch gave different orders")
	}
	if slices.Equal(first, otherSeed) {
		t.Errorf("seeds 42 and 43 gave the same order")
	}
	if slices.Equal(first, otherEpoch) {
		t.Errorf("epochs 0 and 1 gave the same order")
	}
	sorted := slices.Clone(first)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != uint32(i) {
			t.Fatalf("order is not a permutation: sorted[%d] = %d", i, v)
		}
	}
}

func TestIteratorSequentialOrder(t *testing.T) {
	set := packRows(t, 6, 4)
	it, err := NewBatchIterator(set, 4, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	first, second := nextRowIDs(t, it), nextRowIDs(t, it)
	if fmt.Sprint(first, second) != "[0 1 2 3] [4 5 0 1]" {
		t.Errorf("sequential batches = %v %v, expected [0 1 2 3] [4 5 0 1]", first, second)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPackShakespeareWithGPT2(t *testing.T) {
	dataDir := testutil.DataDir(t)
	tokenizer, err := LoadTokenizer(filepath.Join(dataDir, "tokenizers", "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	textPath := filepath.Join(dataDir, "text", "tinyshakespeare.txt")
	source, err := OpenCorpus(textPath, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	result, err := Pack(source, tokenizer, dir, PackOptions{SeqLen: 1024})
	if err != nil {
		t.Fatal(err)
	}

	// GPT-2 BPE gives 338,025 tokens for this file (a published figure), plus one EOS.
	stats := result.Splits[SplitTrain]
	if stats.Tokens != 338_026 {
		t.Errorf("tokens = %d, expected 338,026", stats.Tokens)
	}
	if stats.Rows != 330 {
		t.Errorf("rows = %d, expected 330 = floor(338,026 / 1,024)", stats.Rows)
	}
	if stats.DroppedTokens != 106 {
		t.Errorf("dropped tokens = %d, expected 106", stats.DroppedTokens)
	}

	// Row 1 against tiktoken's r50k_base, an independent encoder.
	text, err := os.ReadFile(textPath)
	if err != nil {
		t.Fatal(err)
	}
	reference, _, err := codec.NewR50kBase().Encode(string(text))
	if err != nil {
		t.Fatal(err)
	}
	set, err := OpenShardSplit(dir, SplitTrain)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if set.Shards[0].Header.TokenWidth != 2 {
		t.Errorf("token width = %d, expected 2 for a vocabulary of 50,257", set.Shards[0].Header.TokenWidth)
	}
	row := make([]int32, 1024)
	if err := set.ReadRow(1, row); err != nil {
		t.Fatal(err)
	}
	for i, token := range row {
		if uint(token) != reference[1024+i] {
			t.Fatalf("row 1 token %d = %d, expected %d from r50k_base", i, token, reference[1024+i])
		}
	}
}

// BenchmarkPackGutenbergValidation packs the Gutenberg validation books with
// the GPT-2 tokenizer into 1,024-token rows; the reported MB/s is text read.
func BenchmarkPackGutenbergValidation(b *testing.B) {
	dataDir := testutil.DataDir(b)
	tokenizer, err := LoadTokenizer(filepath.Join(dataDir, "tokenizers", "gpt2"))
	if err != nil {
		b.Fatal(err)
	}
	corpus := filepath.Join(dataDir, "gutenberg", "val")
	var bytesRead int64
	for b.Loop() {
		source, err := OpenCorpus(corpus, CorpusOptions{})
		if err != nil {
			b.Fatal(err)
		}
		result, err := Pack(source, tokenizer, b.TempDir(), PackOptions{SeqLen: 1024})
		if err != nil {
			b.Fatal(err)
		}
		bytesRead = result.Splits[SplitTrain].Bytes
		b.ReportMetric(float64(result.Splits[SplitTrain].Tokens), "tokens/op")
	}
	b.SetBytes(bytesRead)
}
