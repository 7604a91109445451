package datasets

import "strings"

// Project Gutenberg texts open with a header (title, licence notice) that ends
// with a line such as "*** START OF THIS PROJECT GUTENBERG EBOOK ... ***" or
// "***START OF THE PROJECT GUTENBERG EBOOK ... ***", and close with a licence
// that starts at a matching "*** END OF ..." line. The body between them is the
// book.

// gutenbergHeaderScanBytes bounds how far into a file the START line is
// searched. A file without one within this prefix is read unstripped.
const gutenbergHeaderScanBytes = 1 << 20

// isGutenbergStartLine reports whether line is a "*** START OF" marker.
func isGutenbergStartLine(line string) bool {
	return hasGutenbergMarker(line, "START OF")
}

// isGutenbergEndLine reports whether line is a "*** END OF" marker.
func isGutenbergEndLine(line string) bool {
	return hasGutenbergMarker(line, "END OF")
}

// hasGutenbergMarker reports whether line starts with "***", optional spaces,
// then keyword, ignoring leading white space and letter case.
func hasGutenbergMarker(line, keyword string) bool {
	rest, found := strings.CutPrefix(strings.TrimLeft(line, " \t"), "***")
	if !found {
		return false
	}
	rest = strings.TrimLeft(rest, " ")
	return len(rest) >= len(keyword) && strings.EqualFold(rest[:len(keyword)], keyword)
}

// StripGutenberg returns the body of a Project Gutenberg text held in memory:
// the lines after the first START marker and before the next END marker, with
// "\r\n" normalised to "\n". Text without a START marker is returned whole
// (normalised), and text with a START but no END marker loses only its header.
// The streaming reader behind OpenCorpus applies the same rules.
func StripGutenberg(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.SplitAfter(text, "\n")

	start := -1
	for i, line := range lines {
		if isGutenbergStartLine(line) {
			start = i
			break
		}
	}
	if start < 0 {
		return text
	}

	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		if isGutenbergEndLine(lines[i]) {
			end = i
			break
		}
	}
	return strings.Join(lines[start+1:end], "")
}
