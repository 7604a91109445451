package mor

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gomor/gomor/routers"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate(): %v", err)
	}
	if c.Router != nil || c.Sharing != NoSharing || c.NumRecursions != 1 {
		t.Errorf("DefaultConfig() = %s with sharing %q, N_r %d, router %v: want a vanilla model", c.Name, c.Sharing, c.NumRecursions, c.Router)
	}
}

// TestValidateRejects checks that each invalid config fails with an error
// that names the offending field and mentions its value.
func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name      string
		base      string
		modify    func(c *Config)
		wantField string
		wantValue string
	}{
		{"heads not dividing d_model", "vanilla-360m", func(c *Config) { c.NumHeads = 7 }, "num_heads", "7"},
		{"head_dim times heads mismatch", "vanilla-360m", func(c *Config) { c.HeadDim = 32 }, "head_dim", "32"},
		{"odd head_dim", "vanilla-tiny", func(c *Config) { c.NumHeads, c.NumKVHeads, c.HeadDim, c.DModel = 4, 2, 63, 252 }, "head_dim", "63"},
		{"kv heads not dividing heads", "vanilla-360m", func(c *Config) { c.NumKVHeads = 4 }, "num_kv_heads", "4"},
		{"zero recursions", "recursive-360m-r3", func(c *Config) { c.NumRecursions = 0 }, "num_recursions", "0"},
		{"negative recursions", "recursive-360m-r3", func(c *Config) { c.NumRecursions = -2 }, "num_recursions", "-2"},
		{"middle-cycle depth", "recursive-360m-r3", func(c *Config) { c.NumLayers = 33 }, "num_layers", "33"},
		{"middle-cycle too shallow", "recursive-tiny-r3", func(c *Config) { c.NumLayers = 4 }, "num_layers", "4"},
		{"cycle depth", "recursive-360m-r3", func(c *Config) { c.Sharing = Cycle }, "num_layers", "32"},
		{"sequence depth", "recursive-360m-r3", func(c *Config) { c.Sharing = Sequence; c.Router = nil }, "num_layers", "32"},
		{"vanilla with recursions", "vanilla-360m", func(c *Config) { c.NumRecursions = 2 }, "num_recursions", "2"},
		{"negative d_model", "vanilla-tiny", func(c *Config) { c.DModel = -256 }, "d_model", "-256"},
		{"zero vocabulary", "vanilla-tiny", func(c *Config) { c.VocabSize = 0 }, "vocab_size", "0"},
		{"zero ffn", "vanilla-tiny", func(c *Config) { c.FFNSize = 0 }, "ffn_size", "0"},
		{"zero layers", "vanilla-tiny", func(c *Config) { c.NumLayers = 0 }, "num_layers", "0"},
		{"negative sequence length", "vanilla-tiny", func(c *Config) { c.MaxSeqLen = -1 }, "max_seq_len", "-1"},
		{"zero rope theta", "vanilla-tiny", func(c *Config) { c.RoPETheta = 0 }, "rope_theta", "0"},
		{"negative epsilon", "vanilla-tiny", func(c *Config) { c.NormEpsilon = -1e-5 }, "norm_epsilon", "-1e-05"},
		{"zero init std", "vanilla-tiny", func(c *Config) { c.InitStd = 0 }, "init_std", "0"},
		{"unknown sharing", "recursive-tiny-r3", func(c *Config) { c.Sharing = "middle_cycle" }, "sharing", `"middle_cycle"`},
		{"empty sharing", "vanilla-tiny", func(c *Config) { c.Sharing = "" }, "sharing", `""`},
		{"unknown kv strategy", "mor-ec-tiny-r3", func(c *Config) { c.KV = "cached" }, "kv_strategy", `"cached"`},
		{"unknown dtype", "vanilla-tiny", func(c *Config) { c.DType = "fp32" }, "dtype", `"fp32"`},
		{"router on vanilla", "vanilla-tiny", func(c *Config) { r := routers.DefaultExpertChoice(); c.Router = &r }, "router", "expert-choice"},
		{"router with sequence sharing", "mor-ec-tiny-r3", func(c *Config) { c.Sharing = MiddleSequence }, "router", "middle-sequence"},
		{"router with cycle-less sequence", "mor-ec-tiny-r2", func(c *Config) { c.Sharing = Sequence }, "router", "sequence"},
		{"unknown router kind", "mor-ec-tiny-r3", func(c *Config) { c.Router.Kind = "top-p" }, "router.kind", `"top-p"`},
		{"unknown router architecture", "mor-ec-tiny-r3", func(c *Config) { c.Router.Architecture = "conv" }, "router.architecture", `"conv"`},
		{"unknown score function", "mor-ec-tiny-r3", func(c *Config) { c.Router.ScoreFunc = "relu" }, "router.score_func", `"relu"`},
		{"softmax for expert-choice", "mor-ec-tiny-r3", func(c *Config) { c.Router.ScoreFunc = "softmax" }, "router.score_func", `"softmax"`},
		{"tanh for token-choice", "mor-tc-tiny-r3", func(c *Config) { c.Router.ScoreFunc = "tanh" }, "router.score_func", `"tanh"`},
		{"zero alpha", "mor-ec-tiny-r3", func(c *Config) { c.Router.Alpha = 0 }, "router.alpha", "0"},
		{"zero temperature", "mor-ec-tiny-r3", func(c *Config) { c.Router.Temperature = 0 }, "router.temperature", "0"},
		{"increasing capacities", "mor-ec-tiny-r3", func(c *Config) { c.Router.Capacities = []float64{1, 0.3, 0.6} }, "router.capacities[2]", "0.6"},
		{"capacity above 1", "mor-ec-tiny-r3", func(c *Config) { c.Router.Capacities = []float64{1.5, 0.5, 0.25} }, "router.capacities[0]", "1.5"},
		{"zero capacity", "mor-ec-tiny-r3", func(c *Config) { c.Router.Capacities = []float64{1, 0.5, 0} }, "router.capacities[2]", "0"},
		{"negative capacity", "mor-ec-tiny-r3", func(c *Config) { c.Router.Capacities = []float64{1, 0.5, -0.1} }, "router.capacities[2]", "-0.1"},
		{"wrong capacity count", "mor-ec-tiny-r3", func(c *Config) { c.Router.Capacities = []float64{1, 0.5} }, "router.capacities", "[1 0.5]"},
		{"capacities for token-choice", "mor-tc-tiny-r3", func(c *Config) { c.Router.Capacities = []float64{1, 0.5, 0.25} }, "router.capacities", "token-choice"},
		{"kv sharing on vanilla", "vanilla-tiny", func(c *Config) { c.KV = SharedKVUpdate }, "kv_strategy", `"shared-update"`},
		{"kv sharing with sequence sharing", "recursive-tiny-r3", func(c *Config) { c.Sharing, c.KV = MiddleSequence, SharedKV }, "kv_strategy", `"shared"`},
		{"kv sharing with partial first step", "mor-ec-tiny-r3-kvshare", func(c *Config) { c.Router.Capacities = []float64{0.9, 0.5, 0.25} }, "router.capacities[0]", "0.9"},
		{"router option of the other kind", "mor-ec-tiny-r3", func(c *Config) { c.Router.BalanceCoeff = 0.1 }, "router", "balance_coeff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustPreset(t, tc.base)
			tc.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate() accepted the config, want an error naming %s", tc.wantField)
			}
			message := err.Error()
			if !strings.Contains(message, tc.wantField) {
				t.Errorf("error %q does not name the field %s", message, tc.wantField)
			}
			if !strings.Contains(message, tc.wantValue) {
				t.Errorf("error %q does not show the value %s", message, tc.wantValue)
			}

			var fieldErr *FieldError
			if !errors.As(err, &fieldErr) {
				t.Errorf("error %T is not a *FieldError through errors.As", err)
			} else if fieldErr.Fix == "" && fieldErr.Value != nil {
				t.Errorf("field error %q gives no fix", fieldErr)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	c := mustPreset(t, "vanilla-tiny")
	c.VocabSize, c.FFNSize, c.DType = 0, -1, "int8"
	err := c.Validate()

	var validationErr *ValidationError
	if !errors.As(err, &validationErr) {
		t.Fatalf("Validate() = %v, want a *ValidationError", err)
	}
	var fields []string
	for _, field := range validationErr.Fields {
		fields = append(fields, field.Field)
	}
	want := []string{"vocab_size", "ffn_size", "dtype"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("invalid fields = %v, want %v", fields, want)
	}
}

func TestValidateAcceptsVariants(t *testing.T) {
	cases := []struct {
		name   string
		base   string
		modify func(c *Config)
	}{
		{"cycle 9/3", "recursive-tiny-r3", func(c *Config) { c.Sharing, c.NumLayers = Cycle, 9 }},
		{"sequence without router", "recursive-tiny-r3", func(c *Config) { c.Sharing, c.NumLayers = Sequence, 9 }},
		{"middle-sequence without router", "recursive-tiny-r3", func(c *Config) { c.Sharing = MiddleSequence }},
		{"expert-choice on cycle", "mor-ec-tiny-r3", func(c *Config) { c.Sharing, c.NumLayers = Cycle, 6 }},
		{"explicit capacities", "mor-ec-tiny-r3", func(c *Config) { c.Router.Capacities = []float64{1, 0.5, 0.5} }},
		{"hybrid kv sharing", "mor-ec-tiny-r3", func(c *Config) { c.KV = SharedKVUpdate }},
		{"token-choice kv sharing", "mor-tc-tiny-r3-kvshare", func(c *Config) {}},
		{"recursive kv sharing", "recursive-tiny-r3", func(c *Config) { c.KV = SharedKV }},
		{"untied norms", "mor-ec-tiny-r3", func(c *Config) { c.ShareNorms = false }},
		{"bfloat16", "vanilla-tiny", func(c *Config) { c.DType = "bfloat16" }},
		{"mlp router", "mor-ec-tiny-r3", func(c *Config) { c.Router.Architecture = "mlp" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustPreset(t, tc.base)
			tc.modify(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate(): %v", err)
			}
		})
	}
}

func writeConfigFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigExplicitZeroStays(t *testing.T) {
	path := writeConfigFile(t, `{"base": "vanilla-tiny", "init_std": 0, "tied_embeddings": false}`)
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if c.InitStd != 0 {
		t.Errorf("init_std = %g, want the explicit 0", c.InitStd)
	}
	if c.TiedEmbeddings {
		t.Errorf("tied_embeddings = true, want the explicit false")
	}
	if c.DModel != 256 {
		t.Errorf("d_model = %d, want 256 from the base preset", c.DModel)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "init_std") {
		t.Errorf("Validate() = %v, want an error naming init_std", err)
	}
}

func TestLoadConfigBasePreset(t *testing.T) {
	path := writeConfigFile(t, `{"base": "mor-ec-360m-r3", "router": {"alpha": 0.2}, "max_seq_len": 1024}`)
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if c.DModel != 960 || c.NumLayers != 32 || c.MaxSeqLen != 1024 {
		t.Errorf("d_model %d, num_layers %d, max_seq_len %d: want 960 and 32 from the base and 1024 from the file", c.DModel, c.NumLayers, c.MaxSeqLen)
	}
	if c.Router == nil || c.Router.Alpha != 0.2 || c.Router.ScoreFunc != "sigmoid" {
		t.Errorf("router = %+v, want α 0.2 from the file and the sigmoid of the base", c.Router)
	}
}

func TestLoadConfigWithoutBaseUsesDefault(t *testing.T) {
	c, err := ParseConfig([]byte(`{"name": "mine"}`))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := DefaultConfig()
	want.Name = "mine"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("ParseConfig = %+v, want DefaultConfig with the name changed %+v", c, want)
	}
}

