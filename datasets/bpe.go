package datasets

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
)

// BPE is a byte-level byte-pair-encoding tokenizer, the scheme of GPT-2 and
// SmolLM. Encoding cuts text at added tokens, cuts the rest into
// pieces with the pre-tokenizers, and applies the merges to the bytes of each
// piece, lowest rank first. Decoding concatenates the bytes of the tokens.
//
// Load one with LoadTokenizer, LoadTokenizerJSON or LoadGPT2Files, or learn one
// with TrainBPE. A BPE is safe for concurrent use.
type BPE struct {
	// tokens maps an id to the raw bytes of its token. It is nil at an id
	// that no token has.
	tokens [][]byte

	// byteLevelTokens maps an id to its token as written in tokenizer files
	// (byte-level characters for model tokens, the content for added tokens).
	byteLevelTokens []string

	// ids maps the raw bytes of a model token to its id.
	ids map[string]int32

	// byteIDs maps each byte to the id of its one-byte token, else to the unk
	// token, else to -1.
	byteIDs [256]int32

	// merges maps a pair of ids to the rank of their merge and the merged id.
	merges map[idPair]mergeResult

	// mergeList is the merges in rank order, for saving.
	mergeList []idPair

	added      addedTokenMatcher
	preTokens  preTokenizerSequence
	config     bpeConfig
	eos        int
	vocabSize  int
	encoders   chan *encoderState // idle encoder states with warm caches
	sourceName string             // file the tokenizer was loaded from, for messages
}

var _ Tokenizer = (*BPE)(nil)

// bpeConfig is the settings of a tokenizer.json that MarshalTokenizerJSON writes back.
type bpeConfig struct {
	// preTokenizerJSON, postProcessorJSON and decoderJSON are the JSON values of
	// those fields, validated when loaded.
	preTokenizerJSON  json.RawMessage
	postProcessorJSON json.RawMessage
	decoderJSON       json.RawMessage

	ignoreMerges bool   // a piece that is a token is emitted whole, without merging
	unkToken     string // empty when the model has none
	unkID        int32  // -1 when the model has none
}

// idPair is two adjacent token ids.
type idPair struct {
	left, right int32
}

// mergeResult is the rank of a merge (its line in the merges list) and the id of the merged token.
type mergeResult struct {
	rank, id int32
}

// AddedToken is a token matched in the raw text before pre-tokenization and
// never split, such as "<|endoftext|>".
type AddedToken struct {
	ID      int
	Content string

	// Special marks control tokens. Special tokens are matched before the other
	// added tokens.
	Special bool

	// SingleWord matches the token only where no letter, number or '_' is
	// next to it. LStrip and RStrip make the match take in the whitespace to
	// its left or right, which is then not encoded.
	SingleWord, LStrip, RStrip bool
}

// Encode returns the token ids of text. Added tokens, special ones included,
// are recognised in the text; no token is added.
func (t *BPE) Encode(text string) []int {
	state := t.acquireEncoder()
	defer t.releaseEncoder(state)
	return state.encode(nil, text, true)
}

// EncodeOrdinary returns the token ids of text without recognising added
// tokens: "<|endoftext|>" in text encodes as ordinary characters. Use it for
// untrusted text that must not produce control tokens.
func (t *BPE) EncodeOrdinary(text string) []int {
	state := t.acquireEncoder()
	defer t.releaseEncoder(state)
	return state.encodeOrdinary(nil, text, true)
}

