package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// jsonlSource streams a JSON Lines file, optionally zstd-compressed, one
// document per non-empty line. Lines of any length are read whole, because
// bufio.Reader.ReadBytes grows its result instead of failing on long lines.
type jsonlSource struct {
	path    string
	file    *os.File
	zstd    *zstd.Decoder
	reader  *bufio.Reader
	opts    CorpusOptions
	lineNum int
}

func openJSONL(path string, compressed bool, opts CorpusOptions) (*jsonlSource, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, err)
	}
	source := &jsonlSource{path: path, file: file, opts: opts}

	var input io.Reader = file
	if compressed {
		decoder, err := zstd.NewReader(file, zstd.WithDecoderConcurrency(1))
		if err != nil {
			file.Close()
			return nil, fmt.Errorf("corpus %s: opening zstd stream: %w", path, err)
		}
		source.zstd = decoder
		input = decoder
	}
	source.reader = bufio.NewReaderSize(input, 1<<20)
	return source, nil
}

func (s *jsonlSource) Next() (Document, error) {
	for {
		line, err := s.reader.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return Document{}, fmt.Errorf("corpus %s: line %d: %w (is the file complete?)", s.path, s.lineNum+1, err)
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return Document{}, io.EOF
		}
		s.lineNum++

		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		return s.parseLine(line)
	}
}

// parseLine decodes one JSON object and extracts its text and ID fields.
func (s *jsonlSource) parseLine(line []byte) (Document, error) {
	var record map[string]json.RawMessage
	if err := json.Unmarshal(line, &record); err != nil {
		return Document{}, fmt.Errorf("corpus %s: line %d: invalid JSON object (%v): %s; fix or delete the line",
			s.path, s.lineNum, err, abbreviate(string(line), 80))
	}

	textField := s.opts.textField()
	rawText, found := record[textField]
	if !found {
		return Document{}, fmt.Errorf("corpus %s: line %d: missing field %q (fields present: %s); choose the text field with --text-field",
			s.path, s.lineNum, textField, strings.Join(sortedKeys(record), ", "))
	}
	var text string
	if err := json.Unmarshal(rawText, &text); err != nil {
		return Document{}, fmt.Errorf("corpus %s: line %d: field %q is %s, expected a string; choose the text field with --text-field",
			s.path, s.lineNum, textField, abbreviate(string(rawText), 40))
	}

	return Document{ID: s.recordID(record), Text: text}, nil
}

// recordID returns the record's ID field as text, or "path:line" without one.
func (s *jsonlSource) recordID(record map[string]json.RawMessage) string {
	rawID, found := record[s.opts.idField()]
	if found {
		var id string
		if json.Unmarshal(rawID, &id) == nil {
			return id
		}
		if trimmed := strings.TrimSpace(string(rawID)); trimmed != "null" {
			return trimmed
		}
	}
	return s.path + ":" + strconv.Itoa(s.lineNum)
}

func (s *jsonlSource) Close() error {
	if s.zstd != nil {
		s.zstd.Close()
	}
	return s.file.Close()
}

// ReadJSONLFile calls visit with each non-empty line of a JSON Lines file and
// its 1-based line number. Errors from visit are returned with the file and
// line prefixed.
func ReadJSONLFile(path string, visit func(lineNum int, line []byte) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()

	reader := bufio.NewReaderSize(file, 1<<20)
	for lineNum := 1; ; lineNum++ {
		line, err := reader.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: line %d: %w", path, lineNum, err)
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			if visitErr := visit(lineNum, trimmed); visitErr != nil {
				return fmt.Errorf("%s: line %d: %w", path, lineNum, visitErr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func sortedKeys(record map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(record))
	for key := range record {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

// abbreviate shortens text to at most n bytes, at a UTF-8 character start, for error messages.
func abbreviate(text string, n int) string {
	if len(text) <= n {
		return text
	}
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n] + "..."
}
