package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadTokenizer loads a byte-level BPE from path: a Hugging Face tokenizer.json
// file, or a folder that holds either a tokenizer.json or GPT-2's vocab.json and
// merges.txt.
func LoadTokenizer(path string) (*BPE, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	if !info.IsDir() {
		return LoadTokenizerJSON(path)
	}

	jsonPath := filepath.Join(path, "tokenizer.json")
	if _, err := os.Stat(jsonPath); err == nil {
		return LoadTokenizerJSON(jsonPath)
	}
	vocabPath := filepath.Join(path, "vocab.json")
	mergesPath := filepath.Join(path, "merges.txt")
	_, vocabErr := os.Stat(vocabPath)
	_, mergesErr := os.Stat(mergesPath)
	if vocabErr != nil || mergesErr != nil {
		return nil, fmt.Errorf("loading tokenizer: folder %s has neither tokenizer.json nor both vocab.json and merges.txt", path)
	}
	return LoadGPT2Files(vocabPath, mergesPath)
}

// LoadTokenizerJSON loads a Hugging Face tokenizer.json file; see ParseTokenizerJSON.
func LoadTokenizerJSON(path string) (*BPE, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading tokenizer: %w", err)
	}
	return ParseTokenizerJSON(data, path)
}

// ParseTokenizerJSON builds a BPE from the contents of a Hugging Face
// tokenizer.json; name is the file name used in error messages.
//
// It supports the BPE model with merges in "a b" or ["a", "b"] form and
// ignore_merges, the pre-tokenizers ByteLevel, Digits and a Sequence of them,
// added tokens with their single_word, lstrip and rstrip options, and the
// ByteLevel decoder. The normalized option of added tokens has no effect
// because no normalizer is supported. Any other model type, a normalizer,
// dropout, byte_fallback, subword prefixes or suffixes, and another
// pre-tokenizer or decoder give an error that names the feature. Post-processors, truncation and padding are accepted
// and not applied, because Encode adds no special tokens and returns the whole
// sequence.
func ParseTokenizerJSON(data []byte, name string) (*BPE, error) {
	var file tokenizerFile
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("%s: invalid tokenizer JSON: %w", name, err)
	}
	if file.Model == nil {
		return nil, fmt.Errorf("%s: no \"model\" field; is this a Hugging Face tokenizer.json?", name)
	}
	if err := file.checkSupported(name); err != nil {
		return nil, err
	}

	steps, err := parsePreTokenizer(file.PreTokenizer, name)
	if err != nil {
		return nil, err
	}
	merges, err := parseMergesJSON(file.Model.Merges, name)
	if err != nil {
		return nil, err
	}
	added, err := parseAddedTokens(file.AddedTokens, name)
	if err != nil {
		return nil, err
	}

	config := bpeConfig{
		preTokenizerJSON:  file.PreTokenizer,
		postProcessorJSON: file.PostProcessor,
		decoderJSON:       file.Decoder,
		ignoreMerges:      file.Model.IgnoreMerges,
		unkID:             -1,
	}
	if file.Model.UnkToken != nil {
		config.unkToken = *file.Model.UnkToken
	}
	return newBPE(name, file.Model.Vocab, merges, added, steps, config)
}

// tokenizerFile is the part of the tokenizer.json schema (version "1.0") that
// this package reads.
type tokenizerFile struct {
	Version       string              `json:"version"`
	Truncation    json.RawMessage     `json:"truncation"`
	Padding       json.RawMessage     `json:"padding"`
	AddedTokens   []addedTokenJSON    `json:"added_tokens"`
	Normalizer    json.RawMessage     `json:"normalizer"`
	PreTokenizer  json.RawMessage     `json:"pre_tokenizer"`
	PostProcessor json.RawMessage     `json:"post_processor"`
	Decoder       json.RawMessage     `json:"decoder"`
	Model         *tokenizerModelJSON `json:"model"`
}

type tokenizerModelJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// typedJSON reads the "type" field that every tokenizer.json component has.
type typedJSON struct {
	Type string `json:"type"`
}

