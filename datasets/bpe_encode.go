package datasets

import (
	"container/heap"
	"strings"
)

// maxCachedPieces bounds the pre-token cache of one encoder state, which is
// cleared when full. An entry costs about 100 bytes, so a full cache takes
// about 25 MB.
const maxCachedPieces = 1 << 18

// maxCachedPieceBytes is the longest piece that is cached. Longer pieces are
// rare in text, and caching them would let the cache grow without bound.
const maxCachedPieceBytes = 128

// heapMergeMinBytes is the piece length from which the merge loop uses a heap
// instead of scanning all pairs after each merge. Scanning costs O(n²), but it
// is faster on the short pieces that make up ordinary text.
const heapMergeMinBytes = 64

// encoderState holds the buffers and the pre-token cache of one goroutine's
// encoding. It is not safe for concurrent use; BPE keeps a few for reuse.
type encoderState struct {
	bpe *BPE

	// cache maps a piece to the span of its ids in cacheIDs.
	cache    map[string]idSpan
	cacheIDs []int32

	pieces, scratch []string
	symbols         []int32
	ranks           []int32
	heapMerge       heapMergeState
}

// idSpan is a range of cacheIDs.
type idSpan struct {
	start, end int32
}

func newEncoderState(t *BPE) *encoderState {
	return &encoderState{bpe: t, cache: make(map[string]idSpan)}
}

// encode appends the ids of text to out. Added tokens are matched when
// withAdded is set. atStart is false for a chunk that continues a text, so that
// no prefix space is added to it (see byteLevelPreTokenizer).
func (s *encoderState) encode(out []int, text string, atStart bool) []int {
	if len(s.bpe.added.tokens) == 0 {
		return s.encodeOrdinary(out, text, atStart)
	}
	s.bpe.added.split(text, func(segment string, addedID int) {
		if addedID >= 0 {
			out = append(out, addedID)
		} else {
			out = s.encodeOrdinary(out, segment, atStart)
		}
		atStart = true // each segment after the first is a piece of its own
	})
	return out
}

// pretokenizeBlockBytes bounds the text pre-tokenized at once, so that the
// piece buffers stay small.
const pretokenizeBlockBytes = 64 << 10

// encodeOrdinary appends the ids of text to out, treating added tokens as
// ordinary text. Long text is encoded in blocks cut at pre-token boundaries,
// which gives the same ids.
func (s *encoderState) encodeOrdinary(out []int, text string, atStart bool) []int {
	for len(text) > pretokenizeBlockBytes {
		cut := lastPieceBoundary(text, 0, pretokenizeBlockBytes)
		if cut == 0 {
			break // no boundary in the block: encode the rest at once
		}
		out = s.encodeBlock(out, text[:cut], atStart)
		text = text[cut:]
		atStart = false
	}
	return s.encodeBlock(out, text, atStart)
}

// encodeBlock appends the ids of text, pre-tokenized at once, to out.
func (s *encoderState) encodeBlock(out []int, text string, atStart bool) []int {
	if text == "" {
		return out
	}

	steps := s.bpe.preTokens.steps
	if !atStart {
		steps = withoutPrefixSpace(steps)
	}
	sequence := preTokenizerSequence{steps: steps}
	s.pieces, s.scratch = sequence.pretokenize(text, s.pieces, s.scratch)

	for _, piece := range s.pieces {
		out = s.encodePiece(out, piece)
	}
	return out
}

// withoutPrefixSpace returns steps with add_prefix_space turned off, or steps
// itself when none has it on.
func withoutPrefixSpace(steps []preTokenizer) []preTokenizer {
	changed := false
	for _, step := range steps {
		if byteLevel, ok := step.(byteLevelPreTokenizer); ok && byteLevel.addPrefixSpace {
			changed = true
		}
	}
	if !changed {
		return steps
	}
	copied := make([]preTokenizer, len(steps))
	for i, step := range steps {
		if byteLevel, ok := step.(byteLevelPreTokenizer); ok {
			byteLevel.addPrefixSpace = false
			step = byteLevel
		}
		copied[i] = step
	}
	return copied
}

// encodePiece appends the ids of one pre-token, from the cache when it is there.
func (s *encoderState) encodePiece(out []int, piece string) []int {
	if len(piece) == 1 {
		if id := s.bpe.byteIDs[piece[0]]; id >= 0 {
			out = append(out, int(id))
		}
		return out
	}
	if span, found := s.cache[piece]; found {
		for _, id := range s.cacheIDs[span.start:span.end] {
			out = append(out, int(id))
		}
		return out
	}

	ids := s.mergePiece(piece)
	if len(piece) > maxCachedPieceBytes {
		for _, id := range ids {
			out = append(out, int(id))
		}
		return out
	}
	if len(s.cache) >= maxCachedPieces {
		clear(s.cache)
		s.cacheIDs = s.cacheIDs[:0]
	}
	start := int32(len(s.cacheIDs))
	s.cacheIDs = append(s.cacheIDs, ids...)
	s.cache[strings.Clone(piece)] = idSpan{start: start, end: int32(len(s.cacheIDs))}

	for _, id := range ids {
		out = append(out, int(id))
	}
	return out
}

