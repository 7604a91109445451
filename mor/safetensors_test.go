package mor

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/internal/testutil"
)

func TestSafetensorsFileLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layout.safetensors")
	// 1.5 and −2 as little-endian float32: 0x3FC00000 and 0xC0000000.
	data := []byte{0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0}
	err := WriteSafetensors(path, []NamedTensor{{Name: "w", DType: "F32", Shape: []int{2}, Data: data}}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatalf("WriteSafetensors failed: %v", err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	headerLen := binary.LittleEndian.Uint64(raw[:8])
	if (8+headerLen)%8 != 0 {
		t.Errorf("data start at byte %d, want an 8-byte boundary", 8+headerLen)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+headerLen], &header); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}
	if got, want := string(header["w"]), `{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`; got != want {
		t.Errorf("header entry %s, want %s", got, want)
	}
	if got, want := string(header["__metadata__"]), `{"format":"pt"}`; got != want {
		t.Errorf("metadata %s, want %s", got, want)
	}
	if got := raw[8+headerLen:]; !slices.Equal(got, data) {
		t.Errorf("data bytes %x, want %x", got, data)
	}

	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %d entries (error %v), want only the written file: the temporary file was left behind", len(entries), err)
	}
}

func TestSafetensorsHalfPrecisionEncoding(t *testing.T) {
	values := []float64{1, -2, 0.5}
	cases := []struct {
		dtype string
		bits  []uint16 // hand-computed IEEE encodings
	}{
		{"BF16", []uint16{0x3F80, 0xC000, 0x3F00}},
		{"F16", []uint16{0x3C00, 0xC000, 0x3800}},
	}
	for _, tc := range cases {
		encoded, err := encodeFloats(values, tc.dtype)
		if err != nil {
			t.Fatalf("%s: encoding failed: %v", tc.dtype, err)
		}
		for i, want := range tc.bits {
			if got := binary.LittleEndian.Uint16(encoded[2*i:]); got != want {
				t.Errorf("%s encoding of %g is %#04x, want %#04x", tc.dtype, values[i], got, want)
			}
		}
		decoded, err := decodeFloats(encoded, tc.dtype)
		if err != nil || !slices.Equal(decoded, values) {
			t.Errorf("%s round trip gave %v (error %v), want %v", tc.dtype, decoded, err, values)
		}
	}
}