// checkSupported rejects the features of the file that this package does not implement.
func (f *tokenizerFile) checkSupported(name string) error {
	model := f.Model
	if model.Type != "BPE" {
		return fmt.Errorf("%s: model type %q is not supported; only byte-level \"BPE\" is", name, model.Type)
	}
	if model.Dropout != nil && *model.Dropout != 0 {
		return fmt.Errorf("%s: BPE dropout %g is not supported; set \"dropout\" to null", name, *model.Dropout)
	}
	if model.ByteFallback {
		return fmt.Errorf("%s: BPE byte_fallback is not supported (it belongs to SentencePiece-style BPE, not byte-level BPE)", name)
	}
	if model.ContinuingSubwordPrefix != nil && *model.ContinuingSubwordPrefix != "" {
		return fmt.Errorf("%s: BPE continuing_subword_prefix %q is not supported by byte-level BPE", name, *model.ContinuingSubwordPrefix)
	}
	if model.EndOfWordSuffix != nil && *model.EndOfWordSuffix != "" {
		return fmt.Errorf("%s: BPE end_of_word_suffix %q is not supported by byte-level BPE", name, *model.EndOfWordSuffix)
	}
	if len(model.Vocab) == 0 {
		return fmt.Errorf("%s: the BPE model has an empty or missing \"vocab\"", name)
	}

	if kind, err := componentType(f.Normalizer); err != nil {
		return fmt.Errorf("%s: invalid normalizer: %w", name, err)
	} else if kind != "" {
		return fmt.Errorf("%s: normalizer %q is not supported; only tokenizers without a normalizer (\"normalizer\": null) are", name, kind)
	}
	if err := checkDecoder(f.Decoder, name); err != nil {
		return err
	}
	return checkPostProcessor(f.PostProcessor, name)
}

// componentType returns the "type" of a component, or "" for null.
func componentType(raw json.RawMessage) (string, error) {
	if isJSONNull(raw) {
		return "", nil
	}
	var typed typedJSON
	if err := json.Unmarshal(raw, &typed); err != nil {
		return "", err
	}
	if typed.Type == "" {
		return "", errors.New("missing \"type\" field")
	}
	return typed.Type, nil
}

func isJSONNull(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) == 0 || string(trimmed) == "null"
}

func checkDecoder(raw json.RawMessage, name string) error {
	kind, err := componentType(raw)
	if err != nil {
		return fmt.Errorf("%s: invalid decoder: %w", name, err)
	}
	if kind != "ByteLevel" {
		if kind == "" {
			kind = "null"
		}
		return fmt.Errorf("%s: decoder %s is not supported; a byte-level BPE needs the \"ByteLevel\" decoder", name, kind)
	}
	return nil
}

// checkPostProcessor accepts the post-processors that only add special tokens
// or adjust offsets, which Encode does not do.
func checkPostProcessor(raw json.RawMessage, name string) error {
	kind, err := componentType(raw)
	if err != nil {
		return fmt.Errorf("%s: invalid post_processor: %w", name, err)
	}
	switch kind {
	case "", "ByteLevel", "TemplateProcessing", "RobertaProcessing", "BertProcessing", "Sequence":
		return nil
	}
	return fmt.Errorf("%s: post_processor %q is not supported", name, kind)
}

// preTokenizerJSON is one pre-tokenizer of a tokenizer.json.
type preTokenizerJSON struct {
	Type             string            `json:"type"`
	AddPrefixSpace   *bool             `json:"add_prefix_space"`
	UseRegex         *bool             `json:"use_regex"`
	IndividualDigits bool              `json:"individual_digits"`
	PreTokenizers    []json.RawMessage `json:"pretokenizers"`
}

// parsePreTokenizer returns the steps of a pre_tokenizer, a Sequence flattened.
// It requires a ByteLevel step, and that a ByteLevel step which adds a prefix
// space is the last one, because a space put in front of a piece is only
// handled where no later step splits it.
func parsePreTokenizer(raw json.RawMessage, name string) ([]preTokenizer, error) {
	if isJSONNull(raw) {
		return nil, fmt.Errorf("%s: pre_tokenizer is null; a byte-level BPE needs a \"ByteLevel\" pre-tokenizer", name)
	}
	steps, err := appendPreTokenizerSteps(nil, raw, name)
	if err != nil {
		return nil, err
	}

	hasByteLevel := false
	for i, step := range steps {
		byteLevel, ok := step.(byteLevelPreTokenizer)
		if !ok {
			continue
		}
		hasByteLevel = true
		if byteLevel.addPrefixSpace && i != len(steps)-1 {
			return nil, fmt.Errorf("%s: a ByteLevel pre-tokenizer with add_prefix_space followed by another pre-tokenizer is not supported", name)
		}
	}
	if !hasByteLevel {
		return nil, fmt.Errorf("%s: pre_tokenizer has no \"ByteLevel\" step; only byte-level BPE is supported", name)
	}
	return steps, nil
}

