package datasets

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// BPETrainOptions configures TrainBPE.
type BPETrainOptions struct {
	// VocabSize is the number of ids of the result: special tokens, the 256
	// one-byte tokens and the learned merges.
	VocabSize int

	// SpecialTokens get ids 0, 1, ... in this order. DefaultBPETrainOptions
	// sets {"<|endoftext|>"}, which becomes the EOS.
	SpecialTokens []string

	// IndividualDigits makes every digit a pre-token of its own (the Hugging Face
	// Digits pre-tokenizer, as SmolLM and Llama use), so that no merge learns a
	// number. Without it runs of digits are pre-tokens, as in GPT-2.
	IndividualDigits bool

	// MinFrequency is the smallest count of a pair that is still merged.
	MinFrequency int
}

// DefaultBPETrainOptions returns the options of the shipped tinytext tokenizer
// for a given vocabulary size: "<|endoftext|>" as id 0, individual digits and a
// minimum pair count of 2.
//
// Digits are split because a small vocabulary spends no merges on the years,
// chapter and page numbers of books, and numbers then tokenize the same way
// wherever they appear.
func DefaultBPETrainOptions(vocabSize int) BPETrainOptions {
	return BPETrainOptions{
		VocabSize:        vocabSize,
		SpecialTokens:    []string{endOfText},
		IndividualDigits: true,
		MinFrequency:     2,
	}
}

// TrainBPE learns a byte-level BPE from documents. Pre-tokenization is the
// GPT-2 pattern, after the Digits split when IndividualDigits is set. Special
// tokens in the documents are cut out and not learned. Each step merges the
// most frequent adjacent pair, and the smaller pair of ids on ties, as Hugging
// Face tokenizers' BpeTrainer does. The result encodes every byte sequence
// because the 256 one-byte tokens follow the special tokens.
//
// It returns an error when the corpus has too few distinct pairs to reach VocabSize.
func TrainBPE(documents iter.Seq[string], options BPETrainOptions) (*BPE, error) {
	firstMergeID := len(options.SpecialTokens) + 256
	if options.VocabSize < firstMergeID {
		return nil, fmt.Errorf("training BPE: vocabulary size %d is below %d, the special tokens plus the 256 byte tokens",
			options.VocabSize, firstMergeID)
	}
	if err := checkSpecialTokens(options.SpecialTokens); err != nil {
		return nil, err
	}

	steps := trainingPreTokenizer(options.IndividualDigits)
	counts := countPieces(documents, options.SpecialTokens, steps)
	trainer := newBPETrainer(counts)
	trainer.run(options.VocabSize-firstMergeID, max(1, options.MinFrequency))
	if learned := len(trainer.tokens) - 256; learned < options.VocabSize-firstMergeID {
		return nil, fmt.Errorf("training BPE: the corpus allows only %d merges with minimum pair count %d; "+
			"use a larger corpus or a vocabulary size of at most %d", learned, options.MinFrequency, firstMergeID+learned)
	}
	return trainer.build(options, steps)
}

func checkSpecialTokens(tokens []string) error {
	seen := map[string]bool{}
	for _, token := range tokens {
		if token == "" {
			return errors.New("training BPE: a special token is empty")
		}
		if seen[token] {
			return fmt.Errorf("training BPE: special token %q is listed twice", token)
		}
		seen[token] = true
	}
	return nil
}

// trainingPreTokenizer returns the pre-tokenizer steps of a trained tokenizer.
func trainingPreTokenizer(individualDigits bool) []preTokenizer {
	steps := []preTokenizer{byteLevelPreTokenizer{addPrefixSpace: false, useRegex: true}}
	if individualDigits {
		steps = append([]preTokenizer{digitsPreTokenizer{individualDigits: true}}, steps...)
	}
	return steps
}

// trainingPreTokenizerJSON is the tokenizer.json form of trainingPreTokenizer.
func trainingPreTokenizerJSON(individualDigits bool) json.RawMessage {
	byteLevel := `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`
	if !individualDigits {
		return json.RawMessage(byteLevel)
	}
	return json.RawMessage(`{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},` + byteLevel + `]}`)
}

