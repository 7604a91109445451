package analysis

import (
	"fmt"
	"math"
	"strings"
)

// TextOptions controls DepthHTML and StepGridSVG.
type TextOptions struct {
	// MaxTokens caps the tokens shown: a longer trace shows its first two thirds
	// and last third of MaxTokens with an ellipsis between them, as the MoR
	// paper's routing figure shows the first 120 and last 60 tokens. 0 shows all.
	MaxTokens int
}

// visibleTokens returns the indices of the tokens to show and the index after
// which an ellipsis goes (-1 when every token is shown).
func (o TextOptions) visibleTokens(n int) (indices []int, gapAfter int) {
	if o.MaxTokens <= 0 || n <= o.MaxTokens {
		indices = make([]int, n)
		for i := range indices {
			indices[i] = i
		}
		return indices, -1
	}
	head := (2*o.MaxTokens + 2) / 3
	tail := o.MaxTokens - head
	for i := range head {
		indices = append(indices, i)
	}
	for i := n - tail; i < n; i++ {
		indices = append(indices, i)
	}
	return indices, head - 1
}

// DepthColor returns the background colour of a token of depth d out of N_r:
// light grey for depth 0, then light yellow through orange to dark red as depth grows.
func DepthColor(depth, numRecursions int) string {
	if depth <= 0 || numRecursions < 1 {
		return "#e0e0e0"
	}
	stops := [][3]float64{{255, 237, 160}, {253, 141, 60}, {189, 0, 38}}
	t := 1.0
	if numRecursions > 1 {
		t = float64(depth-1) / float64(numRecursions-1)
	}
	t = math.Min(math.Max(t, 0), 1)
	position := t * float64(len(stops)-1)
	lower := min(int(position), len(stops)-2)
	fraction := position - float64(lower)
	var rgb [3]int
	for channel := range rgb {
		rgb[channel] = int(math.Round(stops[lower][channel] + fraction*(stops[lower+1][channel]-stops[lower][channel])))
	}
	return fmt.Sprintf("#%02x%02x%02x", rgb[0], rgb[1], rgb[2])
}

// depthTextColor returns white on the darker half of the depth colours, black otherwise.
func depthTextColor(depth, numRecursions int) string {
	if numRecursions > 1 && depth > 0 && float64(depth-1)/float64(numRecursions-1) > 0.6 {
		return "#ffffff"
	}
	return "#000000"
}

// DepthHTML renders the text of a trace with each token's background coloured
// by its depth, a legend, and a tooltip per token with its depth, router scores
// and loss. Every piece of token text is HTML-escaped, so hostile text such as
// "<script>" shows as text and cannot break out of an attribute. Newlines are
// shown as "↵" followed by a line break.
func DepthHTML(tr Trace, options TextOptions) string {
	var b strings.Builder
	b.WriteString(`<div class="gomor-depth" style="font-family:monospace;font-size:13px;line-height:1.9;white-space:pre-wrap;word-break:break-all">`)
	writeDepthLegend(&b, tr)

	indices, gapAfter := options.visibleTokens(tr.Length())
	for _, i := range indices {
		token := tr.Tokens[i]
		fmt.Fprintf(&b, `<span style="background:%s;color:%s;border-radius:2px" title="%s">%s</span>`,
			DepthColor(token.Depth, tr.NumRecursions), depthTextColor(token.Depth, tr.NumRecursions),
			escapeXML(tokenTooltip(i, token)), visibleTokenText(token.Text))
		if i == gapAfter {
			fmt.Fprintf(&b, `<span style="color:#888"> … %d tokens … </span>`, tr.Length()-len(indices))
		}
	}
	b.WriteString(`</div>`)
	return b.String()
}

func writeDepthLegend(b *strings.Builder, tr Trace) {
	b.WriteString(`<div style="font-family:sans-serif;margin-bottom:4px">`)
	if tr.Name != "" {
		fmt.Fprintf(b, `<b>%s</b> · `, escapeXML(tr.Name))
	}
	fmt.Fprintf(b, `routing %s, %s · depth: `, escapeXML(tr.Routing), escapeXML(tr.Router))
	for d := 1; d <= tr.NumRecursions; d++ {
		fmt.Fprintf(b, `<span style="background:%s;color:%s;padding:0 6px;margin-right:2px">%d</span>`,
			DepthColor(d, tr.NumRecursions), depthTextColor(d, tr.NumRecursions), d)
	}
	b.WriteString(`</div>`)
}