// mergePiece returns the ids of piece after applying the merges: starting from
// one token per byte, it repeatedly merges the adjacent pair with the lowest
// rank, leftmost first, until no pair has a merge. This is the rule of GPT-2,
// tiktoken and Hugging Face tokenizers. The result is valid until the next call.
func (s *encoderState) mergePiece(piece string) []int32 {
	t := s.bpe
	if t.config.ignoreMerges {
		if id, found := t.ids[piece]; found {
			s.symbols = append(s.symbols[:0], id)
			return s.symbols
		}
	}

	s.symbols = s.symbols[:0]
	for i := 0; i < len(piece); i++ {
		if id := t.byteIDs[piece[i]]; id >= 0 {
			s.symbols = append(s.symbols, id)
		}
	}
	if len(s.symbols) == 0 {
		return s.symbols
	}
	if len(s.symbols) >= heapMergeMinBytes {
		s.symbols = s.heapMerge.merge(t.merges, s.symbols)
		return s.symbols
	}
	s.symbols, s.ranks = scanMerge(t.merges, s.symbols, s.ranks)
	return s.symbols
}

// noMerge is the rank of a pair that has no merge.
const noMerge = int32(1<<31 - 1)

// scanMerge applies the merges to symbols in place by scanning all pair ranks
// for the minimum after each merge. ranks is a buffer for the pair ranks.
func scanMerge(merges map[idPair]mergeResult, symbols, ranks []int32) ([]int32, []int32) {
	rankOf := func(i int) int32 {
		if result, found := merges[idPair{symbols[i], symbols[i+1]}]; found {
			return result.rank
		}
		return noMerge
	}

	// ranks[i] is the rank of the pair (symbols[i], symbols[i+1]).
	ranks = ranks[:0]
	for i := 0; i+1 < len(symbols); i++ {
		ranks = append(ranks, rankOf(i))
	}

	for len(symbols) > 1 {
		best := 0
		for i, rank := range ranks {
			if rank < ranks[best] {
				best = i
			}
		}
		if ranks[best] == noMerge {
			break
		}

		// Replace the pair at best by its merged token, then refresh the ranks of
		// the pairs that the new token is part of.
		symbols[best] = merges[idPair{symbols[best], symbols[best+1]}].id
		symbols = append(symbols[:best+1], symbols[best+2:]...)
		ranks = append(ranks[:best], ranks[best+1:]...)
		if best < len(ranks) {
			ranks[best] = rankOf(best)
		}
		if best > 0 {
			ranks[best-1] = rankOf(best - 1)
		}
	}
	return symbols, ranks
}

// heapMergeState applies merges with a doubly linked list of symbols and a
// min-heap of candidate merges ordered by (rank, position), in O(n log n).
// Entries whose pair has changed since they were pushed are skipped when popped.
type heapMergeState struct {
	ids        []int32
	prev, next []int32 // neighbours in the list, -1 at the ends
	queue      mergeQueue
}

func (h *heapMergeState) merge(merges map[idPair]mergeResult, symbols []int32) []int32 {
	n := len(symbols)
	h.ids = append(h.ids[:0], symbols...)
	h.prev = h.prev[:0]
	h.next = h.next[:0]
	for i := range n {
		h.prev = append(h.prev, int32(i-1))
		h.next = append(h.next, int32(i+1))
	}
	h.next[n-1] = -1

	h.queue = h.queue[:0]
	for i := 0; i+1 < n; i++ {
		h.push(merges, int32(i))
	}
	heap.Init(&h.queue)

	for h.queue.Len() > 0 {
		candidate := heap.Pop(&h.queue).(mergeCandidate)
		left := candidate.position
		right := h.next[left]
		if h.ids[left] < 0 || right < 0 {
			continue
		}
		result, found := merges[idPair{h.ids[left], h.ids[right]}]
		if !found || result.rank != candidate.rank {
			continue // the pair at this position changed after the push
		}

		// Merge right into left and unlink right.
		h.ids[left] = result.id
		h.ids[right] = -1
		h.next[left] = h.next[right]
		if h.next[right] >= 0 {
			h.prev[h.next[right]] = left
		}

		if h.prev[left] >= 0 {
			h.pushFix(merges, h.prev[left])
		}
		h.pushFix(merges, left)
	}

	symbols = symbols[:0]
	for i := int32(0); i >= 0; i = h.next[i] {
		symbols = append(symbols, h.ids[i])
	}
	return symbols
}

// push adds the pair that starts at position to the queue without restoring the heap order.
func (h *heapMergeState) push(merges map[idPair]mergeResult, position int32) {
	next := h.next[position]
	if next < 0 {
		return
	}
	if result, found := merges[idPair{h.ids[position], h.ids[next]}]; found {
		h.queue = append(h.queue, mergeCandidate{rank: result.rank, position: position})
	}
}

// pushFix adds the pair that starts at position to the queue.
func (h *heapMergeState) pushFix(merges map[idPair]mergeResult, position int32) {
	next := h.next[position]
	if next < 0 {
		return
	}
	if result, found := merges[idPair{h.ids[position], h.ids[next]}]; found {
		heap.Push(&h.queue, mergeCandidate{rank: result.rank, position: position})
	}
}

// mergeCandidate is a pair that had a merge of the given rank when it was pushed.
type mergeCandidate struct {
	rank, position int32
}

// mergeQueue is a min-heap of candidates by rank, then by position.
type mergeQueue []mergeCandidate

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].position < q[j].position
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(mergeCandidate)) }
func (q *mergeQueue) Pop() any {
	old := *q
	last := old[len(old)-1]
	*q = old[:len(old)-1]
	return last
}