// countPieces returns how often each pre-token occurs in documents, with the
// special tokens cut out first.
func countPieces(documents iter.Seq[string], specialTokens []string, steps []preTokenizer) map[string]int64 {
	special := make([]AddedToken, len(specialTokens))
	for i, content := range specialTokens {
		special[i] = AddedToken{ID: i, Content: content, Special: true}
	}
	matcher := newAddedTokenMatcher(special)
	sequence := preTokenizerSequence{steps: steps}

	counts := map[string]int64{}
	var pieces, scratch []string
	for document := range documents {
		matcher.split(document, func(segment string, addedID int) {
			if addedID >= 0 {
				return
			}
			pieces, scratch = sequence.pretokenize(segment, pieces, scratch)
			for _, piece := range pieces {
				if count, found := counts[piece]; found {
					counts[piece] = count + 1
				} else {
					counts[strings.Clone(piece)] = 1
				}
			}
		})
	}
	return counts
}

// bpeTrainer is the state of BPE training. Token ids here count from 0 for
// byte 0, and build shifts them past the special tokens.
type bpeTrainer struct {
	words      []trainingWord
	pairCounts map[idPair]int64
	pairWords  map[idPair][]int32 // words that contain the pair, possibly repeated
	queue      pairQueue

	tokens  [][]byte       // raw bytes of each token id
	tokenID map[string]int // raw bytes to id, to reuse a token that two merges produce
	merges  []idPair       // in the order learned

	wordStamp []int32 // per word, the last merge step that updated it
}

type trainingWord struct {
	symbols []int32
	count   int64
}

func newBPETrainer(counts map[string]int64) *bpeTrainer {
	trainer := &bpeTrainer{
		pairCounts: map[idPair]int64{},
		pairWords:  map[idPair][]int32{},
		tokenID:    map[string]int{},
	}
	for b := range 256 {
		trainer.tokens = append(trainer.tokens, []byte{byte(b)})
		trainer.tokenID[string([]byte{byte(b)})] = b
	}

	for piece, count := range counts {
		symbols := make([]int32, len(piece))
		for i := range len(piece) {
			symbols[i] = int32(piece[i])
		}
		trainer.words = append(trainer.words, trainingWord{symbols: symbols, count: count})
	}
	// Map iteration order is random, so the words are sorted to make pairWords,
	// and with it the result, deterministic.
	sortWords(trainer.words)
	trainer.wordStamp = make([]int32, len(trainer.words))

	for i, word := range trainer.words {
		for j := 0; j+1 < len(word.symbols); j++ {
			pair := idPair{word.symbols[j], word.symbols[j+1]}
			trainer.pairCounts[pair] += word.count
			trainer.pairWords[pair] = append(trainer.pairWords[pair], int32(i))
		}
	}
	for pair, count := range trainer.pairCounts {
		trainer.queue = append(trainer.queue, pairCount{pair: pair, count: count})
	}
	heap.Init(&trainer.queue)
	return trainer
}

// run learns up to numMerges merges of pairs seen at least minFrequency times.
func (b *bpeTrainer) run(numMerges, minFrequency int) {
	for len(b.merges) < numMerges && b.queue.Len() > 0 {
		top := heap.Pop(&b.queue).(pairCount)
		current := b.pairCounts[top.pair]
		if current != top.count {
			if current > 0 {
				heap.Push(&b.queue, pairCount{pair: top.pair, count: current})
			}
			continue
		}
		if current < int64(minFrequency) {
			return
		}
		b.merge(top.pair)
	}
}

