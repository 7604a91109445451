package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomor/gomor/training"
)

func TestTrainFlagErrorsNameValue(t *testing.T) {
	cases := []struct {
		args []string
		want string // the error must contain it
	}{
		{[]string{"--seq-len", "1"}, "--seq-len 1"},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--accum", "0"}, "--accum 0"},
		{[]string{"--lr", "-1"}, "--lr -1"},
		{[]string{"--lr", "+Inf"}, "--lr +Inf"},
		{[]string{"--schedule", "linear"}, `"linear"`},
		{[]string{"--budget", "300"}, `"300"`},
		{[]string{"--budget", "abcsteps"}, `"abcsteps"`},
		{[]string{"--warmup", "2"}, "--warmup 2"},
		{[]string{"extra"}, `"extra"`},
	}
	for _, c := range cases {
		_, err := parseTrainFlags(c.args)
		if err == nil {
			t.Errorf("parseTrainFlags(%q) returned no error", c.args)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseTrainFlags(%q) error %q does not contain %q", c.args, err, c.want)
		}
	}
}

func TestTrainMissingDataNamesPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-corpus")
	tokenizer := filepath.Join(t.TempDir(), "no-such-tokenizer.json")
	err := runTrain([]string{"--data", missing, "--tokenizer", tokenizer, "--run-dir", t.TempDir(), "--no-progress"})
	if err == nil || !strings.Contains(err.Error(), tokenizer) || !strings.Contains(err.Error(), "--tokenizer") {
		t.Errorf("missing tokenizer: got %v, want an error naming %s and --tokenizer", err, tokenizer)
	}

	data := dataRootOrSkip(t)
	err = runTrain([]string{"--data", missing, "--tokenizer", filepath.Join(data, "tokenizers", "gpt2"), "--run-dir", t.TempDir(), "--no-progress"})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "--data") {
		t.Errorf("missing corpus: got %v, want an error naming %s and --data", err, missing)
	}
}

func TestResumeNeedsRunDir(t *testing.T) {
	err := runTrain([]string{"--resume"})
	if err == nil || !strings.Contains(err.Error(), "--run-dir") {
		t.Errorf("--resume without --run-dir: got %v, want an error naming --run-dir", err)
	}
}

