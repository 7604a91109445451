package datasets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Document is one unit of training text: a book, a JSONL record or a Parquet row.
type Document struct {
	// ID names the document: "path" for a text file, "path:line" for JSONL and
	// "path:row" for Parquet, unless the record has its own id field.
	ID string

	// Text is the document's text, or one part of it when Partial is set.
	Text string

	// Partial is set when the text continues in the next Document with the same ID.
	// Text files larger than CorpusOptions.MaxPartBytes arrive in parts cut at line
	// ends, so that no whole file is held in memory. The packer appends EOS only
	// after the last part. A part stays under about 2×MaxPartBytes + 2 MiB.
	Partial bool
}

// DocumentSource streams documents in a deterministic order.
//
// Next returns io.EOF after the last document. Sources are not safe for
// concurrent use.
type DocumentSource interface {
	Next() (Document, error)
	Close() error
}

// CorpusOptions configures how OpenCorpus reads files.
type CorpusOptions struct {
	// TextField is the JSONL field or Parquet column that holds the text ("text" if empty).
	TextField string

	// IDField is the JSONL field or Parquet column used as the document ID ("id" if
	// empty). Records without it are named by file and line or row.
	IDField string

	// KeepGutenbergBoilerplate disables the Project Gutenberg header and licence
	// stripping of text files.
	KeepGutenbergBoilerplate bool

	// MaxPartBytes is the size in bytes from which a text file's part ends at the
	// next line end that leaves its tokenization unchanged, and at the latest at
	// twice this size (DefaultMaxPartBytes if zero).
	MaxPartBytes int
}

// DefaultMaxPartBytes bounds the memory held for one part of a text file.
const DefaultMaxPartBytes = 16 << 20

func (o CorpusOptions) textField() string {
	if o.TextField == "" {
		return "text"
	}
	return o.TextField
}

func (o CorpusOptions) idField() string {
	if o.IDField == "" {
		return "id"
	}
	return o.IDField
}

func (o CorpusOptions) maxPartBytes() int {
	if o.MaxPartBytes <= 0 {
		return DefaultMaxPartBytes
	}
	return o.MaxPartBytes
}

// corpusFormat is the reader chosen for a file from its name.
type corpusFormat int

const (
	formatUnknown corpusFormat = iota
	formatText
	formatJSONL
	formatJSONLZstd
	formatParquet
)

// formatOfPath returns the corpus format implied by a file name's extension.
func formatOfPath(path string) corpusFormat {
	name := strings.ToLower(filepath.Base(path))
	switch {
	case strings.HasSuffix(name, ".txt"):
		return formatText
	case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".ndjson"):
		return formatJSONL
	case strings.HasSuffix(name, ".jsonl.zst"), strings.HasSuffix(name, ".ndjson.zst"):
		return formatJSONLZstd
	case strings.HasSuffix(name, ".parquet"):
		return formatParquet
	}
	return formatUnknown
}

// OpenCorpus opens a corpus file, or a folder whose corpus files are read in
// sorted path order, recursively.
//
// The format follows the extension: .txt (Project Gutenberg boilerplate stripped,
// CRLF normalised to LF), .jsonl or .ndjson, .jsonl.zst, and .parquet. Files with
// other extensions in a folder are skipped, so a MANIFEST or README may sit beside
// the data.
func OpenCorpus(path string, opts CorpusOptions) (DocumentSource, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, err)
	}
	if !info.IsDir() {
		if formatOfPath(path) == formatUnknown {
			return nil, fmt.Errorf("corpus %s: unknown file type; use .txt, .jsonl, .jsonl.zst or .parquet", path)
		}
		return openMultiFileSource([]string{path}, opts)
	}

	paths, err := listCorpusFiles(path)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("corpus %s: no .txt, .jsonl, .jsonl.zst or .parquet file found in the folder", path)
	}
	return openMultiFileSource(paths, opts)
}

// openMultiFileSource opens the first file at once, so that a missing column or
// an unreadable file is reported by OpenCorpus rather than by the first Next.
func openMultiFileSource(paths []string, opts CorpusOptions) (*multiFileSource, error) {
	first, err := openFileSource(paths[0], opts)
	if err != nil {
		return nil, err
	}
	return &multiFileSource{paths: paths, opts: opts, next: 1, current: first}, nil
}

// listCorpusFiles returns the corpus files under dir in sorted order.
func listCorpusFiles(dir string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entry.Type().IsRegular() && formatOfPath(path) != formatUnknown {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("corpus %s: listing files: %w", dir, err)
	}
	sort.Strings(paths)
	return paths, nil
}

// openFileSource opens one corpus file with the reader for its format.
func openFileSource(path string, opts CorpusOptions) (DocumentSource, error) {
	switch formatOfPath(path) {
	case formatText:
		return openTextFile(path, opts)
	case formatJSONL:
		return openJSONL(path, false, opts)
	case formatJSONLZstd:
		return openJSONL(path, true, opts)
	case formatParquet:
		return openParquet(path, opts)
	}
	return nil, fmt.Errorf("corpus %s: unknown file type; use .txt, .jsonl, .jsonl.zst or .parquet", path)
}

// multiFileSource reads files one after another, holding one open at a time.
type multiFileSource struct {
	paths   []string
	opts    CorpusOptions
	next    int
	current DocumentSource
}

func (s *multiFileSource) Next() (Document, error) {
	for {
		if s.current == nil {
			if s.next >= len(s.paths) {
				return Document{}, io.EOF
			}
			source, err := openFileSource(s.paths[s.next], s.opts)
			if err != nil {
				return Document{}, err
			}
			s.current = source
			s.next++
		}

		doc, err := s.current.Next()
		if errors.Is(err, io.EOF) {
			closeErr := s.current.Close()
			s.current = nil
			if closeErr != nil {
				return Document{}, closeErr
			}
			continue
		}
		return doc, err
	}
}

func (s *multiFileSource) Close() error {
	if s.current == nil {
		return nil
	}
	err := s.current.Close()
	s.current = nil
	s.next = len(s.paths)
	return err
}

// SliceSource serves documents from memory, for tests and small inputs.
type SliceSource struct {
	Documents []Document
	next      int
}

func (s *SliceSource) Next() (Document, error) {
	if s.next >= len(s.Documents) {
		return Document{}, io.EOF
	}
	doc := s.Documents[s.next]
	s.next++
	return doc, nil
}

func (s *SliceSource) Close() error { return nil }
