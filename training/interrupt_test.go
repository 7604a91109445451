package training

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestInterruptWritesCheckpoint(t *testing.T) {
	runDir := t.TempDir()
	options := tinyOptions(t, runDir, 6)
	options.CheckpointEvery = 0 // only the interrupt may write one before the end
	interrupt := make(chan struct{})
	close(interrupt)
	options.Interrupt = interrupt

	_, err := Train(options)
	var interrupted *InterruptedError
	if !errors.As(err, &interrupted) {
		t.Fatalf("Train with a closed Interrupt returned %v, want an *InterruptedError", err)
	}
	if interrupted.Step != 1 {
		t.Errorf("interrupted after step %d, want 1 (the step in progress when the interrupt arrived)", interrupted.Step)
	}

	checkpoint, err := LoadLatestCheckpoint(runDir)
	if err != nil {
		t.Fatalf("no checkpoint after the interrupt: %v", err)
	}
	if checkpoint.State.Step != 1 {
		t.Errorf("checkpoint holds step %d, want 1", checkpoint.State.Step)
	}
	if checkpoint.Dir != interrupted.Checkpoint {
		t.Errorf("error names checkpoint %s, newest is %s", interrupted.Checkpoint, checkpoint.Dir)
	}
	records, err := ReadMetrics(filepath.Join(runDir, "metrics.jsonl"))
	if err != nil || len(records) != 1 {
		t.Errorf("metrics.jsonl has %d records (err %v), want the 1 step that ran", len(records), err)
	}

	// Resuming without an interrupt finishes the run.
	resumed := tinyOptions(t, runDir, 6)
	resumed.Resume = true
	result, err := Train(resumed)
	if err != nil {
		t.Fatalf("resuming after the interrupt: %v", err)
	}
	if result.Steps != 6 {
		t.Errorf("resumed run ended at step %d, want 6", result.Steps)
	}
}
