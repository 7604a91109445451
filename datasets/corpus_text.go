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
	var part strings.Builder
	part.WriteString(s.pending)
	s.pending = ""
	for !s.done && part.Len() < maxBytes {
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

func (s *textFileSource) Close() error {
	return s.file.Close()
}