// visibleTokenText escapes a token's text and marks newlines so line breaks show.
func visibleTokenText(text string) string {
	return strings.ReplaceAll(escapeXML(text), "\n", "↵\n")
}

func tokenTooltip(position int, token TokenTrace) string {
	scores := make([]string, len(token.Scores))
	for step, score := range token.Scores {
		scores[step] = "–"
		if !math.IsNaN(score) {
			scores[step] = fmt.Sprintf("%.3f", score)
		}
	}
	tooltip := fmt.Sprintf("position %d, id %d, %q\ndepth %d\nscores per step: %s",
		position, token.ID, strings.ToValidUTF8(token.Text, "\uFFFD"), token.Depth, strings.Join(scores, ", "))
	if !math.IsNaN(token.Loss) {
		tooltip += fmt.Sprintf("\nnext-token loss %.3f nats", token.Loss)
	}
	return tooltip
}

// StepGridSVG draws the token × recursion-step grid of a trace, with one column
// per token and one row per step. A dark cell means the step processed the
// token, a light cell that the token was a candidate the step did not select,
// and a blank cell that it was not a candidate. Token labels run under the grid.
func StepGridSVG(tr Trace, options TextOptions) string {
	const (
		cell        = 12.0
		left        = 56.0
		top         = 28.0
		labelHeight = 64.0
	)
	indices, gapAfter := options.visibleTokens(tr.Length())
	columns := len(indices)
	if gapAfter >= 0 {
		columns++ // one blank column for the ellipsis
	}
	width := math.Max(left+cell*float64(columns)+16, 480) // wide enough for the title
	height := top + cell*float64(tr.NumRecursions) + labelHeight

	c := &canvas{width: width, height: height}
	title := fmt.Sprintf("Tokens processed at each recursion step (%s routing)", tr.Routing)
	c.text(left, 18, title, "start", 13, "bold", 0)
	for step := range tr.NumRecursions {
		c.text(left-6, top+cell*float64(step)+cell-2, fmt.Sprintf("step %d", step+1), "end", 10, "normal", 0)
	}

	column := 0
	for _, i := range indices {
		x := left + cell*float64(column)
		writeGridColumn(c, tr.Tokens[i], i, x, top, cell)
		labelY := top + cell*float64(tr.NumRecursions) + 6
		c.text(x+cell/2, labelY, shortLabel(tr.Tokens[i].Text), "end", 9, "normal", -60)
		column++
		if i == gapAfter {
			c.text(left+cell*float64(column)+cell/2, top+cell*float64(tr.NumRecursions)/2+4, "…", "middle", 12, "normal", 0)
			column++
		}
	}
	return c.finish()
}

func writeGridColumn(c *canvas, token TokenTrace, position int, x, top, cell float64) {
	for step := range token.Selected {
		fill := "#ffffff"
		switch {
		case token.Selected[step]:
			fill = "#1f3b73"
		case token.IsCandidate(step):
			fill = "#c9d3e6"
		}
		score := "not a candidate"
		if token.IsCandidate(step) {
			score = fmt.Sprintf("score %.3f", token.Scores[step])
		}
		tooltip := fmt.Sprintf("position %d %q, step %d: %s", position, strings.ToValidUTF8(token.Text, "\uFFFD"), step+1, score)
		fmt.Fprintf(&c.body, `<rect x="%.1f" y="%.1f" width="%g" height="%g" fill="%s" stroke="#888" stroke-width="0.3"><title>%s</title></rect>`,
			x, top+cell*float64(step), cell, cell, fill, escapeXML(tooltip))
	}
}

// shortLabel makes a token's text fit under a grid column: white space shown
// as "·" and "↵", at most 10 runes.
func shortLabel(text string) string {
	label := strings.NewReplacer(" ", "·", "\n", "↵", "\t", "⇥").Replace(strings.ToValidUTF8(text, "\uFFFD"))
	runes := []rune(label)
	if len(runes) > 10 {
		return string(runes[:9]) + "…"
	}
	return label
}
