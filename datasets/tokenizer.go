// Package datasets reads real corpora, tokenizes them with byte-level BPE,
// packs them into fixed-length rows stored in binary shards, and loads
// evaluation tasks with lm-evaluation-harness scoring.
package datasets

// Tokenizer turns text into token ids and back.
type Tokenizer interface {
	// Encode returns the token ids of text, without adding any special token.
	Encode(text string) []int
	// Decode returns the text of ids; Decode(Encode(x)) == x for byte-level BPE.
	Decode(ids []int) string
	// VocabSize returns the number of ids, added tokens included.
	VocabSize() int
	// EOS returns the id appended after each document when packing.
	EOS() int
}
