package datasets

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gomor/gomor/internal/testutil"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
)

// readAllDocuments drains a source and closes it.
func readAllDocuments(t *testing.T, source DocumentSource) []Document {
	t.Helper()
	defer source.Close()
	var docs []Document
	for {
		doc, err := source.Next()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		docs = append(docs, doc)
	}
}

// joinParts concatenates the parts of each document, checking that only the
// last part of each is final.
func joinParts(t *testing.T, docs []Document) map[string]string {
	t.Helper()
	texts := map[string]string{}
	for i, doc := range docs {
		texts[doc.ID] += doc.Text
		isLast := i == len(docs)-1 || docs[i+1].ID != doc.ID
		if doc.Partial == isLast {
			t.Errorf("document %q part %d: Partial = %v, expected %v", doc.ID, i, doc.Partial, !isLast)
		}
	}
	return texts
}

func TestGutenbergStripCRLFFixture(t *testing.T) {
	// Written by hand from testdata/gutenberg_crlf.txt: the lines between the
	// START and END markers, with CRLF turned into LF.
	expected := "\nCHAPTER I.\n\nIt was a dark and stormy night.\nThe rain fell in torrents.\n\n"
	path := filepath.Join("testdata", "gutenberg_crlf.txt")

	source, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	if len(docs) != 1 {
		t.Fatalf("got %d documents, expected 1", len(docs))
	}
	if docs[0].Text != expected {
		t.Errorf("streamed text = %q, expected %q", docs[0].Text, expected)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := StripGutenberg(string(raw)); got != expected {
		t.Errorf("StripGutenberg = %q, expected %q", got, expected)
	}
}

func TestGutenbergStripInSmallParts(t *testing.T) {
	expected := "\nCHAPTER I.\n\nIt was a dark and stormy night.\nThe rain fell in torrents.\n\n"
	source, err := OpenCorpus(filepath.Join("testdata", "gutenberg_crlf.txt"), CorpusOptions{MaxPartBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	if len(docs) < 3 {
		t.Errorf("got %d parts with MaxPartBytes 8, expected several", len(docs))
	}
	texts := joinParts(t, docs)
	for id, text := range texts {
		if text != expected {
			t.Errorf("joined parts of %s = %q, expected %q", id, text, expected)
		}
	}
}

func TestGutenbergKeepBoilerplate(t *testing.T) {
	path := filepath.Join("testdata", "gutenberg_crlf.txt")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	source, err := OpenCorpus(path, CorpusOptions{KeepGutenbergBoilerplate: true})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	expected := strings.ReplaceAll(string(raw), "\r\n", "\n")
	if len(docs) != 1 || docs[0].Text != expected {
		t.Errorf("with KeepGutenbergBoilerplate got %d documents, first %q; expected the whole file with LF", len(docs), abbreviate(docs[0].Text, 60))
	}
}

func TestGutenbergStripRealBook(t *testing.T) {
	dir := filepath.Join(testutil.DataDir(t), "gutenberg", "val")
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Skipf("no Gutenberg book in %s", dir)
	}
	path := paths[0]
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// Reference by regular expression, independent of the line scanner.
	normalised := strings.ReplaceAll(string(raw), "\r\n", "\n")
	startLine := regexp.MustCompile(`(?m)^\*\*\* ?START OF.*\n`).FindStringIndex(normalised)
	if startLine == nil {
		t.Fatalf("%s has no START line", path)
	}
	endLine := regexp.MustCompile(`(?m)^\*\*\* ?END OF`).FindStringIndex(normalised[startLine[1]:])
	if endLine == nil {
		t.Fatalf("%s has no END line", path)
	}
	expected := normalised[startLine[1] : startLine[1]+endLine[0]]

	source, err := OpenCorpus(path, CorpusOptions{MaxPartBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	got := joinParts(t, docs)[path]
	if got != expected {
		t.Errorf("stripped %s: %d bytes, expected %d bytes; first bytes %q vs %q",
			path, len(got), len(expected), abbreviate(got, 60), abbreviate(expected, 60))
	}
	if strings.Contains(got, "\r") {
		t.Errorf("stripped %s still contains \\r", path)
	}
	if strings.Contains(got, "PROJECT GUTENBERG EBOOK") {
		t.Errorf("stripped %s still contains a marker line", path)
	}
	if len(got) < len(raw)/2 {
		t.Errorf("stripped %s kept %d of %d bytes, expected most of the book", path, len(got), len(raw))
	}
}

func TestJSONLLineLongerThan64KiB(t *testing.T) {
	long := strings.Repeat("abcdefghij", 20_000) // 200,000 bytes
	path := filepath.Join(t.TempDir(), "long.jsonl")
	content := fmt.Sprintf("{\"text\": %q, \"id\": \"first\"}\n\n{\"text\": \"short\"}\n", long)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	source, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	if len(docs) != 2 {
		t.Fatalf("got %d documents, expected 2", len(docs))
	}
	if docs[0].Text != long {
		t.Errorf("long line: got %d bytes, expected %d", len(docs[0].Text), len(long))
	}
	if docs[0].ID != "first" {
		t.Errorf("first ID = %q, expected %q", docs[0].ID, "first")
	}
	if expectedID := path + ":3"; docs[1].ID != expectedID {
		t.Errorf("second ID = %q, expected %q (file and line)", docs[1].ID, expectedID)
	}
}

func TestJSONLZstd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs.jsonl.zst")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	encoder, err := zstd.NewWriter(file)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		fmt.Fprintf(encoder, "{\"body\": \"document %d\"}\n", i)
	}
	if err := encoder.Close(); err != nil {
		t.Fatal(err)
	}
	file.Close()

	source, err := OpenCorpus(path, CorpusOptions{TextField: "body"})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	if len(docs) != 100 {
		t.Fatalf("got %d documents, expected 100", len(docs))
	}
	if docs[57].Text != "document 57" {
		t.Errorf("document 57 text = %q", docs[57].Text)
	}
}

func TestJSONLBadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	content := "{\"text\": \"fine\"}\n{\"text\": \"broken\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	source, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()

	if _, err := source.Next(); err != nil {
		t.Fatalf("first line: %v", err)
	}
	_, err = source.Next()
	if err == nil {
		t.Fatal("second line: no error for invalid JSON")
	}
	for _, want := range []string{path, "line 2", "invalid JSON"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestJSONLMissingAndWrongField(t *testing.T) {
	cases := []struct {
		name, line, want string
	}{
		{"missing", `{"body": "x"}`, `missing field "text" (fields present: body)`},
		{"number", `{"text": 3}`, `field "text" is 3, expected a string`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docs.jsonl")
			if err := os.WriteFile(path, []byte(c.line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			source, err := OpenCorpus(path, CorpusOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer source.Close()
			_, err = source.Next()
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "line 1") {
				t.Errorf("error = %v, expected one naming line 1 and containing %q", err, c.want)
			}
		})
	}
}

// fineWebRow has the leading columns of the FineWeb-Edu schema.
type fineWebRow struct {
	Text  string  `parquet:"text"`
	ID    string  `parquet:"id"`
	Dump  string  `parquet:"dump"`
	URL   string  `parquet:"url"`
	Score float64 `parquet:"score"`
}

func TestParquetTextColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shard.parquet")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writer := parquet.NewGenericWriter[fineWebRow](file, parquet.PageBufferSize(512))
	const rows = 1000
	groupStarts := []int{0, 333, 666, rows} // three row groups
	for group := range 3 {
		var batch []fineWebRow
		for i := groupStarts[group]; i < groupStarts[group+1]; i++ {
			batch = append(batch, fineWebRow{
				Text: fmt.Sprintf("row %d %s", i, strings.Repeat("x", i%50)),
				ID:   fmt.Sprintf("<urn:uuid:%04d>", i),
				URL:  "http://example.com/",
			})
		}
		if _, err := writer.Write(batch); err != nil {
			t.Fatal(err)
		}
		if err := writer.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	file.Close()

	source, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	if len(docs) != rows {
		t.Fatalf("got %d documents, expected %d", len(docs), rows)
	}
	for _, i := range []int{0, 333, 334, 999} {
		expectedText := fmt.Sprintf("row %d %s", i, strings.Repeat("x", i%50))
		if docs[i].Text != expectedText {
			t.Errorf("row %d text = %q, expected %q", i, docs[i].Text, expectedText)
		}
		if expectedID := fmt.Sprintf("<urn:uuid:%04d>", i); docs[i].ID != expectedID {
			t.Errorf("row %d ID = %q, expected %q", i, docs[i].ID, expectedID)
		}
	}
}

func TestParquetWrongColumnType(t *testing.T) {
	type numericRow struct {
		Text int64 `parquet:"text"`
	}
	path := filepath.Join(t.TempDir(), "numbers.parquet")
	if err := parquet.WriteFile(path, []numericRow{{Text: 1}, {Text: 2}}); err != nil {
		t.Fatal(err)
	}
	_, err := OpenCorpus(path, CorpusOptions{})
	if err == nil || !strings.Contains(err.Error(), "expected a string") || !strings.Contains(err.Error(), path) {
		t.Errorf("error = %v, expected one naming %s and asking for a string column", err, path)
	}

	_, err = OpenCorpus(path, CorpusOptions{TextField: "body"})
	if err == nil || !strings.Contains(err.Error(), `missing column "body"`) {
		t.Errorf("error = %v, expected a missing column error", err)
	}
}

func TestOpenCorpusFolderOrder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"b.txt":         "plain text b\n",
		"a.jsonl":       "{\"text\": \"json a\"}\n",
		"sub/c.txt":     "plain text c\n",
		"README.md":     "not part of the corpus\n",
		"MANIFEST.tsv":  "x\ty\n",
		"sub/notes.doc": "skipped\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	source, err := OpenCorpus(dir, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	var texts []string
	for _, doc := range docs {
		texts = append(texts, doc.Text)
	}
	expected := []string{"json a", "plain text b\n", "plain text c\n"}
	if fmt.Sprint(texts) != fmt.Sprint(expected) {
		t.Errorf("texts = %q, expected %q", texts, expected)
	}
}

func TestTextPartsTokenizeLikeWhole(t *testing.T) {
	dataDir := testutil.DataDir(t)
	tokenizer, err := LoadTokenizer(filepath.Join(dataDir, "tokenizers", "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dataDir, "text", "tinyshakespeare.txt")
	source, err := OpenCorpus(path, CorpusOptions{MaxPartBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	if len(docs) < 200 {
		t.Fatalf("%d parts of at most about 4 KiB, expected over 200", len(docs))
	}

	var fromParts []int
	for _, doc := range docs {
		fromParts = append(fromParts, tokenizer.Encode(doc.Text)...)
	}
	whole := tokenizer.Encode(joinParts(t, docs)[path])
	if len(fromParts) != len(whole) {
		t.Fatalf("parts give %d tokens, the whole text %d", len(fromParts), len(whole))
	}
	for i := range whole {
		if fromParts[i] != whole[i] {
			t.Fatalf("token %d: parts give %d, the whole text %d", i, fromParts[i], whole[i])
		}
	}
}

func TestParquetOptionalTextWithNulls(t *testing.T) {
	type optionalRow struct {
		ID   *string `parquet:"id,optional"`
		Text *string `parquet:"text,optional"`
	}
	text, id := "kept", "row-0"
	path := filepath.Join(t.TempDir(), "optional.parquet")
	rows := []optionalRow{{ID: &id, Text: &text}, {ID: nil, Text: nil}}
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}

	source, err := OpenCorpus(path, CorpusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := readAllDocuments(t, source)
	if len(docs) != 2 {
		t.Fatalf("got %d documents, expected 2", len(docs))
	}
	if docs[0].Text != "kept" || docs[0].ID != "row-0" {
		t.Errorf("row 0 = %+v, expected text \"kept\" and ID \"row-0\"", docs[0])
	}
	if docs[1].Text != "" || docs[1].ID != path+":1" {
		t.Errorf("row 1 = %+v, expected empty text and ID %q", docs[1], path+":1")
	}
}
