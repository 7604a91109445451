package analysis

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

var hostileTexts = []string{
	"<script>alert('x')</script>",
	`" onmouseover="alert(1)`,
	"' onload='x",
	"Tom & Jerry &amp; &lt;",
	"]]><!--",
	"\xe2\x80", // a partial UTF-8 sequence, as byte-level BPE pieces can be
	"\nnext line",
}

func hostileTrace() Trace {
	tr := traceFromDepths(`<b>"name"</b>`, 3, []int{1, 2, 3, 1, 2, 3, 1})
	for i, text := range hostileTexts {
		tr.Tokens[i].Text = text
	}
	tr.Tokens[0].Loss = 2.5
	return tr
}

// xmlElement is a parsed element: its name, attributes and direct character data.
type xmlElement struct {
	Name  string
	Attrs map[string]string
	Text  string
}

// parseXML parses a document with encoding/xml in strict mode and returns its
// elements in document order, failing the test on malformed XML.
func parseXML(t *testing.T, document string) []*xmlElement {
	t.Helper()
	decoder := xml.NewDecoder(strings.NewReader(document))
	decoder.Strict = true
	var elements, open []*xmlElement
	for {
		token, err := decoder.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("malformed XML: %v\ndocument starts: %.300s", err, document)
		}
		switch token := token.(type) {
		case xml.StartElement:
			element := &xmlElement{Name: token.Name.Local, Attrs: map[string]string{}}
			for _, attr := range token.Attr {
				element.Attrs[attr.Name.Local] = attr.Value
			}
			elements = append(elements, element)
			open = append(open, element)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				open[len(open)-1].Text += string(token)
			}
		}
	}
	if len(open) != 0 {
		t.Fatalf("%d elements left open", len(open))
	}
	return elements
}

func TestDepthHTMLEscapesHostileText(t *testing.T) {
	tr := hostileTrace()
	document := DepthHTML(tr, TextOptions{})
	if strings.Contains(document, "<script") {
		t.Errorf("the HTML contains a raw <script tag")
	}
	if strings.Contains(document, `" onmouseover=`) || strings.Contains(document, `' onload=`) {
		t.Errorf("a quote in token text closed an attribute")
	}

	elements := parseXML(t, document)
	var tokenSpans []*xmlElement
	for _, element := range elements {
		if element.Name == "script" {
			t.Errorf("parsed a <script> element")
		}
		for name := range element.Attrs {
			if strings.HasPrefix(name, "on") {
				t.Errorf("element <%s> has an event attribute %q", element.Name, name)
			}
		}
		if element.Name == "span" && element.Attrs["title"] != "" {
			tokenSpans = append(tokenSpans, element)
		}
	}
	if len(tokenSpans) != len(tr.Tokens) {
		t.Fatalf("%d token spans, want %d", len(tokenSpans), len(tr.Tokens))
	}
	for i, span := range tokenSpans {
		want := strings.ReplaceAll(strings.ToValidUTF8(tr.Tokens[i].Text, "\uFFFD"), "\n", "↵\n")
		if span.Text != want {
			t.Errorf("token %d shows %q, want the original text %q", i, span.Text, want)
		}
	}
	if !strings.Contains(tokenSpans[0].Attrs["title"], "alert('x')") {
		t.Errorf("token 0 tooltip %q does not quote the token text", tokenSpans[0].Attrs["title"])
	}
	if !strings.Contains(tokenSpans[0].Attrs["title"], "next-token loss 2.500") {
		t.Errorf("token 0 tooltip %q lacks its loss", tokenSpans[0].Attrs["title"])
	}
}

func TestDepthHTMLColoursByDepth(t *testing.T) {
	tr := traceFromDepths("colours", 3, []int{1, 3})
	document := DepthHTML(tr, TextOptions{})
	for _, depth := range []int{1, 3} {
		if !strings.Contains(document, "background:"+DepthColor(depth, 3)) {
			t.Errorf("no token has the depth-%d colour %s", depth, DepthColor(depth, 3))
		}
	}
	if DepthColor(1, 3) == DepthColor(2, 3) || DepthColor(2, 3) == DepthColor(3, 3) {
		t.Errorf("depth colours %s %s %s are not distinct", DepthColor(1, 3), DepthColor(2, 3), DepthColor(3, 3))
	}
}