func TestLoadConfigUnknownField(t *testing.T) {
	cases := map[string]string{
		"top level": `{"base": "vanilla-tiny", "num_layer": 4}`,
		"in router": `{"base": "mor-ec-tiny-r3", "router": {"alhpa": 0.2}}`,
	}
	wantField := map[string]string{"top level": "num_layer", "in router": "alhpa"}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(content))
			if err == nil {
				t.Fatal("ParseConfig accepted an unknown field")
			}
			if !strings.Contains(err.Error(), wantField[name]) {
				t.Errorf("error %q does not name the field %q", err, wantField[name])
			}
		})
	}
}

func TestLoadConfigRouterSeededFromKind(t *testing.T) {
	c, err := ParseConfig([]byte(`{"base": "recursive-tiny-r3", "router": {"kind": "token-choice"}}`))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if c.Router == nil || c.Router.ScoreFunc != "softmax" || c.Router.Alpha != 1 || c.Router.Temperature != 1 {
		t.Errorf("router = %+v, want the token-choice defaults (softmax, α 1, T 1)", c.Router)
	}

	switched, err := ParseConfig([]byte(`{"base": "mor-ec-tiny-r3", "router": {"kind": "token-choice"}}`))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if switched.Router.ScoreFunc != "softmax" || switched.Router.BCECoeff != 0 {
		t.Errorf("router = %+v, want the token-choice defaults, not the expert-choice base's", switched.Router)
	}
	if err := switched.Validate(); err != nil {
		t.Errorf("Validate() after switching kinds: %v", err)
	}
}

