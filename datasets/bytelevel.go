package datasets

import (
	"fmt"
	"strings"
)

// Byte-level BPE files (GPT-2's vocab.json and merges.txt, Hugging Face
// tokenizer.json with a ByteLevel pre-tokenizer) write every token as a string
// of printable characters, one character per byte. Bytes that are printable
// Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') are written as themselves. The other
// 68 bytes map in increasing order to U+0100, U+0101, ..., so ' ' is 'Ġ' and
// '\n' is 'Ċ'. The tokenizer works on raw bytes and uses these tables only to read
// and write such files.

// byteToRune maps a byte to the character that stands for it in byte-level files.
var byteToRune [256]rune

// runeToByte maps a byte-level character back to its byte.
var runeToByte = map[rune]byte{}

func init() {
	next := rune(256)
	for b := range 256 {
		if isPrintableLatin1(byte(b)) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = next
			next++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// isPrintableLatin1 reports whether byte b stands for itself in byte-level files.
func isPrintableLatin1(b byte) bool {
	return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)
}

// byteLevelEncode returns the byte-level form of raw bytes, for example "Ġthe" for " the".
func byteLevelEncode(raw []byte) string {
	var b strings.Builder
	b.Grow(2 * len(raw))
	for _, c := range raw {
		b.WriteRune(byteToRune[c])
	}
	return b.String()
}

// byteLevelDecode returns the raw bytes of a byte-level token string. It fails on
// a character that stands for no byte, which means that the token is not
// byte-level.
func byteLevelDecode(token string) ([]byte, error) {
	raw := make([]byte, 0, len(token))
	for _, r := range token {
		b, found := runeToByte[r]
		if !found {
			return nil, fmt.Errorf("token %q: character %q (U+%04X) is not a byte-level character", token, r, r)
		}
		raw = append(raw, b)
	}
	return raw, nil
}