func appendPreTokenizerSteps(steps []preTokenizer, raw json.RawMessage, name string) ([]preTokenizer, error) {
	var spec preTokenizerJSON
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("%s: invalid pre_tokenizer: %w", name, err)
	}

	switch spec.Type {
	case "Sequence":
		for _, inner := range spec.PreTokenizers {
			var err error
			if steps, err = appendPreTokenizerSteps(steps, inner, name); err != nil {
				return nil, err
			}
		}
		return steps, nil
	case "ByteLevel":
		// Hugging Face defaults both settings to true when they are absent.
		step := byteLevelPreTokenizer{addPrefixSpace: true, useRegex: true}
		if spec.AddPrefixSpace != nil {
			step.addPrefixSpace = *spec.AddPrefixSpace
		}
		if spec.UseRegex != nil {
			step.useRegex = *spec.UseRegex
		}
		return append(steps, step), nil
	case "Digits":
		return append(steps, digitsPreTokenizer{individualDigits: spec.IndividualDigits}), nil
	case "":
		return nil, fmt.Errorf("%s: a pre-tokenizer has no \"type\" field", name)
	}
	return nil, fmt.Errorf("%s: pre-tokenizer %q is not supported (supported: ByteLevel, Digits, Sequence)", name, spec.Type)
}

// parseMergesJSON reads merges written as "a b" strings or as ["a", "b"] pairs.
func parseMergesJSON(raw json.RawMessage, name string) ([][2]string, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%s: invalid BPE merges: %w", name, err)
	}

	merges := make([][2]string, len(entries))
	for i, entry := range entries {
		var line string
		if err := json.Unmarshal(entry, &line); err == nil {
			pair, err := splitMergeLine(line)
			if err != nil {
				return nil, fmt.Errorf("%s: merge %d: %w", name, i, err)
			}
			merges[i] = pair
			continue
		}

		var pair []string
		if err := json.Unmarshal(entry, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("%s: merge %d is %s; expected \"a b\" or [\"a\", \"b\"]", name, i, shortenForMessage(string(entry)))
		}
		merges[i] = [2]string{pair[0], pair[1]}
	}
	return merges, nil
}

// splitMergeLine splits "a b" into its two tokens.
func splitMergeLine(line string) ([2]string, error) {
	parts := strings.Split(line, " ")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return [2]string{}, fmt.Errorf("merge %q does not have the form \"a b\"", line)
	}
	return [2]string{parts[0], parts[1]}, nil
}

func parseAddedTokens(specs []addedTokenJSON, name string) ([]AddedToken, error) {
	added := make([]AddedToken, 0, len(specs))
	for _, spec := range specs {
		switch {
		case spec.Content == "":
			return nil, fmt.Errorf("%s: added token with id %d has empty content", name, spec.ID)
		case spec.ID < 0:
			return nil, fmt.Errorf("%s: added token %q has negative id %d", name, spec.Content, spec.ID)
		}
		added = append(added, AddedToken{
			ID: spec.ID, Content: spec.Content, Special: spec.Special,
			SingleWord: spec.SingleWord, LStrip: spec.LStrip, RStrip: spec.RStrip,
		})
	}
	return added, nil
}

// LoadGPT2Files loads GPT-2's vocab.json and merges.txt. A "#version" first line
// in merges.txt is skipped. The pre-tokenizer is ByteLevel without prefix
// space, and "<|endoftext|>", when the vocabulary has it, is a special token
// and the EOS, as in Hugging Face's GPT-2 tokenizer.
func LoadGPT2Files(vocabPath, mergesPath string) (*BPE, error) {
	vocabData, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("loading GPT-2 vocabulary: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(vocabData, &vocab); err != nil {
		return nil, fmt.Errorf("%s: invalid vocabulary JSON, expected an object of token to id: %w", vocabPath, err)
	}
	if len(vocab) == 0 {
		return nil, fmt.Errorf("%s: the vocabulary is empty", vocabPath)
	}

	merges, err := readMergesFile(mergesPath)
	if err != nil {
		return nil, err
	}

	var added []AddedToken
	if id, found := vocab[endOfText]; found {
		added = append(added, AddedToken{ID: id, Content: endOfText, Special: true})
	}
	config := bpeConfig{
		preTokenizerJSON:  json.RawMessage(`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`),
		postProcessorJSON: json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}`),
		decoderJSON:       json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`),
		unkID:             -1,
	}
	steps := []preTokenizer{byteLevelPreTokenizer{addPrefixSpace: false, useRegex: true}}
	return newBPE(vocabPath, vocab, merges, added, steps, config)
}

// endOfText is the end-of-text token of GPT-2 and of the tokenizers this package trains.
const endOfText = "<|endoftext|>"

