package training

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/gomor/gomor/internal/testutil"
)

const tinyVocab = 32

// syntheticRows returns rows of a learnable stream: mostly counting upward modulo the vocabulary,
// with random tokens mixed in.
func syntheticRows(numRows, seqLen int) [][]int32 {
	rng := rand.New(rand.NewPCG(7, 7))
	stream := make([]int32, numRows*seqLen)
	for i := range stream {
		if rng.IntN(4) == 0 {
			stream[i] = int32(rng.IntN(tinyVocab))
		} else if i > 0 {
			stream[i] = (stream[i-1] + 1) % tinyVocab
		}
	}
	return PackRows(stream, seqLen)
}

func tinyOptions(t *testing.T, runDir string, steps int) Options {
	t.Helper()
	data, err := NewRowBatches(syntheticRows(64, 16), 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	options := DefaultOptions()
	options.Model = tinyModel{vocab: tinyVocab, dim: 16}
	options.Data = data
	options.Backend = testutil.Backend(t, "go")
	options.RunDir = runDir
	options.BatchSize, options.SeqLen = 4, 16
	options.Budget = Budget{Unit: BudgetSteps, Value: float64(steps)}
	options.WarmupFraction = 0.25
	options.CheckpointEvery = 2
	return options
}

func TestTrainLossFalls(t *testing.T) {
	options := tinyOptions(t, t.TempDir(), 30)
	options.PeakLR = 1e-2
	result, err := Train(options)
	if err != nil {
		t.Fatal(err)
	}
	records, err := ReadMetrics(filepath.Join(options.RunDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 30 {
		t.Fatalf("metrics.jsonl has %d records, want 30", len(records))
	}
	uniform := math.Log(tinyVocab)
	if first := records[0].LMLoss; math.Abs(first-uniform) > 0.1 {
		t.Errorf("first LM loss %.4f, want about ln(%d) = %.4f at initialisation", first, tinyVocab, uniform)
	}
	if last := result.LastLMLoss; last > records[0].LMLoss-0.3 {
		t.Errorf("LM loss went from %.4f to %.4f in 30 steps, want a drop of at least 0.3", records[0].LMLoss, last)
	}
	if records[0].AuxLosses["z"] <= 0 || records[0].Metrics["selected_fraction"] == nil {
		t.Errorf("first record lacks the model's auxiliary loss or metrics: %+v", records[0])
	}
	if records[0].AuxRouterGradNorm <= 0 {
		t.Errorf("auxiliary-router gradient norm %g, want > 0", records[0].AuxRouterGradNorm)
	}
}

// TestResumeIsExact kills a run after step 5 (its last checkpoint is at step 4), resumes it and
// compares the loss curve and final weights with an uninterrupted run, on every backend (pure
// Go only with -short).
func TestResumeIsExact(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		if testing.Short() && b.Name() != "go" {
			t.Skip("-short runs the resume test on pure Go only")
		}
		testResumeIsExact(t, b)
	})
}

func testResumeIsExact(t *testing.T, b compute.Backend) {
	const steps = 8
	full := tinyOptions(t, t.TempDir(), steps)
	full.Backend = b
	fullResult, err := Train(full)
	if err != nil {
		t.Fatal(err)
	}

	interrupted := tinyOptions(t, t.TempDir(), steps)
	interrupted.Backend = b
	interrupted.StopAfter = 5
	stopped, err := Train(interrupted)
	if err != nil {
		t.Fatal(err)
	}
	if !stopped.Stopped || stopped.Steps != 5 {
		t.Fatalf("interrupted run: stopped=%v after %d steps, want stopped after 5", stopped.Stopped, stopped.Steps)
	}

	resumed := tinyOptions(t, interrupted.RunDir, steps)
	resumed.Backend = b
	resumed.Resume = true
	resumedResult, err := Train(resumed)
	if err != nil {
		t.Fatal(err)
	}

	want, _ := ReadMetrics(filepath.Join(full.RunDir, "metrics.jsonl"))
	got, _ := ReadMetrics(filepath.Join(interrupted.RunDir, "metrics.jsonl"))
	if len(got) != len(want) {
		t.Fatalf("resumed run logged %d steps, uninterrupted run %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Step != want[i].Step {
			t.Errorf("record %d: step %d, want %d", i, got[i].Step, want[i].Step)
		}
		if diff := math.Abs(got[i].LMLoss - want[i].LMLoss); diff > 1e-6 {
			t.Errorf("step %d: resumed LM loss %.8f, uninterrupted %.8f (difference %.3g)", want[i].Step, got[i].LMLoss, want[i].LMLoss, diff)
		}
	}
	compareStores(t, fullResult, resumedResult)
}

func compareStores(t *testing.T, want, got *Result) {
	t.Helper()
	compareStoresWithin(t, want, got, 1e-6)
}

func compareStoresWithin(t *testing.T, want, got *Result, tolerance float64) {
	t.Helper()
	for v := range want.Store.IterVariables() {
		if isTransientVariable(v.Path()) {
			continue
		}
		other := got.Store.GetVariable(v.Path())
		if other == nil {
			t.Errorf("variable %s missing after resume", v.Path())
			continue
		}
		if !v.HasValue() || !other.HasValue() {
			continue
		}
		maxDiff := maxAbsDiff(v.MustValue(), other.MustValue())
		if maxDiff > tolerance {
			t.Errorf("variable %s differs by up to %.3g (tolerance %.3g)", v.Path(), maxDiff, tolerance)
		}
	}
}

func maxAbsDiff(a, b *tensors.Tensor) float64 {
	if a.DType() != b.DType() || a.Size() != b.Size() {
		return math.Inf(1)
	}
	var maxDiff float64
	a.MustConstFlatData(func(flatA any) {
		b.MustConstFlatData(func(flatB any) {
			switch x := flatA.(type) {
			case []float32:
				y := flatB.([]float32)
				for i := range x {
					maxDiff = max(maxDiff, math.Abs(float64(x[i]-y[i])))
				}
			case []int64:
				y := flatB.([]int64)
				for i := range x {
					maxDiff = max(maxDiff, math.Abs(float64(x[i]-y[i])))
				}
			}
		})
	})
	return maxDiff
}

func TestInterruptedCheckpointKeepsPrevious(t *testing.T) {
	options := tinyOptions(t, t.TempDir(), 2)
	result, err := Train(options)
	if err != nil {
		t.Fatal(err)
	}
	good, err := LoadLatestCheckpoint(options.RunDir)
	if err != nil {
		t.Fatal(err)
	}

	for _, stage := range []string{"variables", "manifest", "rename"} {
		crashHook = func(s string) error {
			if s == stage {
				return errors.New("simulated crash at " + s)
			}
			return nil
		}
		_, err := SaveCheckpoint(options.RunDir, result.Store, TrainState{Step: 4}, 2)
		crashHook = nil
		if err == nil {
			t.Fatalf("crash at %s: SaveCheckpoint returned no error", stage)
		}
		loaded, err := LoadLatestCheckpoint(options.RunDir)
		if err != nil {
			t.Fatalf("crash at %s: previous checkpoint not loadable: %v", stage, err)
		}
		if loaded.State.Step != 2 {
			t.Errorf("crash at %s: latest checkpoint is step %d, want 2", stage, loaded.State.Step)
		}
	}

	// A killed process leaves its temporary directory and may leave a half-written step directory
	// behind; neither may shadow the complete checkpoint.
	root := filepath.Join(options.RunDir, checkpointsDir)
	for _, dir := range []string{".tmp-step-00000004-123", "step-00000006"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, variablesFile), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, latestFile), []byte("step-00000006\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadLatestCheckpoint(options.RunDir)
	if err != nil {
		t.Fatalf("with leftovers of a killed write: %v", err)
	}
	if loaded.State.Step != 2 || loaded.Dir != good.Dir {
		t.Errorf("with leftovers of a killed write: loaded %s (step %d), want %s (step 2)", loaded.Dir, loaded.State.Step, good.Dir)
	}
	if len(loaded.Variables) != len(good.Variables) {
		t.Errorf("loaded %d variables, want %d", len(loaded.Variables), len(good.Variables))
	}
}

func TestNaNStopsRunAndKeepsCheckpoint(t *testing.T) {
	options := tinyOptions(t, t.TempDir(), 4)
	options.StopAfter = 2
	if _, err := Train(options); err != nil {
		t.Fatal(err)
	}

	poisoned := tinyOptions(t, options.RunDir, 4)
	poisoned.Resume = true
	poisoned.PeakLR = math.Inf(1)
	_, err := Train(poisoned)
	var nonFinite *NonFiniteError
	if !errors.As(err, &nonFinite) {
		t.Fatalf("training with learning rate +Inf returned %v, want a NonFiniteError", err)
	}
	if nonFinite.Step != 3 {
		t.Errorf("non-finite value reported at step %d, want 3 (the first step after the resume)", nonFinite.Step)
	}
	checkpoint, err := LoadLatestCheckpoint(options.RunDir)
	if err != nil {
		t.Fatalf("last good checkpoint not loadable: %v", err)
	}
	if checkpoint.State.Step != 2 || nonFinite.LastCheckpoint != checkpoint.Dir {
		t.Errorf("latest checkpoint is step %d (%s), error names %q; want step 2 named in the error", checkpoint.State.Step, checkpoint.Dir, nonFinite.LastCheckpoint)
	}
}

// TestAccumulationMatchesLargerBatch compares 2 micro-batches of 4 rows with 1 batch of 8 rows:
// both see the same rows per step, and the mean of equal-sized micro-batch means is the batch mean.
func TestAccumulationMatchesLargerBatch(t *testing.T) {
	run := func(batch, accumulation int) (*Result, []StepRecord) {
		options := tinyOptions(t, t.TempDir(), 4)
		data, err := NewRowBatches(syntheticRows(64, 16), batch, 3)
		if err != nil {
			t.Fatal(err)
		}
		options.Data, options.BatchSize, options.Accumulation = data, batch, accumulation
		options.Model = tinyModel{vocab: tinyVocab, dim: 16, deterministic: true}
		result, err := Train(options)
		if err != nil {
			t.Fatal(err)
		}
		records, err := ReadMetrics(filepath.Join(options.RunDir, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return result, records
	}
	whole, wholeRecords := run(8, 1)
	split, splitRecords := run(4, 2)
	for i := range wholeRecords {
		if diff := math.Abs(wholeRecords[i].LMLoss - splitRecords[i].LMLoss); diff > 1e-5 {
			t.Errorf("step %d: LM loss %.7f with batch 8, %.7f with 2×4 accumulated", i+1, wholeRecords[i].LMLoss, splitRecords[i].LMLoss)
		}
		if wholeRecords[i].Tokens != splitRecords[i].Tokens {
			t.Errorf("step %d: %d tokens with batch 8, %d with 2×4", i+1, wholeRecords[i].Tokens, splitRecords[i].Tokens)
		}
	}
	compareStoresWithin(t, whole, split, 1e-4)
}
