// Package analysis inspects how a Mixture-of-Recursions model routes tokens:
// routing traces of texts, depth statistics by token class, router score
// distributions and sampling accuracy, load-balance metrics of token-choice
// routing, ablation tables against the MoR paper's numbers (PaperSource), and renderers that
// write the figures as self-contained HTML and SVG for notebooks and files.
//
// Everything except trace extraction works on plain Go values, so traces can be
// built by hand in tests or loaded from JSON without a model.
package analysis

import (
	"encoding/json"
	"fmt"
	"math"
)

// Routing modes, with the same values as mor.RoutingMode.
const (
	// RoutingTopK is sequence-level top-k selection, as in training, which uses future tokens.
	RoutingTopK = "top-k"
	// RoutingCausal continues a token while its router score reaches a threshold.
	RoutingCausal = "causal"
)

// Router kinds, with the same values as routers.Kind.
const (
	RouterExpertChoice = "expert-choice"
	RouterTokenChoice  = "token-choice"
)

// Trace is the routing record of one text: its tokens and, per token, the depth
// it received and what each recursion step's router did with it.
type Trace struct {
	// Name identifies the text, for example a file name or "row 3".
	Name string `json:"name,omitempty"`

	// Routing is the routing mode the model ran in: RoutingTopK or RoutingCausal.
	Routing string `json:"routing"`

	// Router is the router kind: RouterExpertChoice or RouterTokenChoice.
	Router string `json:"router"`

	// NumRecursions is N_r, the number of recursion steps each token could get.
	NumRecursions int `json:"num_recursions"`

	// ScoreThreshold is the router score at which a candidate counts as
	// selected for the sampling accuracy: 0.5 for sigmoid scores, 0 for tanh.
	ScoreThreshold float64 `json:"score_threshold"`

	Tokens []TokenTrace `json:"tokens"`
}

// TokenTrace is the routing record of one token. Position t's depth is the
// compute spent to predict token t+1, and Loss is that prediction's loss.
type TokenTrace struct {
	ID   int    `json:"id"`
	Text string `json:"text"` // the decoded text of this one token; may be invalid UTF-8 for byte-level pieces

	// Depth is the number of recursion steps the token received, 0..N_r.
	Depth int `json:"depth"`

	// Scores holds the router score at each recursion step, NaN where the token
	// was not a candidate at that step. Length N_r. For expert-choice it is the
	// step router's score function of its logit (sigmoid(z) or tanh(z)) before
	// α. For token-choice it is the router's probability of depth r at step r.
	Scores []float64 `json:"-"`

	// Selected is true at the steps that processed the token. Length N_r.
	Selected []bool `json:"selected"`

	// Loss is the next-token cross-entropy in nats at this position, NaN where unknown (the last token).
	Loss float64 `json:"-"`
}

// tokenTraceJSON is the JSON form of TokenTrace: NaN, which JSON cannot hold, becomes null.
type tokenTraceJSON struct {
	ID       int        `json:"id"`
	Text     string     `json:"text"`
	Depth    int        `json:"depth"`
	Scores   []*float64 `json:"scores"`
	Selected []bool     `json:"selected"`
	Loss     *float64   `json:"loss"`
}

// MarshalJSON writes NaN scores and losses as null.
func (t TokenTrace) MarshalJSON() ([]byte, error) {
	out := tokenTraceJSON{ID: t.ID, Text: t.Text, Depth: t.Depth, Selected: t.Selected, Loss: optional(t.Loss)}
	out.Scores = make([]*float64, len(t.Scores))
	for i, score := range t.Scores {
		out.Scores[i] = optional(score)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads null scores and losses back as NaN.
func (t *TokenTrace) UnmarshalJSON(data []byte) error {
	var in tokenTraceJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*t = TokenTrace{ID: in.ID, Text: in.Text, Depth: in.Depth, Selected: in.Selected, Loss: fromOptional(in.Loss)}
	t.Scores = make([]float64, len(in.Scores))
	for i, score := range in.Scores {
		t.Scores[i] = fromOptional(score)
	}
	return nil
}

func optional(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func fromOptional(x *float64) float64 {
	if x == nil {
		return math.NaN()
	}
	return *x
}

// IsCandidate reports whether the token was scored at recursion step (0-based).
func (t TokenTrace) IsCandidate(step int) bool {
	return step < len(t.Scores) && !math.IsNaN(t.Scores[step])
}

// Validate checks that every token has N_r scores and selection flags, and
// that its depth equals its number of selected steps, which must be a prefix
// of the steps (a token that skips step r skips every later step too).
func (tr Trace) Validate() error {
	if tr.NumRecursions < 1 {
		return fmt.Errorf("trace %q: num_recursions is %d; it must be at least 1", tr.Name, tr.NumRecursions)
	}
	for pos, token := range tr.Tokens {
		if err := token.validate(tr.NumRecursions); err != nil {
			return fmt.Errorf("trace %q, position %d (token %q): %w", tr.Name, pos, token.Text, err)
		}
	}
	return nil
}

func (t TokenTrace) validate(numRecursions int) error {
	if len(t.Scores) != numRecursions || len(t.Selected) != numRecursions {
		return fmt.Errorf("has %d scores and %d selection flags; want N_r = %d of each",
			len(t.Scores), len(t.Selected), numRecursions)
	}
	if t.Depth < 0 || t.Depth > numRecursions {
		return fmt.Errorf("depth %d is outside 0..N_r = 0..%d", t.Depth, numRecursions)
	}
	for step, selected := range t.Selected {
		if selected != (step < t.Depth) {
			return fmt.Errorf("selection flags %v do not match depth %d: a token of depth d is selected at exactly steps 1..d",
				t.Selected, t.Depth)
		}
	}
	return nil
}

// Length returns the number of tokens.
func (tr Trace) Length() int { return len(tr.Tokens) }

// Depths returns the depth of each token, in order.
func (tr Trace) Depths() []int {
	depths := make([]int, len(tr.Tokens))
	for i, token := range tr.Tokens {
		depths[i] = token.Depth
	}
	return depths
}

// maxRecursions returns the largest N_r among traces.
func maxRecursions(traces []Trace) int {
	n := 0
	for _, tr := range traces {
		n = max(n, tr.NumRecursions)
	}
	return n
}
