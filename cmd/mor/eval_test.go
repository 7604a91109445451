package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gomor/gomor/training"
)

func TestEvalOutKeepsTrainingReport(t *testing.T) {
	runDir := trainTinyRun(t, "vanilla-tiny")
	run, err := training.LoadRun(runDir)
	if err != nil {
		t.Fatal(err)
	}
	trainingReport := filepath.Join(run.Checkpoint.Dir, training.EvalFile)
	before, err := os.ReadFile(trainingReport)
	if err != nil {
		t.Fatalf("mor train wrote no eval.json: %v", err)
	}

	out := filepath.Join(t.TempDir(), "eval-rows2.json")
	if err := runEval([]string{"--run", runDir, "--rows", "2", "--batch", "2", "--out", out}); err != nil {
		t.Fatal(err)
	}

	var report training.EvalReport
	if err := training.ReadJSON(out, &report); err != nil {
		t.Fatalf("--out file: %v", err)
	}
	if report.ValidationRows != 2 {
		t.Errorf("--out report has %d validation rows, want 2", report.ValidationRows)
	}
	after, err := os.ReadFile(trainingReport)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Error("mor eval --out changed the eval.json that mor train wrote")
	}
}