func TestDepthHTMLMaxTokensElides(t *testing.T) {
	tr := traceFromDepths("long", 2, make([]int, 20))
	for i := range tr.Tokens {
		tr.Tokens[i].Depth, tr.Tokens[i].Selected = 1, []bool{true, false}
	}
	document := DepthHTML(tr, TextOptions{MaxTokens: 9})
	if got := strings.Count(document, `title="position`); got != 9 {
		t.Errorf("%d token spans with MaxTokens 9, want 9", got)
	}
	if !strings.Contains(document, "… 11 tokens …") {
		t.Errorf("no ellipsis naming the 11 hidden tokens")
	}
	indices, gapAfter := TextOptions{MaxTokens: 9}.visibleTokens(20)
	assertInts(t, "visible positions", indices, []int{0, 1, 2, 3, 4, 5, 17, 18, 19})
	if gapAfter != 5 {
		t.Errorf("ellipsis after position %d, want 5", gapAfter)
	}
}

func TestStepGridSVGWellFormed(t *testing.T) {
	tr := hostileTrace()
	elements := parseXML(t, StepGridSVG(tr, TextOptions{}))
	if elements[0].Name != "svg" {
		t.Fatalf("root element <%s>, want <svg>", elements[0].Name)
	}
	selected, candidates := 0, 0
	for _, element := range elements {
		if element.Name == "script" {
			t.Errorf("parsed a <script> element")
		}
		if element.Name == "rect" && element.Attrs["fill"] == "#1f3b73" {
			selected++
		}
		if element.Name == "rect" && element.Attrs["fill"] == "#c9d3e6" {
			candidates++
		}
	}
	// Depths 1 2 3 1 2 3 1 select 13 cells; the 4 tokens below depth 3 are unselected candidates at the next step.
	if selected != 13 {
		t.Errorf("%d dark cells, want 13 (the sum of the depths)", selected)
	}
	if candidates != 5 {
		t.Errorf("%d light cells, want 5 (tokens of depth < N_r)", candidates)
	}
}

func TestFiguresAreWellFormedSVG(t *testing.T) {
	traces := []Trace{hostileTrace(), scoredTrace()}
	histograms, err := ScoreDistributions(traces, 10, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	points := []LoadBalance{{Step: 0, MaxVio: 1.2, Entropy: 0.5}, {Step: 100, MaxVio: 0.3, Entropy: 1.05}}
	maxVio, entropy := LoadBalanceSVGs(points, 3)
	figures := map[string]string{
		"depth histogram":  DepthHistogramSVG(DepthHistogramOf(traces), `<b>"title"</b> & more`),
		"depth by class":   DepthByClassSVG(DepthByClass(traces, NewFrequencyTable([]int{0, 0, 1}, 0.5))),
		"depth vs loss":    DepthLossSVG(DepthVsLoss(traces)),
		"selection counts": SelectionCountsSVG(SelectionCountsOf(traces)),
		"MaxVio":           maxVio,
		"entropy":          entropy,
		"empty line chart": LineChartSVG(Chart{}, nil),
		"hostile names": BarChartSVG(Chart{XLabel: "<x>"}, []string{"<script>", "a&b"},
			[]BarSeries{{Name: `"s1"`, Values: []float64{1, nan}}, {Name: "'s2'", Values: []float64{-1, 2}}}),
	}
	for i, figure := range ScoreDistributionSVGs(histograms) {
		figures["scores "+string(rune('1'+i))] = figure
	}
	for name, figure := range figures {
		t.Run(name, func(t *testing.T) {
			elements := parseXML(t, figure)
			if elements[0].Name != "svg" {
				t.Errorf("root element <%s>, want <svg>", elements[0].Name)
			}
			for _, element := range elements {
				if element.Name == "script" {
					t.Errorf("parsed a <script> element")
				}
			}
		})
	}
}

func TestBarChartDrawsOneBarPerValue(t *testing.T) {
	svg := BarChartSVG(Chart{}, []string{"a", "b", "c"}, []BarSeries{{Name: "x", Values: []float64{1, 2, nan}}, {Name: "y", Values: []float64{3, 0, 1}}})
	bars := 0
	for _, element := range parseXML(t, svg) {
		if element.Name == "rect" && element.Attrs["fill-opacity"] != "" {
			bars++
		}
	}
	if bars != 5 {
		t.Errorf("%d bars, want 5 (six values, one NaN)", bars)
	}
}

func TestNiceTicks(t *testing.T) {
	ticks := niceTicks(0, 1, 5)
	want := []float64{0, 0.2, 0.4, 0.6, 0.8, 1}
	if len(ticks) != len(want) {
		t.Fatalf("ticks over [0, 1] = %v, want %v", ticks, want)
	}
	for i := range want {
		assertClose(t, "tick", ticks[i], want[i], 1e-12)
	}
	ticks = niceTicks(2.6, 3.4, 4)
	var labels []string
	for _, tick := range ticks {
		labels = append(labels, formatNumber(tick))
	}
	if strings.Join(labels, " ") != "2.6 2.8 3 3.2 3.4" {
		t.Errorf("tick labels over [2.6, 3.4] = %v, want 2.6 2.8 3 3.2 3.4", labels)
	}
}
