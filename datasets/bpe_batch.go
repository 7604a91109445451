package datasets

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// streamChunkBytes is the size of the chunks that EncodeStream reads and
// encodes in parallel.
const streamChunkBytes = 256 << 10

// EncodeBatch returns the ids of each text, encoding the texts on
// runtime.GOMAXPROCS(0) goroutines. It gives the same ids as Encode.
func (t *BPE) EncodeBatch(texts []string) [][]int {
	out := make([][]int, len(texts))
	var next atomic.Int64
	t.runWorkers(len(texts), func(state *encoderState) {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(texts) {
				return
			}
			out[i] = state.encode(nil, texts[i], true)
		}
	})
	return out
}

// runWorkers runs work on min(GOMAXPROCS, jobs) goroutines, each with its own
// encoder state, and waits for them.
func (t *BPE) runWorkers(jobs int, work func(state *encoderState)) {
	workers := min(runtime.GOMAXPROCS(0), jobs)
	var wait sync.WaitGroup
	for range workers {
		wait.Go(func() {
			state := t.acquireEncoder()
			defer t.releaseEncoder(state)
			work(state)
		})
	}
	wait.Wait()
}

// EncodeStream encodes all text read from r as one text, so the ids equal
// Encode of the whole text, without holding it in memory. It reads chunks of
// about 256 KiB, each cut where the whole text has a pre-token boundary: after a
// non-space ASCII character, before an ASCII space, away from any added token.
// It encodes a batch of chunks on GOMAXPROCS goroutines and calls emit with
// the ids of each chunk in order. The ids slice is reused after emit
// returns. An error from r or emit stops the stream and is returned.
func (t *BPE) EncodeStream(r io.Reader, emit func(ids []int) error) error {
	return t.encodeStream(r, streamChunkBytes, emit)
}

// encodeStream is EncodeStream with chunks of about chunkBytes.
func (t *BPE) encodeStream(r io.Reader, chunkBytes int, emit func(ids []int) error) error {
	workers := runtime.GOMAXPROCS(0)
	reader := chunkReader{reader: r, tokenizer: t, chunkBytes: chunkBytes}
	results := make([][]int, 2*workers)
	atStart := true

	for {
		chunks, err := reader.readChunks(2 * workers)
		if err != nil {
			return err
		}
		if len(chunks) == 0 {
			return nil
		}

		firstAtStart := atStart
		var next atomic.Int64
		t.runWorkers(len(chunks), func(state *encoderState) {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				results[i] = state.encode(results[i][:0], chunks[i], firstAtStart && i == 0)
			}
		})
		atStart = false

		for _, ids := range results[:len(chunks)] {
			if err := emit(ids); err != nil {
				return err
			}
		}
	}
}

// CountTokens returns the number of tokens of all text read from r, encoded as one text.
func (t *BPE) CountTokens(r io.Reader) (int64, error) {
	var count int64
	err := t.EncodeStream(r, func(ids []int) error {
		count += int64(len(ids))
		return nil
	})
	return count, err
}

// chunkReader cuts a stream into chunks at safe boundaries.
type chunkReader struct {
	reader     io.Reader
	tokenizer  *BPE
	chunkBytes int
	pending    []byte // read but not yet returned
	eof        bool
}

// readChunks returns up to n chunks; none means the stream has ended.
func (c *chunkReader) readChunks(n int) ([]string, error) {
	var chunks []string
	for len(chunks) < n {
		chunk, err := c.readChunk()
		if err != nil {
			return nil, err
		}
		if chunk == "" {
			break
		}
		chunks = append(chunks, chunk)
	}
	return chunks, nil
}

// readChunk returns the next chunk, or "" at the end of the stream.
func (c *chunkReader) readChunk() (string, error) {
	searchFrom := 0
	for {
		if len(c.pending) >= c.chunkBytes {
			if cut := c.tokenizer.lastSafeCut(c.pending, searchFrom); cut > 0 {
				chunk := string(c.pending[:cut])
				c.pending = append(c.pending[:0], c.pending[cut:]...)
				return chunk, nil
			}
			searchFrom = max(0, len(c.pending)-c.tokenizer.added.maxLength())
		}
		if c.eof {
			chunk := string(c.pending)
			c.pending = c.pending[:0]
			return chunk, nil
		}

		// NOTE: text without a safe cut (256 KiB with no ASCII space) grows
		// the chunk until one appears or the stream ends.
		if err := c.fill(); err != nil {
			return "", err
		}
	}
}

// fill appends up to chunkBytes from the reader to pending.
func (c *chunkReader) fill() error {
	start := len(c.pending)
	c.pending = slices.Grow(c.pending, c.chunkBytes)[:start+c.chunkBytes]
	n, err := io.ReadFull(c.reader, c.pending[start:])
	c.pending = c.pending[:start+n]
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.eof = true
	case err != nil:
		return fmt.Errorf("reading text to encode: %w", err)
	}
	return nil
}

// lastSafeCut returns the largest position p > from in text where the
// encoding of text equals the encodings of text[:p] and text[p:] joined, or 0
// when there is none. That is a pre-token boundary (see lastPieceBoundary)
// that no added token overlaps.
func (t *BPE) lastSafeCut(text []byte, from int) int {
	for last := len(text) - 1; ; {
		p := lastPieceBoundary(text, from, last)
		if p == 0 || !t.addedTokenOverlaps(text, p) {
			return p
		}
		last = p - 1
	}
}

// lastPieceBoundary returns the largest position p with from < p <= last that
// has an ASCII non-space byte before it and an ASCII space, tab or newline at
// it, or 0 when there is none. Every pre-tokenizer cuts text there, because a
// GPT-2 pattern match or Digits piece that spanned p would contain a space
// after a non-space, and none does.
func lastPieceBoundary[Text string | []byte](text Text, from, last int) int {
	for p := min(last, len(text)-1); p > from; p-- {
		if !isASCIISpace(text[p]) {
			continue
		}
		if before := text[p-1]; before < 0x80 && !isASCIISpace(before) {
			return p
		}
	}
	return 0
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// addedTokenOverlaps reports whether an added token occurs in text across
// position p, or where a cut at p would change its match: ending at p with
// RStrip, or starting at p with SingleWord. A token cut off by the end of text
// counts as occurring, because the rest of it may follow in the stream.
func (t *BPE) addedTokenOverlaps(text []byte, p int) bool {
	sets := [2]*addedTokenSet{&t.added.special, &t.added.normal}
	for start := max(0, p-t.added.maxLength()); start <= p && start < len(text); start++ {
		for _, set := range sets {
			for _, token := range set.byFirstByte[text[start]] {
				end := start + len(token.Content)
				touches := (end == p && token.RStrip) || (start == p && token.SingleWord)
				if !touches && (start == p || end <= p) {
					continue
				}
				if end > len(text) {
					if strings.HasPrefix(token.Content, string(text[start:])) {
						return true
					}
					continue
				}
				if string(text[start:end]) == token.Content {
					return true
				}
			}
		}
	}
	return false
}
