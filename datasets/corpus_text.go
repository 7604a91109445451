package datasets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// textFileSource streams one text file as a document, in parts of at most
// about MaxPartBytes, stripping Project Gutenberg boilerplate unless disabled.
type textFileSource struct {
	path   string
	file   *os.File
	reader *bufio.Reader
	opts   CorpusOptions

	started   bool   // the header has been looked for
	stripping bool   // a START marker was found, so an END marker ends the text
	pending   string // text read while looking for the header, not yet returned
	pendingCR bool   // the last segment ended in '\r', which may start a "\r\n"
	done      bool   // end of file or END marker reached
	partsOut  int    // parts already returned
}

// textReaderBytes is the bufio buffer size. Longer lines are read in segments.
const textReaderBytes = 1 << 20

func openTextFile(path string, opts CorpusOptions) (*textFileSource, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, err)
	}
	return &textFileSource{
		path:   path,
		file:   file,
		reader: bufio.NewReaderSize(file, textReaderBytes),
		opts:   opts,
	}, nil
}

// readSegment returns the next line, or a piece of a line longer than the
// buffer, with "\r\n" normalised to "\n". It returns io.EOF only with an empty
// segment.
func (s *textFileSource) readSegment() (string, error) {
	raw, err := s.reader.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("corpus %s: %w", s.path, err)
	}
	atEOF := errors.Is(err, io.EOF)

	var b strings.Builder
	if s.pendingCR && !(len(raw) > 0 && raw[0] == '\n') {
		b.WriteByte('\r')
	}
	s.pendingCR = false
	if len(raw) > 0 && raw[len(raw)-1] == '\r' && !atEOF {
		s.pendingCR = true
		raw = raw[:len(raw)-1]
	}
	if n := len(raw); n >= 2 && raw[n-2] == '\r' && raw[n-1] == '\n' {
		b.Write(raw[:n-2])
		b.WriteByte('\n')
	} else {
		b.Write(raw)
	}

	if b.Len() == 0 && atEOF {
		return "", io.EOF
	}
	return b.String(), nil
}

// skipHeader consumes the Gutenberg header when a START line appears within
// gutenbergHeaderScanBytes, and otherwise keeps what it read as pending text.
func (s *textFileSource) skipHeader() error {
	s.started = true
	if s.opts.KeepGutenbergBoilerplate {
		return nil
	}

	var scanned strings.Builder
	for scanned.Len() < gutenbergHeaderScanBytes {
		segment, err := s.readSegment()
		if errors.Is(err, io.EOF) {
			s.done = true
			break
		}
		if err != nil {
			return err
		}
		if isGutenbergStartLine(segment) {
			s.stripping = true
			return nil
		}
		scanned.WriteString(segment)
	}
	s.pending = scanned.String()
	return nil
}

func (s *textFileSource) Next() (Document, error) {
	if !s.started {
		if err := s.skipHeader(); err != nil {
			return Document{}, err
		}
	}
	if s.done && s.pending == "" && s.partsOut > 0 {
		return Document{}, io.EOF
	}

	maxBytes := s.opts.maxPartBytes()
	if head, found := cutAtPartBoundary(s.pending, maxBytes); found {
		s.pending = s.pending[len(head):]
		s.partsOut++
		return Document{ID: s.path, Text: head, Partial: true}, nil
	}

	var part strings.Builder
	part.WriteString(s.pending)
	s.pending = ""
	for !s.done && !(part.Len() >= maxBytes && s.atPartBoundary(part.String())) {
		segment, err := s.readSegment()
		if errors.Is(err, io.EOF) {
			s.done = true
			break
		}
		if err != nil {
			return Document{}, err
		}
		if s.stripping && isGutenbergEndLine(segment) {
			s.done = true
			break
		}
		part.WriteString(segment)
	}

	if !s.done {
		if _, err := s.reader.Peek(1); errors.Is(err, io.EOF) && !s.pendingCR {
			s.done = true
		}
	}
	s.partsOut++
	return Document{ID: s.path, Text: part.String(), Partial: !s.done}, nil
}

// atPartBoundary reports whether the text may be cut between part and what
// follows without changing its tokenization: part ends in a non-space byte and
// "\n", and the next byte is not white space. The GPT-2 pre-tokenizer pattern,
// which byte-level BPE tokenizers use, then makes that "\n" a pre-token of its
// own in the whole text too, and BPE merges never cross pre-tokens.
// NOTE: text without such a boundary is cut at 2×MaxPartBytes anyway, where its
// tokens may differ from those of the whole text.
func (s *textFileSource) atPartBoundary(part string) bool {
	if len(part) >= 2*s.opts.maxPartBytes() {
		return true
	}
	n := len(part)
	if n < 2 || part[n-1] != '\n' || isWhiteSpaceByte(part[n-2]) || s.pendingCR {
		return false
	}
	next, err := s.reader.Peek(1)
	return err != nil || !isWhiteSpaceByte(next[0])
}

// cutAtPartBoundary returns the first part of text, at least minBytes long, that
// ends at a boundary as atPartBoundary defines it, and whether there is one
// before the end of text.
func cutAtPartBoundary(text string, minBytes int) (string, bool) {
	for i := max(minBytes, 2); i < len(text); i++ {
		if text[i-1] == '\n' && !isWhiteSpaceByte(text[i-2]) && !isWhiteSpaceByte(text[i]) {
			return text[:i], true
		}
	}
	return "", false
}

func isWhiteSpaceByte(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}

func (s *textFileSource) Close() error {
	return s.file.Close()
}
