package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runDescribeForTest(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := describe(args, &stdout, &stderr)
	return stdout.String(), err
}

// TestDescribeJSONPaperModel checks the --json fields for the paper's main
// MoR model: 118.0M non-embedding parameters, 49152 × 960 embedding
// parameters and 555.6M forward FLOPs per token at N_ctx = 2048.
func TestDescribeJSONPaperModel(t *testing.T) {
	out, err := runDescribeForTest(t, "--preset", "mor-ec-360m-r3", "--json")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}

	nonEmbedding, _ := fields["non_embedding_params"].(float64)
	if nonEmbedding != 12*9_832_320 {
		t.Errorf("non_embedding_params = %v, want %d", fields["non_embedding_params"], 12*9_832_320)
	}
	if embedding, _ := fields["embedding_params"].(float64); embedding != 49152*960 {
		t.Errorf("embedding_params = %v, want %d", fields["embedding_params"], 49152*960)
	}
	flops, _ := fields["forward_flops_per_token"].(float64)
	if flops < 555.55e6 || flops > 555.65e6 {
		t.Errorf("forward_flops_per_token = %v, want 555.6M", fields["forward_flops_per_token"])
	}
	if layerMap, _ := fields["layer_map"].([]any); len(layerMap) != 32 {
		t.Errorf("layer_map has %d entries, want 32", len(layerMap))
	}
}

func TestDescribeTextShowsLayout(t *testing.T) {
	out, err := runDescribeForTest(t, "--preset", "recursive-360m-r3")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	for _, want := range []string{"Prefix [0] → Block [1..10] × 3 → Suffix [11]", "(1+10+1)", "118.0M", "833.6M"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDescribeBudget(t *testing.T) {
	out, err := runDescribeForTest(t, "--preset", "vanilla-360m", "--budget", "16.5e18", "--tokens-per-step", "2097152", "--json")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	var fields struct {
		Budget struct {
			Tokens int64 `json:"tokens"`
			Steps  int64 `json:"steps"`
		} `json:"budget"`
	}
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatal(err)
	}
	if fields.Budget.Steps != 9438 {
		t.Errorf("budget steps = %d, want the released 9438", fields.Budget.Steps)
	}
	if tokens := float64(fields.Budget.Tokens) / 1e9; tokens < 19.785 || tokens >= 19.795 {
		t.Errorf("budget tokens = %.3fB, want 19.79B", tokens)
	}
}

func TestDescribeConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(path, []byte(`{"base": "recursive-tiny-r3", "name": "file-model"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runDescribeForTest(t, "--config", path)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if !strings.HasPrefix(out, "file-model:") {
		t.Errorf("output does not start with the config's name:\n%s", out)
	}
}

func TestDescribeList(t *testing.T) {
	out, err := runDescribeForTest(t, "--list")
	if err != nil {
		t.Fatalf("describe --list: %v", err)
	}
	if !strings.Contains(out, "mor-ec-360m-r3\n") || !strings.Contains(out, "vanilla-tiny\n") {
		t.Errorf("--list output lacks preset names:\n%s", out)
	}
}

func TestDescribeRejects(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"no model":       {nil, "--preset"},
		"two models":     {[]string{"--preset", "vanilla-tiny", "--config", "x.json"}, "exactly one"},
		"unknown preset": {[]string{"--preset", "vanilla-2b"}, "vanilla-2b"},
		"invalid config": {[]string{"--config", writeInvalidConfig(t)}, "num_heads"},
		"stray argument": {[]string{"--preset", "vanilla-tiny", "extra"}, "extra"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := runDescribeForTest(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("describe %v: error %v, want one mentioning %q", tc.args, err, tc.want)
			}
		})
	}
}

func writeInvalidConfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "invalid.json")
	if err := os.WriteFile(path, []byte(`{"base": "vanilla-tiny", "num_heads": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDescribeVariableTree(t *testing.T) {
	out, err := runDescribeForTest(t, "--preset", "mor-ec-tiny-r3", "--variables")
	if err != nil {
		t.Fatalf("describe --variables: %v", err)
	}
	// 4 unique layers × 786,944, the final norm, the 4096 × 256 table and 3 routers.
	for _, want := range []string{"/layer_03/self_attn/q_proj/weights", "/router/step_3/weights", "4197376 trainable"} {
		if !strings.Contains(out, want) {
			t.Errorf("--variables output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "/layer_04/") {
		t.Errorf("--variables output has a fifth unique layer:\n%s", out)
	}
}
