package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/training"
)

// trainTinyRun trains a shrunk model of preset for two steps on the shipped corpus, on pure Go.
func trainTinyRun(t *testing.T, preset string) string {
	t.Helper()
	t.Setenv("GOMLX_BACKEND", "go")
	runDir := filepath.Join(t.TempDir(), "run")
	config := filepath.Join(t.TempDir(), "small.json")
	small := `{"d_model": 64, "num_heads": 1, "num_kv_heads": 1, "head_dim": 64, "ffn_size": 128}`
	if err := os.WriteFile(config, []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--preset", preset, "--config", config, "--seq-len", "32", "--batch", "2", "--budget", "2steps",
		"--run-dir", runDir, "--no-progress", "--eval-rows", "2", "--eval-batch", "2"}
	if err := runTrain(args); err != nil {
		t.Fatalf("mor train %q: %v", args, err)
	}
	return runDir
}

func TestExportRecursiveRunUnrolls(t *testing.T) {
	runDir := trainTinyRun(t, "recursive-tiny-r3")
	out := filepath.Join(t.TempDir(), "model.safetensors")
	if err := runExport([]string{"--run", runDir, "--out", out}); err != nil {
		t.Fatal(err)
	}

	tensors, metadata, err := mor.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metadata["gomor_config"], `"sharing":"middle-cycle"`) {
		t.Errorf("metadata gomor_config = %q, want the run's middle-cycle config", metadata["gomor_config"])
	}
	byName := map[string]mor.NamedTensor{}
	for _, tensor := range tensors {
		byName[tensor.Name] = tensor
	}

	// recursive-tiny-r3 is 1 + [2-layer block × 3] + 1 = 8 unrolled layers: layer 1 and layer 3
	// are the same unique layer, so their exported copies must be equal.
	first, found := byName["model.layers.1.mlp.down_proj.weight"]
	if !found {
		t.Fatalf("model.layers.1.mlp.down_proj.weight missing; exported %d tensors", len(tensors))
	}
	third := byName["model.layers.3.mlp.down_proj.weight"]
	if string(first.Data) != string(third.Data) {
		t.Error("unrolled layers 1 and 3 share a unique layer but were exported with different weights")
	}
	if _, found := byName["model.layers.7.self_attn.q_proj.weight"]; !found {
		t.Error("model.layers.7 (the unique last layer) missing from the export")
	}
	if _, found := byName["model.layers.8.self_attn.q_proj.weight"]; found {
		t.Error("export has a model.layers.8, but the model has 8 unrolled layers (0..7)")
	}
	if got := first.Shape; len(got) != 2 || got[0] != 64 || got[1] != 128 {
		t.Errorf("down_proj shape %v, want [out 64, in 128] in the Hugging Face layout", got)
	}

	// The exported values are the checkpoint's, transposed to [out, in].
	run, err := training.LoadRun(runDir)
	if err != nil {
		t.Fatal(err)
	}
	variable := run.Store.GetVariable("/layer_01/mlp/down_proj/weights")
	if variable == nil {
		t.Fatal("variable /layer_01/mlp/down_proj/weights not in the checkpoint")
	}
	values := variable.MustValue().Value().([][]float32) // [in 128, out 64]
	exported := float32sFromLE(t, first.Data)
	for in := 0; in < 128; in += 37 {
		for out := 0; out < 64; out += 13 {
			if got, want := exported[out*128+in], values[in][out]; got != want {
				t.Fatalf("exported[%d][%d] = %v, checkpoint weights[%d][%d] = %v", out, in, got, in, out, want)
			}
		}
	}
}

func TestExportRejectsRoutedRun(t *testing.T) {
	runDir := trainTinyRun(t, "mor-ec-tiny-r3")
	err := runExport([]string{"--run", runDir, "--out", filepath.Join(t.TempDir(), "x.safetensors")})
	if err == nil || !strings.Contains(err.Error(), "routed") {
		t.Errorf("exporting a MoR run: got %v, want an error saying routed models cannot be exported", err)
	}
}

func TestExportFlagErrors(t *testing.T) {
	if _, err := parseExportFlags([]string{"--out", "x"}); err == nil || !strings.Contains(err.Error(), "--run") {
		t.Errorf("missing --run: got %v", err)
	}
	if _, err := parseExportFlags([]string{"--run", "x"}); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("missing --out: got %v", err)
	}
}

func float32sFromLE(t *testing.T, data []byte) []float32 {
	t.Helper()
	if len(data)%4 != 0 {
		t.Fatalf("F32 data of %d bytes", len(data))
	}
	values := make([]float32, len(data)/4)
	for i := range values {
		bits := uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24
		values[i] = math.Float32frombits(bits)
	}
	return values
}
