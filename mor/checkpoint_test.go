package mor

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/internal/testutil"
)

func TestCheckpointRoundTrip(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(MiddleCycle, 5, 3)
	tokens := randomTokens(rand.New(rand.NewPCG(21, 22)), 2, 6, cfg.VocabSize)
	dir := t.TempDir()

	original := seededStore(t, 21)
	want := flat32(forwardLogits(t, b, original, cfg, ForwardOptions{}, tokens))
	if err := SaveCheckpoint(dir, original, cfg); err != nil {
		t.Fatalf("SaveCheckpoint failed: %v", err)
	}

	saved, found, err := ReadCheckpointConfig(dir)
	if err != nil || !found {
		t.Fatalf("ReadCheckpointConfig = found %v, error %v; want the saved config", found, err)
	}
	if !reflect.DeepEqual(saved, cfg) {
		t.Errorf("saved config %+v, want %+v", saved, cfg)
	}

	loaded := model.NewStore()
	if err := LoadCheckpoint(dir, loaded, cfg); err != nil {
		t.Fatalf("LoadCheckpoint failed: %v", err)
	}
	for v := range original.IterVariables() {
		copied := loaded.GetVariable(v.Path())
		if copied == nil {
			t.Errorf("variable %s missing after loading", v.Path())
			continue
		}
		if !copied.MustValue().Equal(v.MustValue()) {
			t.Errorf("variable %s differs after loading", v.Path())
		}
	}
	got := flat32(forwardLogits(t, b, loaded, cfg, ForwardOptions{}, tokens))
	if diff, at := maxAbsDiff(got, want); diff != 0 {
		t.Errorf("logits of the loaded model differ by %g at %d", diff, at)
	}
}

func TestSaveCheckpointKeepsCurrentValues(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(Cycle, 2, 2)
	tokens := randomTokens(rand.New(rand.NewPCG(23, 24)), 1, 4, cfg.VocabSize)
	dir := t.TempDir()

	store := seededStore(t, 23)
	forwardLogits(t, b, store, cfg, ForwardOptions{}, tokens)
	if err := SaveCheckpoint(dir, store, cfg); err != nil {
		t.Fatalf("first SaveCheckpoint failed: %v", err)
	}

	// Change one weight, save again: the newest checkpoint must hold the new value.
	path := "/layer_00/mlp/up_proj/weights"
	variable := store.GetVariable(path)
	values := flat32(variable.MustValue())
	values[0] += 1
	variable.MustSetValue(tensors.FromFlatDataAndDimensions(values, variable.Shape().Dimensions...))
	if err := SaveCheckpoint(dir, store, cfg); err != nil {
		t.Fatalf("second SaveCheckpoint failed: %v", err)
	}
	if got := flat32(store.GetVariable(path).MustValue())[0]; got != values[0] {
		t.Errorf("saving replaced the current value %g of %s with %g", values[0], path, got)
	}

	loaded := model.NewStore()
	if err := LoadCheckpoint(dir, loaded, cfg); err != nil {
		t.Fatalf("LoadCheckpoint failed: %v", err)
	}
	if got := flat32(loaded.GetVariable(path).MustValue())[0]; got != values[0] {
		t.Errorf("latest checkpoint holds %g for %s[0], want the changed value %g", got, path, values[0])
	}
}

func TestLoadCheckpointRejectsOtherConfig(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(MiddleCycle, 5, 3)
	dir := t.TempDir()
	store := seededStore(t, 25)
	forwardLogits(t, b, store, cfg, ForwardOptions{}, randomTokens(rand.New(rand.NewPCG(25, 26)), 1, 4, cfg.VocabSize))
	if err := SaveCheckpoint(dir, store, cfg); err != nil {
		t.Fatalf("SaveCheckpoint failed: %v", err)
	}

	cases := []struct {
		field  string
		change func(*Config)
	}{
		{"num_layers", func(c *Config) { c.NumLayers = 8 }},
		{"kv_strategy", func(c *Config) { c.KV = SharedKV }},
		{"rope_theta", func(c *Config) { c.RoPETheta = 100000 }},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			other := cfg
			tc.change(&other)
			err := LoadCheckpoint(dir, model.NewStore(), other)
			if err == nil {
				t.Fatalf("LoadCheckpoint with a different %s succeeded", tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name the differing field %s", err, tc.field)
			}
		})
	}

	renamed := cfg
	renamed.Name = "another name"
	if err := LoadCheckpoint(dir, model.NewStore(), renamed); err != nil {
		t.Errorf("LoadCheckpoint rejected a config that differs only in its name: %v", err)
	}
}

func TestLoadCheckpointFromEmptyDirectory(t *testing.T) {
	err := LoadCheckpoint(t.TempDir(), model.NewStore(), testConfig(NoSharing, 1, 1))
	if err == nil || !strings.Contains(err.Error(), "no gomor checkpoint") {
		t.Errorf("LoadCheckpoint on an empty directory returned %v, want a no-checkpoint error", err)
	}
}