// writeRawSafetensors writes a file with the given JSON header and data, unchecked.
func writeRawSafetensors(t *testing.T, header string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.safetensors")
	raw := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	raw = append(append(raw, header...), data...)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSafetensorsRejectsCorruptFiles(t *testing.T) {
	cases := []struct {
		name, header, wantError string
		dataLen                 int
	}{
		{"offsets past the data", `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}`, "outside", 8},
		{"size not matching the shape", `{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, "needs 12 bytes", 8},
		{"unknown dtype", `{"w":{"dtype":"I4","shape":[2],"data_offsets":[0,8]}}`, "unsupported safetensors dtype", 8},
		{"overlapping tensors", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, "overlap", 8},
		{"header not JSON", `{"w":`, "invalid safetensors JSON header", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadSafetensors(writeRawSafetensors(t, tc.header, make([]byte, tc.dataLen)))
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("ReadSafetensors returned %v, want an error containing %q", err, tc.wantError)
			}
		})
	}

	t.Run("header length past the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "short.safetensors")
		if err := os.WriteFile(path, binary.LittleEndian.AppendUint64(nil, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadSafetensors(path); err == nil || !strings.Contains(err.Error(), "header length") {
			t.Errorf("ReadSafetensors returned %v, want a header length error", err)
		}
	})
}

// exportedTensors exports store's model and returns its tensors by name.
func exportedTensors(t *testing.T, store *model.Store, cfg Config, dtype string) (string, map[string]NamedTensor) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := ExportSafetensors(path, store, cfg, dtype); err != nil {
		t.Fatalf("ExportSafetensors failed: %v", err)
	}
	namedTensors, metadata, err := ReadSafetensors(path)
	if err != nil {
		t.Fatalf("ReadSafetensors failed: %v", err)
	}
	if metadata["gomor_config"] == "" {
		t.Errorf("metadata %v lacks gomor_config", metadata)
	}
	byName := map[string]NamedTensor{}
	for _, tensor := range namedTensors {
		byName[tensor.Name] = tensor
	}
	return path, byName
}

func TestVanillaSafetensorsRoundTrip(t *testing.T) {
	b := testutil.Backend(t, "go")
	for _, tied := range []bool{true, false} {
		cfg := testConfig(NoSharing, 2, 1)
		cfg.TiedEmbeddings = tied
		tokens := randomTokens(rand.New(rand.NewPCG(31, 32)), 2, 5, cfg.VocabSize)
		store := seededStore(t, 31)
		want := flat32(forwardLogits(t, b, store, cfg, ForwardOptions{}, tokens))
		path, byName := exportedTensors(t, store, cfg, "F32")

		// 2 layers × 9 tensors + embedding + final norm (+ LM head when untied).
		wantCount := 2*9 + 2
		if !tied {
			wantCount++
		}
		if len(byName) != wantCount {
			t.Errorf("tied %v: file holds %d tensors, want %d", tied, len(byName), wantCount)
		}
		for _, name := range []string{"model.embed_tokens.weight", "model.norm.weight", "model.layers.1.self_attn.k_proj.weight",
			"model.layers.0.mlp.down_proj.weight", "model.layers.1.post_attention_layernorm.weight"} {
			if _, found := byName[name]; !found {
				t.Errorf("tied %v: tensor %s missing", tied, name)
			}
		}
		if _, found := byName["lm_head.weight"]; found == tied {
			t.Errorf("tied %v: lm_head.weight present = %v", tied, found)
		}

		// Hugging Face stores Linear weights as [out, in]: q_proj is [H·HeadDim, D] = [32, 32], k_proj [16, 32].
		kProj := byName["model.layers.1.self_attn.k_proj.weight"]
		if !slices.Equal(kProj.Shape, []int{16, 32}) {
			t.Errorf("k_proj shape %v, want [16 32] ([out, in])", kProj.Shape)
		}
		fileValues, _ := decodeFloats(kProj.Data, "F32")
		modelValues := flat32(store.GetVariable("/layer_01/self_attn/k_proj/weights").MustValue()) // [in 32, out 16]
		if got, want := fileValues[3*32+5], float64(modelValues[5*16+3]); got != want {
			t.Errorf("k_proj.weight[3][5] = %g, want model weight [5][3] = %g", got, want)
		}

		loaded := model.NewStore()
		if err := ImportSafetensors(path, loaded, cfg); err != nil {
			t.Fatalf("tied %v: ImportSafetensors failed: %v", tied, err)
		}
		for v := range store.IterVariables() {
			if !v.Trainable {
				continue
			}
			copied := loaded.GetVariable(v.Path())
			if copied == nil || !copied.MustValue().Equal(v.MustValue()) {
				t.Errorf("tied %v: variable %s not restored exactly", tied, v.Path())
			}
		}
		got := flat32(forwardLogits(t, b, loaded, cfg, ForwardOptions{}, tokens))
		if diff, at := maxAbsDiff(got, want); diff != 0 {
			t.Errorf("tied %v: logits after the round trip differ by %g at %d", tied, diff, at)
		}
	}
}

func TestBFloat16ExportRoundsWeights(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(NoSharing, 1, 1)
	store := seededStore(t, 33)
	forwardLogits(t, b, store, cfg, ForwardOptions{}, randomTokens(rand.New(rand.NewPCG(33, 34)), 1, 3, cfg.VocabSize))
	path, _ := exportedTensors(t, store, cfg, "BF16")

	loaded := model.NewStore()
	if err := ImportSafetensors(path, loaded, cfg); err != nil {
		t.Fatalf("ImportSafetensors failed: %v", err)
	}
	const variable = "/layer_00/mlp/gate_proj/weights"
	original, restored := flat32(store.GetVariable(variable).MustValue()), flat32(loaded.GetVariable(variable).MustValue())
	for i := range original {
		// bfloat16 keeps 8 significant bits, so the relative error is at most 2⁻⁸.
		if diff := math.Abs(float64(original[i] - restored[i])); diff > math.Abs(float64(original[i]))/256 {
			t.Fatalf("element %d: %g became %g through BF16, beyond bfloat16 rounding", i, original[i], restored[i])
		}
	}
}

func TestSharedModelExportsUnrolledLayers(t *testing.T) {
	b := testutil.Backend(t, "go")
	cfg := testConfig(MiddleCycle, 5, 3) // unique layers 0, 1, 2; unrolled 0 (1)(1)(1) 4
	tokens := randomTokens(rand.New(rand.NewPCG(35, 36)), 2, 6, cfg.VocabSize)
	store := seededStore(t, 35)
	want := flat32(forwardLogits(t, b, store, cfg, ForwardOptions{}, tokens))
	path, byName := exportedTensors(t, store, cfg, "F32")

	for l := range cfg.NumLayers {
		if _, found := byName["model.layers."+strconv.Itoa(l)+".mlp.up_proj.weight"]; !found {
			t.Errorf("unrolled layer %d missing from the export", l)
		}
	}
	first, third := byName["model.layers.1.mlp.up_proj.weight"], byName["model.layers.3.mlp.up_proj.weight"]
	if !slices.Equal(first.Data, third.Data) {
		t.Errorf("tied unrolled layers 1 and 3 were exported with different weights")
	}

	// The unrolled file is a vanilla Llama of depth N_L that computes the same function.
	vanilla := cfg
	vanilla.Sharing, vanilla.NumRecursions = NoSharing, 1
	vanillaStore := model.NewStore()
	if err := ImportSafetensors(path, vanillaStore, vanilla); err != nil {
		t.Fatalf("importing the unrolled file as a vanilla model failed: %v", err)
	}
	got := flat32(forwardLogits(t, b, vanillaStore, vanilla, ForwardOptions{}, tokens))
	if diff, at := maxAbsDiff(got, want); diff > 1e-5 {
		t.Errorf("vanilla model from the unrolled export differs from the recursive model by %g at %d", diff, at)
	}

	recursiveStore := model.NewStore()
	if err := ImportSafetensors(path, recursiveStore, cfg); err != nil {
		t.Fatalf("importing the export back into the recursive config failed: %v", err)
	}
	if got := trainableVariables(recursiveStore); len(got) != len(trainableVariables(store)) {
		t.Errorf("recursive import created %d variables, the model has %d", len(got), len(trainableVariables(store)))
	}

	// A vanilla file has different weights in layers 1..3, which the recursive config cannot tie.
	vanillaPath, _ := exportedTensors(t, seededVanilla(t, vanilla, tokens), vanilla, "F32")
	err := ImportSafetensors(vanillaPath, model.NewStore(), cfg)
	if err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("importing untied layers into a tied config returned %v, want an error about differing copies", err)
	}
}

// seededVanilla returns a store with freshly initialised variables of cfg.
func seededVanilla(t *testing.T, cfg Config, tokens [][]int32) *model.Store {
	t.Helper()
	store := seededStore(t, 37)
	forwardLogits(t, testutil.Backend(t, "go"), store, cfg, ForwardOptions{}, tokens)
	return store
}

func TestImportRejectsWrongDepth(t *testing.T) {
	cfg := testConfig(NoSharing, 2, 1)
	store := seededVanilla(t, cfg, [][]int32{{1, 2, 3}})
	path, _ := exportedTensors(t, store, cfg, "F32")

	deeper := cfg
	deeper.NumLayers = 3
	if err := ImportSafetensors(path, model.NewStore(), deeper); err == nil || !strings.Contains(err.Error(), "model.layers.2") {
		t.Errorf("importing 2 layers into a 3-layer config returned %v, want a missing model.layers.2 error", err)
	}
	shallower := cfg
	shallower.NumLayers = 1
	if err := ImportSafetensors(path, model.NewStore(), shallower); err == nil || !strings.Contains(err.Error(), "not part of") {
		t.Errorf("importing 2 layers into a 1-layer config returned %v, want an unexpected-tensor error", err)
	}
}