// Decode returns the text of ids, added tokens included. It panics on an id
// that is not in the vocabulary; DecodeBytes returns an error instead.
func (t *BPE) Decode(ids []int) string {
	raw, err := t.DecodeBytes(ids)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// DecodeBytes returns the bytes of ids. A sequence of ids may end inside a
// multi-byte UTF-8 character, so the bytes need not be valid UTF-8.
func (t *BPE) DecodeBytes(ids []int) ([]byte, error) {
	var out []byte
	for i, id := range ids {
		raw, err := t.tokenBytes(id)
		if err != nil {
			return nil, fmt.Errorf("decoding id %d at position %d: %w", id, i, err)
		}
		out = append(out, raw...)
	}
	return out, nil
}

// TokenBytes returns the raw bytes of the token with the given id.
func (t *BPE) TokenBytes(id int) ([]byte, error) {
	raw, err := t.tokenBytes(id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(raw), nil
}

func (t *BPE) tokenBytes(id int) ([]byte, error) {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == nil {
		return nil, fmt.Errorf("token id %d is not in the vocabulary of %d ids", id, t.vocabSize)
	}
	return t.tokens[id], nil
}

// IDToToken returns the token of id as tokenizer files write it: "Ġthe" for
// " the", "<|endoftext|>" for that added token. It returns "" for an unknown id.
func (t *BPE) IDToToken(id int) string {
	if id < 0 || id >= len(t.byteLevelTokens) {
		return ""
	}
	return t.byteLevelTokens[id]
}

// TokenToID returns the id of a token written as tokenizer files write it
// ("Ġthe", "<|endoftext|>").
func (t *BPE) TokenToID(token string) (int, bool) {
	for _, added := range t.added.tokens {
		if added.Content == token {
			return added.ID, true
		}
	}
	raw, err := byteLevelDecode(token)
	if err != nil {
		return 0, false
	}
	id, found := t.ids[string(raw)]
	return int(id), found
}

// VocabSize returns the number of ids, added tokens included: one more than the largest id.
func (t *BPE) VocabSize() int { return t.vocabSize }

// EOS returns the id of the end-of-text token that separates documents:
// "<|endoftext|>" or another usual name, else the first special token, else -1.
func (t *BPE) EOS() int { return t.eos }

// AddedTokens returns the added tokens in id order.
func (t *BPE) AddedTokens() []AddedToken {
	added := slices.Clone(t.added.tokens)
	slices.SortFunc(added, func(a, b AddedToken) int { return a.ID - b.ID })
	return added
}

// NumMerges returns the number of merge rules.
func (t *BPE) NumMerges() int { return len(t.mergeList) }

// String describes the tokenizer in one line.
func (t *BPE) String() string {
	return fmt.Sprintf("byte-level BPE from %s: %d ids, %d merges, %d added tokens, EOS id %d",
		t.sourceName, t.vocabSize, len(t.mergeList), len(t.added.tokens), t.eos)
}

// acquireEncoder takes an idle encoder state with a warm cache, or makes one.
func (t *BPE) acquireEncoder() *encoderState {
	select {
	case state := <-t.encoders:
		return state
	default:
		return newEncoderState(t)
	}
}

// releaseEncoder keeps state for the next call, unless enough are kept already.
func (t *BPE) releaseEncoder(state *encoderState) {
	select {
	case t.encoders <- state:
	default:
	}
}

// finish fills the lookup tables that follow from tokens, ids and merges. It
// is the last step of every constructor.
func (t *BPE) finish() error {
	for b := range 256 {
		id, found := t.ids[string([]byte{byte(b)})]
		switch {
		case found:
			t.byteIDs[b] = id
		case t.config.unkID >= 0:
			t.byteIDs[b] = t.config.unkID
		default:
			// NOTE: a byte without a token and without unk_token is dropped
			// from the encoding, as Hugging Face tokenizers does. The SmolLM2
			// vocabulary lacks 21 bytes, 0x04 and 0xF5 among them.
			t.byteIDs[b] = -1
		}
	}

	t.vocabSize = len(t.tokens)
	t.encoders = make(chan *encoderState, max(2, runtime.GOMAXPROCS(0)))
	return nil
}

// MissingBytes returns the bytes that have no one-byte token; Encode drops
// them, or encodes them as the unk token when the model has one. It is empty
// for tokenizers that TrainBPE makes, which encode every byte sequence.
func (t *BPE) MissingBytes() []byte {
	var missing []byte
	for b := range 256 {
		if _, found := t.ids[string([]byte{byte(b)})]; !found {
			missing = append(missing, byte(b))
		}
	}
	return missing
}

// setToken records the raw bytes and file form of id, growing the tables.
func (t *BPE) setToken(id int, raw []byte, fileForm string) {
	for len(t.tokens) <= id {
		t.tokens = append(t.tokens, nil)
		t.byteLevelTokens = append(t.byteLevelTokens, "")
	}
	t.tokens[id] = raw
	t.byteLevelTokens[id] = fileForm
}

// findEOS returns the id of the first of the usual end-of-text tokens that is
// an added token, or the first special token, or -1.
func findEOS(added []AddedToken) int {
	for _, name := range []string{"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "[SEP]"} {
		for _, token := range added {
			if token.Content == name {
				return token.ID
			}
		}
	}
	for _, token := range added {
		if token.Special {
			return token.ID
		}
	}
	return -1
}
