package datasets

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedTokenMatcher finds added tokens in raw text the way Hugging Face
// tokenizers does: special tokens first, then the other added tokens in the text
// between them, each set by leftmost-longest match.
type addedTokenMatcher struct {
	tokens  []AddedToken
	special addedTokenSet
	normal  addedTokenSet
}

func newAddedTokenMatcher(tokens []AddedToken) addedTokenMatcher {
	m := addedTokenMatcher{tokens: tokens}
	for _, token := range tokens {
		if token.Special {
			m.special.add(token)
		} else {
			m.normal.add(token)
		}
	}
	m.special.sortLongestFirst()
	m.normal.sortLongestFirst()
	return m
}

// split calls emit for each segment of text in order: addedID is the id of an
// added token, or -1 for the text between added tokens (never empty).
func (m *addedTokenMatcher) split(text string, emit func(segment string, addedID int)) {
	m.special.split(text, func(segment string, addedID int) {
		if addedID >= 0 {
			emit(segment, addedID)
			return
		}
		m.normal.split(segment, emit)
	})
}

// maxLength returns the length in bytes of the longest added token.
func (m *addedTokenMatcher) maxLength() int {
	return max(m.special.maxLength, m.normal.maxLength)
}

// addedTokenSet matches a set of tokens, indexed by their first byte.
type addedTokenSet struct {
	byFirstByte [256][]AddedToken // longest first
	maxLength   int
}

func (s *addedTokenSet) add(token AddedToken) {
	first := token.Content[0]
	s.byFirstByte[first] = append(s.byFirstByte[first], token)
	s.maxLength = max(s.maxLength, len(token.Content))
}

func (s *addedTokenSet) sortLongestFirst() {
	for _, candidates := range s.byFirstByte {
		slices.SortStableFunc(candidates, func(a, b AddedToken) int {
			return len(b.Content) - len(a.Content)
		})
	}
}

// split is addedTokenMatcher.split for one set. As in Hugging Face
// tokenizers, a match rejected by SingleWord is skipped whole, and the text
// after it is searched.
func (s *addedTokenSet) split(text string, emit func(segment string, addedID int)) {
	if s.maxLength == 0 {
		emit(text, -1)
		return
	}
	segmentStart := 0
	for i := 0; i < len(text); {
		token, found := s.longestAt(text, i)
		if !found {
			i++
			continue
		}
		start, end := i, i+len(token.Content)
		i = end
		if token.SingleWord && !isWordBoundary(text, start, end) {
			continue
		}

		if token.LStrip {
			start = max(segmentStart, start-trailingSpaceLength(text[:start]))
		}
		if token.RStrip {
			end += leadingSpaceLength(text[end:])
			i = end
		}
		if start > segmentStart {
			emit(text[segmentStart:start], -1)
		}
		emit(text[start:end], token.ID)
		segmentStart = end
	}
	if segmentStart < len(text) {
		emit(text[segmentStart:], -1)
	}
}

// longestAt returns the longest token of the set that starts at text[i].
func (s *addedTokenSet) longestAt(text string, i int) (AddedToken, bool) {
	for _, token := range s.byFirstByte[text[i]] {
		if strings.HasPrefix(text[i:], token.Content) {
			return token, true
		}
	}
	return AddedToken{}, false
}

// isWordBoundary reports whether text[start:end] has no word character
// (letter, number or '_') just before or after it.
func isWordBoundary(text string, start, end int) bool {
	if start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:start]); isWordCharacter(r) {
			return false
		}
	}
	if end < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[end:]); isWordCharacter(r) {
			return false
		}
	}
	return true
}

// isWordCharacter is Rust's char::is_alphanumeric (alphabetic or numeric) or '_'.
func isWordCharacter(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Other_Alphabetic, r)
}

// trailingSpaceLength returns the length of the whitespace at the end of text.
func trailingSpaceLength(text string) int {
	return len(text) - len(strings.TrimRightFunc(text, unicode.IsSpace))
}

// leadingSpaceLength returns the length of the whitespace at the start of text.
func leadingSpaceLength(text string) int {
	return len(text) - len(strings.TrimLeftFunc(text, unicode.IsSpace))
}
