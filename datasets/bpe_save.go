package datasets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// MarshalTokenizerJSON returns the tokenizer in Hugging Face's tokenizer.json
// format (version "1.0"): the vocabulary in id order and the merges in
// ["a", "b"] pair form, which Hugging Face tokenizers 0.20 and later read.
// ParseTokenizerJSON reads it back into an identical tokenizer.
func (t *BPE) MarshalTokenizerJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"version":"1.0","truncation":null,"padding":null,"added_tokens":`)
	if err := t.writeAddedTokens(&b); err != nil {
		return nil, err
	}

	b.WriteString(`,"normalizer":null,"pre_tokenizer":`)
	b.Write(jsonOrNull(t.config.preTokenizerJSON))
	b.WriteString(`,"post_processor":`)
	b.Write(jsonOrNull(t.config.postProcessorJSON))
	b.WriteString(`,"decoder":`)
	b.Write(jsonOrNull(t.config.decoderJSON))

	b.WriteString(`,"model":{"type":"BPE","dropout":null,"unk_token":`)
	if err := writeJSONValue(&b, unkTokenValue(t.config.unkToken)); err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, `,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"ignore_merges":%t,"vocab":`,
		t.config.ignoreMerges)
	if err := t.writeVocab(&b); err != nil {
		return nil, err
	}
	b.WriteString(`,"merges":`)
	if err := t.writeMerges(&b); err != nil {
		return nil, err
	}
	b.WriteString("}}")

	var indented bytes.Buffer
	if err := json.Indent(&indented, b.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("formatting tokenizer JSON: %w", err)
	}
	indented.WriteByte('\n')
	return indented.Bytes(), nil
}

// SaveTokenizerJSON writes the tokenizer to path as a Hugging Face tokenizer.json.
func (t *BPE) SaveTokenizerJSON(path string) error {
	data, err := t.MarshalTokenizerJSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("saving tokenizer: %w", err)
	}
	return nil
}

func (t *BPE) writeAddedTokens(b *bytes.Buffer) error {
	specs := []addedTokenJSON{}
	for _, token := range t.AddedTokens() {
		specs = append(specs, addedTokenJSON{
			ID: token.ID, Content: token.Content, Special: token.Special,
			SingleWord: token.SingleWord, LStrip: token.LStrip, RStrip: token.RStrip,
		})
	}
	return writeJSONValue(b, specs)
}

// writeVocab writes the model vocabulary, added tokens included as Hugging
// Face does, as a JSON object in id order.
func (t *BPE) writeVocab(b *bytes.Buffer) error {
	b.WriteByte('{')
	first := true
	for id, token := range t.byteLevelTokens {
		if t.tokens[id] == nil {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		if err := writeJSONValue(b, token); err != nil {
			return err
		}
		fmt.Fprintf(b, ":%d", id)
	}
	b.WriteByte('}')
	return nil
}

func (t *BPE) writeMerges(b *bytes.Buffer) error {
	pairs := make([][2]string, len(t.mergeList))
	for i, pair := range t.mergeList {
		pairs[i] = [2]string{t.byteLevelTokens[pair.left], t.byteLevelTokens[pair.right]}
	}
	return writeJSONValue(b, pairs)
}

// writeJSONValue appends value as JSON without escaping <, > and &, so that
// tokens such as "<|endoftext|>" stay readable.
func writeJSONValue(b *bytes.Buffer, value any) error {
	encoder := json.NewEncoder(b)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		return fmt.Errorf("writing tokenizer JSON: %w", err)
	}
	b.Truncate(b.Len() - 1) // Encode ends with a newline
	return nil
}

func jsonOrNull(raw json.RawMessage) []byte {
	if isJSONNull(raw) {
		return []byte("null")
	}
	return raw
}

func unkTokenValue(token string) any {
	if token == "" {
		return nil
	}
	return token
}