func TestLoadConfigNullRouterRemovesIt(t *testing.T) {
	c, err := ParseConfig([]byte(`{"base": "mor-ec-tiny-r3", "router": null}`))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if c.Router != nil {
		t.Errorf("router = %+v, want nil", c.Router)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := map[string]struct{ content, want string }{
		"unknown base": {`{"base": "vanilla-9b"}`, "vanilla-9b"},
		"base type":    {`{"base": 3}`, `"base"`},
		"field type":   {`{"num_layers": "eight"}`, "num_layers"},
		"not JSON":     {`{"num_layers": `, "invalid JSON"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseConfig error = %v, want one mentioning %s", err, tc.want)
			}
		})
	}

	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}

// TestConfigJSONRoundTrip checks that a saved config decodes back to itself,
// with or without a router and a base.
func TestConfigJSONRoundTrip(t *testing.T) {
	for _, name := range []string{"vanilla-360m", "recursive-730m-r3", "mor-ec-tiny-r3-kvshare", "mor-tc-1.7b-r2"} {
		original := mustPreset(t, name)
		data, err := json.Marshal(original)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: ParseConfig(Marshal): %v", name, err)
		}
		if !reflect.DeepEqual(decoded, original) {
			t.Errorf("%s: round trip gives %+v, want %+v", name, decoded, original)
		}
	}
}

func TestLoadConfigNames(t *testing.T) {
	cases := []struct {
		content string
		want    string
	}{
		{`{"base": "vanilla-tiny"}`, "vanilla-tiny"},
		{`{"base": "vanilla-tiny", "num_layers": 4}`, "model"},
		{`{"base": "vanilla-tiny", "num_layers": 4, "name": "four-layers"}`, "four-layers"},
		{`{}`, "vanilla-tiny"},
	}
	for _, tc := range cases {
		c, err := LoadConfig(writeConfigFile(t, tc.content))
		if err != nil {
			t.Fatalf("LoadConfig(%s): %v", tc.content, err)
		}
		if c.Name != tc.want {
			t.Errorf("LoadConfig(%s).Name = %q, want %q", tc.content, c.Name, tc.want)
		}
	}
}
