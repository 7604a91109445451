package datasets

import (
	"unicode"
	"unicode/utf8"
)

// Pre-tokenization cuts text into pieces before BPE runs on each piece, so that
// no token spans two pieces. The pieces are substrings of the input, except
// that a ByteLevel step with add_prefix_space returns a new string with the
// space in front.

// preTokenizer is one step of a pre-tokenization pipeline. split appends the
// pieces of piece to out and returns out.
type preTokenizer interface {
	split(out []string, piece string) []string
}

// preTokenizerSequence applies its steps in order, each to every piece of the previous one.
type preTokenizerSequence struct {
	steps []preTokenizer
}

// pretokenize appends the pieces of text to out, using scratch as a second
// buffer, and returns both buffers for reuse.
func (s *preTokenizerSequence) pretokenize(text string, out, scratch []string) (pieces, spare []string) {
	out = append(out[:0], text)
	for _, step := range s.steps {
		scratch = scratch[:0]
		for _, piece := range out {
			scratch = step.split(scratch, piece)
		}
		out, scratch = scratch, out
	}
	return out, scratch
}

// digitsPreTokenizer is the Hugging Face Digits pre-tokenizer. It isolates
// numeric characters (Unicode category N, as Rust's char::is_numeric): each
// one becomes its own piece when individualDigits is set, and each run of them
// becomes one piece otherwise.
type digitsPreTokenizer struct {
	individualDigits bool
}

func (d digitsPreTokenizer) split(out []string, piece string) []string {
	start := 0 // start of the pending piece
	inDigits := false
	for i := 0; i < len(piece); {
		r, size := decodeRune(piece, i)
		isDigit := isNumber(r)

		switch {
		case isDigit && d.individualDigits:
			if i > start {
				out = append(out, piece[start:i])
			}
			out = append(out, piece[i:i+size])
			start = i + size
		case isDigit != inDigits && i > start:
			out = append(out, piece[start:i])
			start = i
		}
		inDigits = isDigit
		i += size
	}
	if start < len(piece) {
		out = append(out, piece[start:])
	}
	return out
}

// byteLevelPreTokenizer is the Hugging Face ByteLevel pre-tokenizer: it
// optionally puts a space in front of a piece that does not start with one, and
// cuts it with the GPT-2 pattern when useRegex is set. Mapping bytes to
// printable characters is not needed here because the BPE works on raw bytes.
type byteLevelPreTokenizer struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPreTokenizer) split(out []string, piece string) []string {
	if b.addPrefixSpace && (piece == "" || piece[0] != ' ') {
		piece = " " + piece
	}
	if !b.useRegex {
		return append(out, piece)
	}
	return appendGPT2Pieces(out, piece)
}

// appendGPT2Pieces appends the matches of GPT-2's pre-tokenization pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// to out. Go's regexp has no lookahead, so this is a scanner that takes, at
// each position, the match that the first matching alternative would give.
// The matches cover text exactly. A byte that is not valid UTF-8 counts as a
// character outside \s, \p{L} and \p{N}.
func appendGPT2Pieces(out []string, text string) []string {
	for start := 0; start < len(text); {
		end := start + gpt2MatchLength(text, start)
		out = append(out, text[start:end])
		start = end
	}
	return out
}

// gpt2MatchLength returns the length in bytes of the GPT-2 pattern's match at
// position start of text (start < len(text)). It is always at least 1.
func gpt2MatchLength(text string, start int) int {
	r, size := decodeRune(text, start)

	// 's|'t|'re|'ve|'m|'ll|'d
	if r == '\'' {
		if n := contractionSuffixLength(text[start+1:]); n > 0 {
			return 1 + n
		}
	}

	// " ?\p{L}+", " ?\p{N}+" and " ?[^\s\p{L}\p{N}]+": a single space joins the run
	// of one class that follows it.
	if r == ' ' && start+1 < len(text) {
		next, _ := decodeRune(text, start+1)
		if class := classOf(next); class != classSpace {
			return runEnd(text, start+1, class) - start
		}
	}
	if class := classOf(r); class != classSpace {
		return runEnd(text, start, class) - start
	}

	// "\s+(?!\S)" and "\s+": a whitespace run at the end of text is one match.
	// Before a non-space character, a run longer than one character leaves its
	// last character to the next match, where a space may join a word as " ?\p{L}+".
	lastStart := start
	end := start + size
	for end < len(text) {
		r, size = decodeRune(text, end)
		if classOf(r) != classSpace {
			break
		}
		lastStart = end
		end += size
	}
	if end == len(text) || lastStart == start {
		return end - start
	}
	return lastStart - start
}

// contractionSuffixLength returns the length of "s", "t", "re", "ve", "m", "ll"
// or "d" at the start of text, or 0 when none is there. The match is case-sensitive.
func contractionSuffixLength(text string) int {
	if text == "" {
		return 0
	}
	switch text[0] {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if len(text) >= 2 && text[1] == 'e' {
			return 2
		}
	case 'l':
		if len(text) >= 2 && text[1] == 'l' {
			return 2
		}
	}
	return 0
}

// charClass is the class of a character in the GPT-2 pattern.
type charClass uint8

const (
	classOther  charClass = iota // [^\s\p{L}\p{N}]
	classLetter                  // \p{L}
	classNumber                  // \p{N}
	classSpace                   // \s
)

// asciiClass holds the class of every ASCII character.
var asciiClass [utf8.RuneSelf]charClass

func init() {
	for c := range utf8.RuneSelf {
		asciiClass[c] = classOfUnicode(rune(c))
	}
}

func classOf(r rune) charClass {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	return classOfUnicode(r)
}

// classOfUnicode classifies with Go's Unicode tables. unicode.IsSpace is the
// Unicode White_Space property, which is what \s matches in the regex engines
// behind tiktoken and Hugging Face tokenizers.
func classOfUnicode(r rune) charClass {
	switch {
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// runEnd returns the end of the run of characters of class class that starts at start.
func runEnd(text string, start int, class charClass) int {
	end := start
	for end < len(text) {
		if c := text[end]; c < utf8.RuneSelf {
			if asciiClass[c] != class {
				return end
			}
			end++
			continue
		}
		r, size := decodeRune(text, end)
		if classOf(r) != class {
			return end
		}
		end += size
	}
	return end
}

// decodeRune decodes the character at text[i]. A byte that is not valid UTF-8
// decodes as utf8.RuneError with size 1, which classOf puts in classOther.
func decodeRune(text string, i int) (rune, int) {
	if c := text[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(text[i:])
}

// isNumber reports whether r is in Unicode category N.
func isNumber(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return unicode.IsNumber(r)
}