// merge adds the token of pair, or reuses it when an earlier merge made the
// same bytes, and replaces the pair in every word that has it.
func (b *bpeTrainer) merge(pair idPair) {
	raw := append(append([]byte{}, b.tokens[pair.left]...), b.tokens[pair.right]...)
	newID, found := b.tokenID[string(raw)]
	if !found {
		newID = len(b.tokens)
		b.tokens = append(b.tokens, raw)
		b.tokenID[string(raw)] = newID
	}
	b.merges = append(b.merges, pair)
	step := int32(len(b.merges))

	// Subtract the pairs of each changed word, merge, and add its new pairs,
	// collecting the net change of each pair count.
	deltas := map[idPair]int64{}
	for _, wordIndex := range b.pairWords[pair] {
		if b.wordStamp[wordIndex] == step {
			continue // listed twice
		}
		b.wordStamp[wordIndex] = step
		word := &b.words[wordIndex]

		addPairDeltas(deltas, word.symbols, -word.count)
		word.symbols = replacePair(word.symbols, pair, int32(newID))
		addPairDeltas(deltas, word.symbols, word.count)

		for j := 0; j+1 < len(word.symbols); j++ {
			if word.symbols[j] == int32(newID) || word.symbols[j+1] == int32(newID) {
				adjacent := idPair{word.symbols[j], word.symbols[j+1]}
				b.pairWords[adjacent] = append(b.pairWords[adjacent], wordIndex)
			}
		}
	}
	delete(b.pairWords, pair)

	for changed, delta := range deltas {
		if delta == 0 {
			continue
		}
		b.pairCounts[changed] += delta
		if b.pairCounts[changed] <= 0 {
			delete(b.pairCounts, changed)
			continue
		}
		if delta > 0 {
			heap.Push(&b.queue, pairCount{pair: changed, count: b.pairCounts[changed]})
		}
	}
}

// addPairDeltas adds count to the delta of every adjacent pair of symbols.
func addPairDeltas(deltas map[idPair]int64, symbols []int32, count int64) {
	for j := 0; j+1 < len(symbols); j++ {
		deltas[idPair{symbols[j], symbols[j+1]}] += count
	}
}

// replacePair replaces each occurrence of pair in symbols, left to right, by newID.
func replacePair(symbols []int32, pair idPair, newID int32) []int32 {
	out := symbols[:0]
	for j := 0; j < len(symbols); j++ {
		if j+1 < len(symbols) && symbols[j] == pair.left && symbols[j+1] == pair.right {
			out = append(out, newID)
			j++
			continue
		}
		out = append(out, symbols[j])
	}
	return out
}

// build makes the BPE: special tokens, then the 256 bytes, then the learned tokens.
func (b *bpeTrainer) build(options BPETrainOptions, steps []preTokenizer) (*BPE, error) {
	offset := len(options.SpecialTokens)
	vocab := make(map[string]int, offset+len(b.tokens))
	added := make([]AddedToken, 0, offset)
	for id, content := range options.SpecialTokens {
		vocab[content] = id
		added = append(added, AddedToken{ID: id, Content: content, Special: true})
	}
	for id, raw := range b.tokens {
		vocab[byteLevelEncode(raw)] = offset + id
	}

	merges := make([][2]string, len(b.merges))
	for i, pair := range b.merges {
		merges[i] = [2]string{byteLevelEncode(b.tokens[pair.left]), byteLevelEncode(b.tokens[pair.right])}
	}

	config := bpeConfig{
		preTokenizerJSON: trainingPreTokenizerJSON(options.IndividualDigits),
		decoderJSON:      json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`),
		unkID:            -1,
	}
	return newBPE("TrainBPE", vocab, merges, added, steps, config)
}

// sortWords orders words by their symbols, which are still their bytes.
func sortWords(words []trainingWord) {
	slices.SortFunc(words, func(a, b trainingWord) int { return slices.Compare(a.symbols, b.symbols) })
}

// pairCount is a heap entry: a pair and its count when pushed.
type pairCount struct {
	pair  idPair
	count int64
}

// pairQueue is a max-heap by count, then by smaller pair of ids.
type pairQueue []pairCount

func (q pairQueue) Len() int { return len(q) }
func (q pairQueue) Less(i, j int) bool {
	if q[i].count != q[j].count {
		return q[i].count > q[j].count
	}
	if q[i].pair.left != q[j].pair.left {
		return q[i].pair.left < q[j].pair.left
	}
	return q[i].pair.right < q[j].pair.right
}
func (q pairQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pairQueue) Push(x any)   { *q = append(*q, x.(pairCount)) }
func (q *pairQueue) Pop() any {
	old := *q
	last := old[len(old)-1]
	*q = old[:len(old)-1]
	return last
}