// readMergesFile reads a merges.txt: one "a b" merge per line, lowest rank
// first, with an optional "#version" first line and blank lines ignored.
func readMergesFile(path string) ([][2]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading GPT-2 merges: %w", err)
	}
	defer file.Close()

	var merges [][2]string
	scanner := bufio.NewScanner(file)
	lineNumber := 0
	for scanner.Scan() {
		lineNumber++
		line := strings.TrimRight(scanner.Text(), "\r")
		if line == "" || (lineNumber == 1 && strings.HasPrefix(line, "#version")) {
			continue
		}
		pair, err := splitMergeLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, lineNumber, err)
		}
		merges = append(merges, pair)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return merges, nil
}

// newBPE builds a BPE from a vocabulary in byte-level form, merges in rank
// order, added tokens and pre-tokenizer steps.
func newBPE(name string, vocab map[string]int, merges [][2]string, added []AddedToken,
	steps []preTokenizer, config bpeConfig) (*BPE, error) {
	t := &BPE{
		ids:        make(map[string]int32, len(vocab)),
		merges:     make(map[idPair]mergeResult, len(merges)),
		sourceName: name,
		config:     config,
		preTokens:  preTokenizerSequence{steps: steps},
	}
	if err := t.addVocabulary(vocab, added); err != nil {
		return nil, err
	}
	if err := t.addAddedTokens(added); err != nil {
		return nil, err
	}
	if err := t.addMerges(vocab, merges); err != nil {
		return nil, err
	}

	if config.unkToken != "" {
		id, found := vocab[config.unkToken]
		if !found {
			return nil, fmt.Errorf("%s: unk_token %q is not in the vocabulary", name, config.unkToken)
		}
		t.config.unkID = int32(id)
	}
	t.eos = findEOS(added)
	return t, t.finish()
}

func (t *BPE) addVocabulary(vocab map[string]int, added []AddedToken) error {
	addedContent := make(map[int]string, len(added))
	for _, token := range added {
		addedContent[token.ID] = token.Content
	}

	for token, id := range vocab {
		if id < 0 {
			return fmt.Errorf("%s: token %q has negative id %d", t.sourceName, token, id)
		}
		if id < len(t.tokens) && t.tokens[id] != nil {
			return fmt.Errorf("%s: id %d is used by two tokens, %q and %q", t.sourceName, id, t.byteLevelTokens[id], token)
		}

		raw, err := byteLevelDecode(token)
		if content, isAdded := addedContent[id]; isAdded && content == token {
			raw, err = []byte(token), nil
		}
		if err != nil {
			return fmt.Errorf("%s: vocabulary: %w", t.sourceName, err)
		}
		t.setToken(id, raw, token)
		if previous, found := t.ids[string(raw)]; !found || int(previous) > id {
			t.ids[string(raw)] = int32(id)
		}
	}
	return nil
}

func (t *BPE) addAddedTokens(added []AddedToken) error {
	for _, token := range added {
		if token.ID < len(t.tokens) && t.tokens[token.ID] != nil && t.byteLevelTokens[token.ID] != token.Content {
			return fmt.Errorf("%s: added token %q has id %d, which the vocabulary gives to %q",
				t.sourceName, token.Content, token.ID, t.byteLevelTokens[token.ID])
		}
		t.setToken(token.ID, []byte(token.Content), token.Content)
	}
	t.added = newAddedTokenMatcher(added)
	return nil
}

func (t *BPE) addMerges(vocab map[string]int, merges [][2]string) error {
	t.mergeList = make([]idPair, 0, len(merges))
	for rank, merge := range merges {
		left, leftFound := vocab[merge[0]]
		right, rightFound := vocab[merge[1]]
		merged, mergedFound := vocab[merge[0]+merge[1]]
		switch {
		case !leftFound:
			return fmt.Errorf("%s: merge %d (%q %q): token %q is not in the vocabulary", t.sourceName, rank, merge[0], merge[1], merge[0])
		case !rightFound:
			return fmt.Errorf("%s: merge %d (%q %q): token %q is not in the vocabulary", t.sourceName, rank, merge[0], merge[1], merge[1])
		case !mergedFound:
			return fmt.Errorf("%s: merge %d (%q %q): merged token %q is not in the vocabulary", t.sourceName, rank, merge[0], merge[1], merge[0]+merge[1])
		}

		// A repeated pair keeps its last rank, as in Hugging Face tokenizers.
		pair := idPair{int32(left), int32(right)}
		t.merges[pair] = mergeResult{rank: int32(rank), id: int32(merged)}
		t.mergeList = append(t.mergeList, pair)
	}
	return nil
}

// shortenForMessage cuts a JSON value to a length that fits in an error message.
func shortenForMessage(text string) string {
	const maxBytes = 60
	if len(text) <= maxBytes {
		return text
	}
	return text[:maxBytes] + "..."
}
