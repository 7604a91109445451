package analysis

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TokenClass is a kind of token piece, used to group depth statistics.
type TokenClass string

// Shape classes. Every token gets exactly one of them from ClassifyShapes.
// The rules look at a piece's core, its text with leading white space removed:
//   - ClassWhitespace: the core is empty.
//   - ClassPunctuation: every rune of the core is Unicode punctuation or a symbol.
//   - ClassDigits: every rune of the core is a decimal digit.
//   - A piece whose core starts with a letter is a word piece. It starts a word
//     when its text begins with white space, when it is the first token, or when
//     the previous piece ends in white space, punctuation or a symbol.
//     Otherwise it continues the word of the previous piece. A word start followed by a
//     continuation is ClassWordStart (the first piece of a multi-piece word), a
//     word start followed by anything else is ClassWholeWord, and a continuation
//     is ClassContinuation.
//   - ClassOther: anything else, such as a contraction suffix ("'s"), a mix
//     that starts with a digit ("3rd"), or a partial UTF-8 byte sequence.
const (
	ClassPunctuation  TokenClass = "punctuation"
	ClassDigits       TokenClass = "digits"
	ClassWordStart    TokenClass = "word-start"
	ClassContinuation TokenClass = "continuation"
	ClassWholeWord    TokenClass = "whole-word"
	ClassWhitespace   TokenClass = "whitespace"
	ClassOther        TokenClass = "other"
)

// Frequency classes, assigned by a FrequencyTable.
const (
	ClassFrequent TokenClass = "frequent"
	ClassRare     TokenClass = "rare"
)

// ShapeClasses lists the shape classes in display order.
var ShapeClasses = []TokenClass{
	ClassPunctuation, ClassDigits, ClassWordStart, ClassContinuation, ClassWholeWord, ClassWhitespace, ClassOther,
}

// ClassifyShapes returns the shape class of each piece of one tokenized text,
// with the rules stated at ClassPunctuation. Pieces are the decoded texts of
// the tokens, in order.
func ClassifyShapes(pieces []string) []TokenClass {
	classes := make([]TokenClass, len(pieces))
	startsWord := make([]bool, len(pieces))
	isWordPiece := make([]bool, len(pieces))

	// First pass: the class of each piece on its own, and whether word pieces start a word.
	for i, piece := range pieces {
		core := strings.TrimLeftFunc(piece, unicode.IsSpace)
		classes[i] = ownShape(core)
		if classes[i] != ClassWholeWord {
			continue
		}
		isWordPiece[i] = true
		startsWord[i] = i == 0 || len(core) < len(piece) || endsWordBoundary(pieces[i-1])
	}

	// Second pass: split word pieces into starts of multi-piece words, whole words and continuations.
	for i := range pieces {
		if !isWordPiece[i] {
			continue
		}
		switch {
		case !startsWord[i]:
			classes[i] = ClassContinuation
		case i+1 < len(pieces) && isWordPiece[i+1] && !startsWord[i+1]:
			classes[i] = ClassWordStart
		default:
			classes[i] = ClassWholeWord
		}
	}
	return classes
}

// ownShape classifies a core (a piece without its leading white space) on its
// own. Every word piece comes back as ClassWholeWord for the caller to refine.
func ownShape(core string) TokenClass {
	if core == "" {
		return ClassWhitespace
	}
	if !utf8.ValidString(core) {
		return ClassOther
	}
	if allRunes(core, isPunctuationOrSymbol) {
		return ClassPunctuation
	}
	if allRunes(core, unicode.IsDigit) {
		return ClassDigits
	}
	first, _ := utf8.DecodeRuneInString(core)
	if unicode.IsLetter(first) {
		return ClassWholeWord
	}
	return ClassOther
}

// endsWordBoundary reports whether a piece ends in white space, punctuation or
// a symbol, so that a letter piece after it starts a new word.
func endsWordBoundary(piece string) bool {
	last, size := utf8.DecodeLastRuneInString(piece)
	if size == 0 || last == utf8.RuneError {
		return false
	}
	return unicode.IsSpace(last) || isPunctuationOrSymbol(last)
}

func isPunctuationOrSymbol(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

func allRunes(s string, predicate func(rune) bool) bool {
	for _, r := range s {
		if !predicate(r) {
			return false
		}
	}
	return true
}

// FrequencyTable holds token counts over a reference corpus and the cut-off
// that splits tokens into frequent and rare.
//
// A token is frequent when it belongs to the smallest set of most-counted ids
// that together cover at least FrequentMass of the corpus tokens. Every other
// id, unseen ones included, is rare. With FrequentMass = 0.5 the frequent ids
// are the head of the distribution that accounts for half of all running text.
type FrequencyTable struct {
	Counts       map[int]int
	Total        int
	FrequentMass float64

	frequent map[int]bool
}

// DefaultFrequentMass is the share of corpus tokens covered by the frequent ids.
const DefaultFrequentMass = 0.5

// NewFrequencyTable counts the ids of a reference corpus, for example the
// training tokens, and marks the frequent ones (see FrequencyTable).
func NewFrequencyTable(corpus []int, frequentMass float64) *FrequencyTable {
	counts := make(map[int]int)
	for _, id := range corpus {
		counts[id]++
	}
	return NewFrequencyTableFromCounts(counts, frequentMass)
}

// NewFrequencyTableFromCounts builds the table from counts per id.
func NewFrequencyTableFromCounts(counts map[int]int, frequentMass float64) *FrequencyTable {
	table := &FrequencyTable{Counts: counts, FrequentMass: frequentMass, frequent: make(map[int]bool)}
	ids := make([]int, 0, len(counts))
	for id, count := range counts {
		table.Total += count
		ids = append(ids, id)
	}

	// Most-counted first; ties by id so that the cut-off does not depend on map order.
	sort.Slice(ids, func(a, b int) bool {
		if counts[ids[a]] != counts[ids[b]] {
			return counts[ids[a]] > counts[ids[b]]
		}
		return ids[a] < ids[b]
	})
	covered := 0
	for _, id := range ids {
		if float64(covered) >= frequentMass*float64(table.Total) {
			break
		}
		table.frequent[id] = true
		covered += counts[id]
	}
	return table
}

// Class returns ClassFrequent or ClassRare for id.
func (f *FrequencyTable) Class(id int) TokenClass {
	if f.frequent[id] {
		return ClassFrequent
	}
	return ClassRare
}

// NumFrequent returns the number of ids classed as frequent.
func (f *FrequencyTable) NumFrequent() int { return len(f.frequent) }
