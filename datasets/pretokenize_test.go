package datasets

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// gpt2Pattern is GPT-2's pre-tokenization pattern, run by regexp2 (a
// backtracking engine with lookahead) as the reference for the scanner.
var gpt2Pattern = regexp2.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, regexp2.None)

// regexp2Pieces returns the matches of gpt2Pattern in text, which must be valid UTF-8.
func regexp2Pieces(t testing.TB, text string) []string {
	t.Helper()
	var pieces []string
	match, err := gpt2Pattern.FindStringMatch(text)
	for ; match != nil && err == nil; match, err = gpt2Pattern.FindNextMatch(match) {
		pieces = append(pieces, match.String())
	}
	if err != nil {
		t.Fatalf("regexp2: %v", err)
	}
	return pieces
}

func TestGPT2PiecesHandCases(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"it's they're I'd we'll", []string{"it", "'s", " they", "'re", " I", "'d", " we", "'ll"}},
		{"'S upper", []string{"'", "S", " upper"}}, // contractions are case-sensitive
		{"a  b", []string{"a", " ", " b"}},         // the run leaves its last space to the word
		{"a\n\nb", []string{"a", "\n", "\n", "b"}}, // a one-character run before a word is \s+
		{"end   ", []string{"end", "   "}},         // a run at the end is one piece
		{"x 123 4.5", []string{"x", " 123", " 4", ".", "5"}},
		{"(hi)!?", []string{"(", "hi", ")!?"}},
		{" 'quoted'", []string{" '", "quoted", "'"}},
		{"café naïve", []string{"café", " naïve"}},
		{"x\u00a0\u00a0y", []string{"x", "\u00a0", "\u00a0", "y"}}, // no-break space is \s
		{"\t\tx", []string{"\t", "\t", "x"}},
		{"Ⅻ²", []string{"Ⅻ²"}}, // letter numbers and superscripts are \p{N}
	}
	for _, c := range cases {
		got := appendGPT2Pieces(nil, c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("pieces of %q = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestGPT2PiecesMatchRegexp2(t *testing.T) {
	texts := []string{
		"The quick brown fox's 2 dogs  jumped\r\n\r\n over 3.14 lazy   cats!!  ",
		"It's 'quoted' -- and “curly” … ’tis the season’s end.\n\t\n",
		"Ελληνικά, русский, 日本語のテキスト, عربي 123٤٥",
		"   leading and trailing   \n",
	}
	for _, text := range texts {
		got := appendGPT2Pieces(nil, text)
		want := regexp2Pieces(t, text)
		if !slices.Equal(got, want) {
			t.Errorf("pieces of %q:\n got %q\nwant %q", text, got, want)
		}
	}
}

// FuzzGPT2Pieces checks the scanner against regexp2 on valid UTF-8, and on any
// input checks that the pieces cover the text exactly.
func FuzzGPT2Pieces(f *testing.F) {
	for _, seed := range []string{"", "a", " 's", "x  \n y", "1 2 3", "\xff\xfe ok", "'ll've'd"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := appendGPT2Pieces(nil, text)
		if joined := strings.Join(got, ""); joined != text {
			t.Fatalf("pieces %q join to %q, want %q", got, joined, text)
		}
		for _, piece := range got {
			if piece == "" {
				t.Fatalf("empty piece in %q", got)
			}
		}
		if utf8.ValidString(text) {
			if want := regexp2Pieces(t, text); !slices.Equal(got, want) {
				t.Fatalf("pieces of %q:\n got %q\nwant %q", text, got, want)
			}
		}
	})
}

func TestDigitsPreTokenizer(t *testing.T) {
	cases := []struct {
		individual bool
		text       string
		want       []string
	}{
		{true, "a12 b", []string{"a", "1", "2", " b"}},
		{false, "a12 b", []string{"a", "12", " b"}},
		{true, "x①y", []string{"x", "①", "y"}}, // ① is \p{N} (No)
		{false, "1", []string{"1"}},
		{true, "no digits", []string{"no digits"}},
	}
	for _, c := range cases {
		got := digitsPreTokenizer{individualDigits: c.individual}.split(nil, c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("Digits(individual=%t) of %q = %q, want %q", c.individual, c.text, got, c.want)
		}
	}
}

func TestByteLevelPrefixSpace(t *testing.T) {
	step := byteLevelPreTokenizer{addPrefixSpace: true, useRegex: true}
	if got, want := step.split(nil, "hello world"), []string{" hello", " world"}; !slices.Equal(got, want) {
		t.Errorf("with add_prefix_space: %q, want %q", got, want)
	}
	if got, want := step.split(nil, " x"), []string{" x"}; !slices.Equal(got, want) {
		t.Errorf("with add_prefix_space on a piece starting with a space: %q, want %q", got, want)
	}
}

func TestByteLevelTableRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	encoded := byteLevelEncode(all)
	if utf8.RuneCountInString(encoded) != 256 {
		t.Errorf("byte-level form has %d characters, want 256", utf8.RuneCountInString(encoded))
	}
	// Values from GPT-2's table: byte 0 is U+0100, newline U+010A 'Ċ', space U+0120
	// 'Ġ', and the soft hyphen 0xAD, the 68th unprintable byte, U+0100+67 'Ń'.
	for _, c := range []struct {
		b    byte
		want rune
	}{{' ', 'Ġ'}, {'\n', 'Ċ'}, {0, 'Ā'}, {'A', 'A'}, {0xAD, 'Ń'}, {0xFF, 'ÿ'}} {
		if got := byteToRune[c.b]; got != c.want {
			t.Errorf("byte 0x%02x maps to %q, want %q", c.b, got, c.want)
		}
	}
	decoded, err := byteLevelDecode(encoded)
	if err != nil || !slices.Equal(decoded, all) {
		t.Errorf("byteLevelDecode(byteLevelEncode(all bytes)) = %v, %v", decoded, err)
	}
	if _, err := byteLevelDecode("a b"); err == nil {
		t.Error(`byteLevelDecode("a b") succeeded; a space is not a byte-level character`)
	}
}
