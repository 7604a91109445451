package datasets

import (
	"slices"
	"strings"
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

// split is addedTokenMatcher.split for one set.
func (s *addedTokenSet) split(text string, emit func(segment string, addedID int)) {
	if s.maxLength == 0 {
		emit(text, -1)
		return
	}
	segmentStart := 0
	for i := 0; i < len(text); i++ {
		candidates := s.byFirstByte[text[i]]
		if len(candidates) == 0 {
			continue
		}
		for _, token := range candidates {
			if !strings.HasPrefix(text[i:], token.Content) {
				continue
			}
			if i > segmentStart {
				emit(text[segmentStart:i], -1)
			}
			emit(token.Content, token.ID)
			i += len(token.Content) - 1
			segmentStart = i + 1
			break
		}
	}
	if segmentStart < len(text) {
		emit(text[segmentStart:], -1)
	}
}
