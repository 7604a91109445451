package training

import (
	"fmt"
	"sort"
	"strings"
)

// AblationVariant is one model of an ablation suite.
type AblationVariant struct {
	Label  string `json:"label"`
	Preset string `json:"preset"`
}

// ablationSuites are the named suites of `mor ablate`.
var ablationSuites = map[string][]AblationVariant{
	// paper-tiny mirrors the rows of the MoR paper's Table 3 (360M, 16.5e18 FLOPs) with the tiny
	// presets: 256-wide, 8 unrolled layers, Middle-Cycle 1 + [block × N_r] + 1 for recursive and
	// MoR models, expert-choice with capacities (N_r − r + 1)/N_r.
	"paper-tiny": {
		{Label: "Vanilla", Preset: "vanilla-tiny"},
		{Label: "Recursive N_r=2", Preset: "recursive-tiny-r2"},
		{Label: "Recursive N_r=3", Preset: "recursive-tiny-r3"},
		{Label: "MoR expert N_r=2", Preset: "mor-ec-tiny-r2"},
		{Label: "MoR expert N_r=3", Preset: "mor-ec-tiny-r3"},
		{Label: "MoR token N_r=3", Preset: "mor-tc-tiny-r3"},
		{Label: "MoR expert N_r=3 + KV sharing", Preset: "mor-ec-tiny-r3-kvshare"},
	},
}

// AblationSuiteNames returns the suite names, sorted.
func AblationSuiteNames() []string {
	names := make([]string, 0, len(ablationSuites))
	for name := range ablationSuites {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// AblationSuite returns the variants of a named suite.
func AblationSuite(name string) ([]AblationVariant, error) {
	variants, found := ablationSuites[name]
	if !found {
		return nil, fmt.Errorf("unknown ablation suite %q: use one of %s", name, strings.Join(AblationSuiteNames(), ", "))
	}
	return append([]AblationVariant(nil), variants...), nil
}

// AblationRow is one line of the comparison table.
type AblationRow struct {
	Label          string   `json:"label"`
	Preset         string   `json:"preset"`
	RunDir         string   `json:"run_dir"`
	NonEmbedParams int64    `json:"non_embedding_params"`
	FLOPsPerToken  float64  `json:"forward_flops_per_token"`
	Steps          int      `json:"steps"`
	Tokens         int64    `json:"tokens"`
	NLLTopK        *float64 `json:"nll_top_k,omitempty"`
	NLLCausal      *float64 `json:"nll_causal,omitempty"`
	DeadTokenRatio *float64 `json:"dead_token_ratio,omitempty"`
	WallSeconds    float64  `json:"wall_seconds"`
	Error          string   `json:"error,omitempty"`
}

// AblationReport is the JSON form of the comparison table.
type AblationReport struct {
	Suite          string        `json:"suite"`
	FLOPsBudget    float64       `json:"forward_flops_budget"`
	Data           string        `json:"data"`
	SeqLen         int           `json:"seq_len"`
	TokensPerStep  int           `json:"tokens_per_step"`
	ValidationRows int           `json:"validation_rows"`
	Rows           []AblationRow `json:"rows"`
	Provenance     Provenance    `json:"provenance"`
}

// RowFromEval fills the NLL columns of a row from an evaluation.
func (r *AblationRow) RowFromEval(report *EvalReport) {
	for _, result := range report.NLL {
		if result.MaxDepth != 0 || result.Error != "" {
			continue
		}
		nll := result.NLL
		switch result.Routing {
		case SequenceTopK:
			r.NLLTopK = &nll
			r.DeadTokenRatio = result.DeadTokenRatio
		case CausalRouting:
			r.NLLCausal = &nll
		}
	}
}

// Markdown renders the report as a table with a header that names the budget, data and backend.
func (a AblationReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Ablation %s at %.3g forward FLOPs\n\n", a.Suite, a.FLOPsBudget)
	fmt.Fprintf(&b, "Data %s, %d tokens per step (sequence length %d), validation NLL over %d rows "+
		"(mean of per-row mean NLL, nats). Backend %s, commit %s, %.0f s wall time in total.\n\n",
		a.Data, a.TokensPerStep, a.SeqLen, a.ValidationRows, a.Provenance.Backend, a.Provenance.GitCommit, a.Provenance.WallSeconds)
	b.WriteString("| Model | Preset | Non-emb params | FLOPs/token | Steps | Tokens | NLL top-k | NLL causal | Dead tokens | Wall s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range a.Rows {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %s | %s | %s | %.3g | | | failed: %s | | | %.0f |\n", r.Label, r.Preset, formatCount(r.NonEmbedParams), r.FLOPsPerToken, strings.ReplaceAll(r.Error, "|", "/"), r.WallSeconds)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.3g | %d | %s | %s | %s | %s | %.0f |\n",
			r.Label, r.Preset, formatCount(r.NonEmbedParams), r.FLOPsPerToken, r.Steps, formatCount(r.Tokens),
			formatOptional(r.NLLTopK, "%.4f"), formatOptional(r.NLLCausal, "%.4f"), formatOptional(r.DeadTokenRatio, "%.3f"), r.WallSeconds)
	}
	fmt.Fprintf(&b, "\nCommand: `%s`\n", strings.Join(a.Provenance.Command, " "))
	return b.String()
}

func formatOptional(value *float64, format string) string {
	if value == nil {
		return "–"
	}
	return fmt.Sprintf(format, *value)
}

// formatCount writes 3147776 as 3.15M.
func formatCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