func TestEvalFlagErrors(t *testing.T) {
	if _, err := parseEvalFlags(nil); err == nil || !strings.Contains(err.Error(), "--run") {
		t.Errorf("eval without --run: got %v, want an error naming --run", err)
	}
	missing := filepath.Join(t.TempDir(), "no-run")
	if err := runEval([]string{"--run", missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("eval of a missing run: got %v, want an error naming %s", err, missing)
	}
	f := evalFlags{depths: "1,x"}
	if _, err := f.plan(training.EvalPlan{}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("--depths 1,x: got %v, want an error naming \"x\"", err)
	}
}

func TestAblateFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--flops", "1e12"}, "--suite"},
		{[]string{"--suite", "nope", "--flops", "1e12"}, `"nope"`},
		{[]string{"--suite", "paper-tiny"}, "--flops 0"},
		{[]string{"--suite", "paper-tiny", "--flops", "-3"}, "--flops -3"},
		{[]string{"--suite", "paper-tiny", "--flops", "1e12", "--budget", "5steps"}, "--budget"},
	}
	for _, c := range cases {
		_, err := parseAblateFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseAblateFlags(%q) = %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

// dataRootOrSkip returns $GOMOR_DATA or ../shared/data beside the checkout, or skips the test.
func dataRootOrSkip(t *testing.T) string {
	t.Helper()
	data := training.DataRoot()
	if data == "" {
		t.Skip("shared data not found: set GOMOR_DATA to the folder holding text/ and tokenizers/ (CI places it at ../shared/data)")
	}
	return data
}

// TestTrainEvalEndToEnd trains a shrunk MoR for a few steps on real text, resumes it by one more
// step, and evaluates it, on the pure-Go backend (no compilation wait).
func TestTrainEvalEndToEnd(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	corpus, tokenizer := realText()
	runDir := filepath.Join(t.TempDir(), "run")
	config := filepath.Join(t.TempDir(), "small.json")
	small := `{"d_model": 64, "num_heads": 1, "num_kv_heads": 1, "head_dim": 64, "ffn_size": 128}`
	if err := os.WriteFile(config, []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", config, "--data", corpus, "--tokenizer", tokenizer, "--seq-len", "32", "--batch", "2",
		"--budget", "4steps", "--checkpoint-every", "2", "--run-dir", runDir, "--no-progress", "--eval-rows", "4", "--eval-batch", "4"}
	if err := runTrain(common); err != nil {
		t.Fatal(err)
	}

	records, err := training.ReadMetrics(filepath.Join(runDir, "metrics.jsonl"))
	if err != nil || len(records) != 4 {
		t.Fatalf("metrics.jsonl: %d records, err %v; want 4", len(records), err)
	}
	if records[0].AuxLosses["bce"] <= 0 || len(records[0].Metrics["selected_fraction"]) != 3 {
		t.Errorf("step 1 lacks the expert-choice BCE or per-step selected fractions: %+v", records[0])
	}
	var report training.EvalReport
	evalPath := filepath.Join(runDir, "checkpoints", "step-00000004", training.EvalFile)
	if err := training.ReadJSON(evalPath, &report); err != nil {
		t.Fatalf("eval.json after mor train: %v", err)
	}
	if report.Provenance.Backend != "go" || len(report.Provenance.Command) == 0 || report.Provenance.GitCommit == "" {
		t.Errorf("eval.json provenance incomplete: %+v", report.Provenance)
	}
	if len(report.NLL) == 0 || report.NLL[0].NLL <= 0 || report.NLL[0].Error != "" {
		t.Errorf("eval.json has no valid top-k NLL: %+v", report.NLL)
	}

	if err := runEval([]string{"--run", runDir, "--rows", "2", "--routing", "top-k", "--depths", "1"}); err != nil {
		t.Fatalf("mor eval: %v", err)
	}
	if err := training.ReadJSON(evalPath, &report); err != nil || len(report.NLL) != 2 || report.NLL[1].MaxDepth != 1 {
		t.Errorf("eval.json after mor eval --depths 1: %+v (err %v), want the top-k NLL and depth cap 1", report.NLL, err)
	}
}

// realText returns the shipped corpus (Project Gutenberg books compiled into the binary) and its
// tokenizer, so the end-to-end test needs no external data.
func realText() (corpus, tokenizer string) {
	return training.ShippedCorpusName, ""
}

func TestUnknownTaskRejectedBeforeRunning(t *testing.T) {
	if _, err := parseTrainFlags([]string{"--tasks", "piqa,nosuch"}); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("mor train --tasks piqa,nosuch: got %v, want an error naming \"nosuch\"", err)
	}
	if _, err := parseEvalFlags([]string{"--run", "x", "--tasks", "blimp,hellaswg"}); err == nil || !strings.Contains(err.Error(), `"hellaswg"`) {
		t.Errorf("mor eval --tasks blimp,hellaswg: got %v, want an error naming \"hellaswg\"", err)
	}
	if _, err := parseEvalFlags([]string{"--run", "x", "--tasks", "blimp,piqa"}); err != nil {
		t.Errorf("mor eval --tasks blimp,piqa: %v", err)
	}
}

func TestTaskErrorsGiveNonZeroExit(t *testing.T) {
	report := &training.EvalReport{TaskErrors: map[string]string{"piqa": "open eval/piqa.jsonl: no such file or directory"}}
	err := printTasks(report)
	if err == nil || !strings.Contains(err.Error(), "piqa") {
		t.Errorf("printTasks with a failed task: got %v, want an error naming piqa", err)
	}
	if err := printTasks(&training.EvalReport{}); err != nil {
		t.Errorf("printTasks without failures: %v", err)
	}
}

func TestTrainTextFieldSelectsJSONLField(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.jsonl")
	var lines strings.Builder
	for range 100 {
		lines.WriteString(`{"body": "` + strings.Repeat("The fox ran into the woods and back again. ", 20) + `"}` + "\n")
	}
	if err := os.WriteFile(corpus, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "small.json")
	if err := os.WriteFile(config, []byte(`{"d_model": 64, "num_heads": 1, "num_kv_heads": 1, "head_dim": 64, "ffn_size": 128}`), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", config, "--data", corpus, "--seq-len", "32", "--batch", "2", "--budget", "1steps", "--no-progress", "--no-eval"}

	err := runTrain(append(common, "--run-dir", filepath.Join(dir, "without")))
	if err == nil || !strings.Contains(err.Error(), "--text-field") {
		t.Errorf("JSONL without a text field: got %v, want an error pointing to --text-field", err)
	}
	if err := runTrain(append(common, "--run-dir", filepath.Join(dir, "with"), "--text-field", "body")); err != nil {
		t.Errorf("--text-field body: %v", err)
	}
}
