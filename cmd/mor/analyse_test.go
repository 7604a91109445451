package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParseAnalyseFlagsDefaults(t *testing.T) {
	f, err := parseAnalyseFlags([]string{"--run", "runs/x"})
	if err != nil {
		t.Fatalf("parseAnalyseFlags: %v", err)
	}
	if f.rows != 32 || f.routings != "top-k,causal" || f.maxTokens != 240 || f.out != "" {
		t.Errorf("defaults rows %d, routing %q, max-tokens %d, out %q; want 32, top-k,causal, 240, empty",
			f.rows, f.routings, f.maxTokens, f.out)
	}
}

func TestParseAnalyseFlagsErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string // a fragment of the error message
	}{
		{nil, "missing --run"},
		{[]string{"--run", "r", "--rows", "0"}, "nothing to trace"},
		{[]string{"--run", "r", "--rows", "-1"}, "invalid --rows"},
		{[]string{"--run", "r", "--routing", "greedy"}, `invalid --routing "greedy"`},
		{[]string{"--run", "r", "--max-tokens", "-5"}, "invalid --max-tokens"},
		{[]string{"--run", "r", "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		_, err := parseAnalyseFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestParseAnalyseFlagsHelp(t *testing.T) {
	_, err := parseAnalyseFlags([]string{"--help"})
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: error %v, want flag.ErrHelp", err)
	}
}

func TestFormatShares(t *testing.T) {
	if got := formatShares([]float64{0, 0.5, 0.25, 0.25}); got != "d1 0.50 / d2 0.25 / d3 0.25" {
		t.Errorf("formatShares = %q, want \"d1 0.50 / d2 0.25 / d3 0.25\"", got)
	}
}
