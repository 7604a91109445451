package mor

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gomor/gomor/routers"
)

// FieldError is one invalid field of a Config. Field is the JSON name
// ("num_heads", "router.capacities"), so a message points at the line to edit.
// A nil Value marks a problem reported by the router package, whose Problem
// already names the value and the fix.
type FieldError struct {
	Field   string
	Value   any
	Problem string
	Fix     string
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("%s = %v %s; %s", e.Field, e.Value, e.Problem, e.Fix)
}

// ValidationError lists every invalid field of one Config.
type ValidationError struct {
	Name   string // the config's name, possibly empty
	Fields []*FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Fields))
	for i, field := range e.Fields {
		lines[i] = field.Error()
	}
	name := ""
	if e.Name != "" {
		name = fmt.Sprintf(" %q", e.Name)
	}
	if len(lines) == 1 {
		return fmt.Sprintf("invalid model config%s: %s", name, lines[0])
	}
	return fmt.Sprintf("invalid model config%s:\n  %s", name, strings.Join(lines, "\n  "))
}

// Unwrap returns the field errors, for errors.As.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Fields))
	for i, field := range e.Fields {
		errs[i] = field
	}
	return errs
}

// Known string values of Config fields.
var (
	knownSharing       = []SharingScheme{NoSharing, Cycle, Sequence, MiddleCycle, MiddleSequence}
	knownKVStrategies  = []KVStrategy{RecursionWiseKV, SharedKV, SharedKVUpdate}
	knownDTypes        = []string{"float32", "bfloat16", "float16"}
	knownArchitectures = []string{"linear", "mlp", "wide-mlp"}
	knownScoreFuncs    = map[routers.Kind][]string{
		routers.ExpertChoice: {"sigmoid", "tanh", "none"},
		routers.TokenChoice:  {"softmax", "sigmoid"},
	}
)

// Validate checks every field before a graph is built. It returns nil or a
// *ValidationError that lists each invalid field with its value and a fix.
func (c Config) Validate() error {
	v := &validator{}
	v.checkSizes(c)
	v.checkAttentionShape(c)
	v.checkNumerics(c)
	v.checkDType(c)
	v.checkSharing(c)
	v.checkRouter(c)
	v.checkKVStrategy(c)
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Name: c.Name, Fields: v.errs}
}

// validator collects field errors.
type validator struct {
	errs []*FieldError
}

func (v *validator) add(field string, value any, problem, fix string) {
	v.errs = append(v.errs, &FieldError{Field: field, Value: value, Problem: problem, Fix: fix})
}

// checkSizes requires every integer size to be positive.
func (v *validator) checkSizes(c Config) {
	sizes := []struct {
		field string
		value int
	}{
		{"vocab_size", c.VocabSize},
		{"d_model", c.DModel},
		{"num_heads", c.NumHeads},
		{"num_kv_heads", c.NumKVHeads},
		{"head_dim", c.HeadDim},
		{"ffn_size", c.FFNSize},
		{"num_layers", c.NumLayers},
		{"max_seq_len", c.MaxSeqLen},
	}
	for _, size := range sizes {
		if size.value <= 0 {
			v.add(size.field, size.value, "is not positive", "set it to a positive integer")
		}
	}
}

// checkAttentionShape checks the head layout of grouped-query attention.
func (v *validator) checkAttentionShape(c Config) {
	if c.DModel <= 0 || c.NumHeads <= 0 || c.NumKVHeads <= 0 || c.HeadDim <= 0 {
		return
	}
	if c.DModel%c.NumHeads != 0 {
		v.add("num_heads", c.NumHeads, fmt.Sprintf("does not divide d_model = %d", c.DModel),
			"choose num_heads so that d_model / num_heads is an integer (the head dimension)")
	} else if c.NumHeads*c.HeadDim != c.DModel {
		v.add("head_dim", c.HeadDim, fmt.Sprintf("times num_heads = %d is %d, not d_model = %d", c.NumHeads, c.NumHeads*c.HeadDim, c.DModel),
			fmt.Sprintf("set head_dim to d_model / num_heads = %d", c.DModel/c.NumHeads))
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		v.add("num_kv_heads", c.NumKVHeads, fmt.Sprintf("does not divide num_heads = %d", c.NumHeads),
			"choose num_kv_heads so that each key/value head serves the same number of query heads")
	}
	if c.HeadDim%2 != 0 {
		v.add("head_dim", c.HeadDim, "is odd", "use an even head_dim, because RoPE rotates pairs of dimensions")
	}
}

// checkNumerics requires the float hyper-parameters to be positive and finite.
func (v *validator) checkNumerics(c Config) {
	values := []struct {
		field string
		value float64
	}{
		{"rope_theta", c.RoPETheta},
		{"norm_epsilon", c.NormEpsilon},
		{"init_std", c.InitStd},
	}
	for _, value := range values {
		if !(value.value > 0) || math.IsInf(value.value, 0) {
			v.add(value.field, value.value, "is not a positive finite number", "set it to a positive value (presets use rope_theta 10000, norm_epsilon 1e-5, init_std 0.02)")
		}
	}
}

func (v *validator) checkDType(c Config) {
	if !slices.Contains(knownDTypes, c.DType) {
		v.add("dtype", quote(c.DType), "is not a known dtype", "use one of "+quoteAll(knownDTypes))
	}
}

// checkSharing checks N_r and that the number of layers fits the sharing scheme.
func (v *validator) checkSharing(c Config) {
	if c.NumRecursions <= 0 {
		v.add("num_recursions", c.NumRecursions, "is not positive", "set N_r ≥ 1 (1 for a vanilla model)")
		return
	}
	if !slices.Contains(knownSharing, c.Sharing) {
		v.add("sharing", quote(string(c.Sharing)), "is not a known sharing scheme", "use one of "+quoteAll(knownSharing))
		return
	}
	if c.NumLayers <= 0 {
		return
	}

	n, r := c.NumLayers, c.NumRecursions
	switch c.Sharing {
	case NoSharing:
		if r != 1 {
			v.add("num_recursions", r, `needs a sharing scheme, but sharing is "none"`,
				`set num_recursions to 1 for a vanilla model, or choose sharing "middle-cycle" or "cycle"`)
		}
	case Cycle, Sequence:
		if n%r != 0 {
			v.add("num_layers", n, fmt.Sprintf("is not divisible by num_recursions = %d, as %s sharing requires", r, c.Sharing),
				"use num_layers = "+cycleDepthSuggestion(n, r))
		}
	case MiddleCycle, MiddleSequence:
		if n-2 < r || (n-2)%r != 0 {
			v.add("num_layers", n, fmt.Sprintf("minus the 2 unique layers is not a positive multiple of num_recursions = %d, as %s sharing requires", r, c.Sharing),
				fmt.Sprintf("use num_layers = 2 + K_b·N_r with K_b ≥ 1, e.g. %s", middleDepthSuggestion(n, r)))
		}
	}
}

// cycleDepthSuggestion returns the multiples of r nearest to n.
func cycleDepthSuggestion(n, r int) string {
	below, above := n/r*r, (n/r+1)*r
	if below == 0 {
		return fmt.Sprint(above)
	}
	return fmt.Sprintf("%d or %d", below, above)
}

// middleDepthSuggestion returns the valid Middle-* depths nearest to n.
func middleDepthSuggestion(n, r int) string {
	above := middleCycleDepth(max(n, r+2), r)
	below := (n-2)/r*r + 2
	if below < r+2 || below == above {
		return fmt.Sprint(above)
	}
	return fmt.Sprintf("%d or %d", below, above)
}

// checkRouter checks the router against the sharing scheme and its own options.
func (v *validator) checkRouter(c Config) {
	router := c.Router
	if router == nil {
		return
	}
	switch c.Sharing {
	case NoSharing:
		v.add("router", quote(string(router.Kind)), `is set, but sharing is "none" and there is no recursion to route`,
			`remove "router" for a vanilla model, or use sharing "middle-cycle" with num_recursions ≥ 2`)
	case Sequence, MiddleSequence:
		v.add("router", quote(string(router.Kind)), fmt.Sprintf("is set, but routing is not defined for %s sharing, which has no recursion block", c.Sharing),
			`use sharing "middle-cycle" or "cycle" for a MoR model, or remove "router"`)
	}

	scoreFuncs, knownKind := knownScoreFuncs[router.Kind]
	if !knownKind {
		v.add("router.kind", quote(string(router.Kind)), "is not a known router kind",
			fmt.Sprintf("use %q or %q", routers.ExpertChoice, routers.TokenChoice))
	}
	if !slices.Contains(knownArchitectures, router.Architecture) {
		v.add("router.architecture", quote(router.Architecture), "is not a known router architecture", "use one of "+quoteAll(knownArchitectures))
	}
	if knownKind && !slices.Contains(scoreFuncs, router.ScoreFunc) {
		v.add("router.score_func", quote(router.ScoreFunc), fmt.Sprintf("is not a score function of %s routing", router.Kind), "use one of "+quoteAll(scoreFuncs))
	}
	if !(router.Alpha > 0) || math.IsInf(router.Alpha, 0) {
		v.add("router.alpha", router.Alpha, "is not a positive finite number", "set the gate scale α > 0 (0.1 for expert-choice, 1 for token-choice)")
	}
	if !(router.Temperature > 0) || math.IsInf(router.Temperature, 0) {
		v.add("router.temperature", router.Temperature, "is not a positive finite number", "set the router temperature T > 0 (1 in the paper)")
	}
	v.checkCapacities(c)
	v.checkRouterOptions(c)
}

// checkRouterOptions runs the router package's own validation, which also
// covers the loss coefficients and warm-ups. It runs only when the checks
// above found nothing, so that one problem is not reported twice.
func (v *validator) checkRouterOptions(c Config) {
	for _, err := range v.errs {
		if strings.HasPrefix(err.Field, "router") {
			return
		}
	}
	if c.NumRecursions <= 0 {
		return
	}
	if err := c.Router.Validate(c.NumRecursions); err != nil {
		v.errs = append(v.errs, &FieldError{Field: "router", Problem: strings.TrimPrefix(err.Error(), "routers: ")})
	}
}

// checkCapacities checks the expert-choice capacities β_r.
func (v *validator) checkCapacities(c Config) {
	capacities := c.Router.Capacities
	if len(capacities) == 0 {
		return
	}
	if c.Router.Kind == routers.TokenChoice {
		v.add("router.capacities", capacities, "are set, but token-choice routing has no capacities",
			"remove router.capacities; token-choice assigns each token a depth up front")
		return
	}
	if c.NumRecursions > 0 && len(capacities) != c.NumRecursions {
		v.add("router.capacities", capacities, fmt.Sprintf("has %d entries, not num_recursions = %d", len(capacities), c.NumRecursions),
			"give one capacity β_r per recursion step, or omit it for the default (N_r − r + 1)/N_r")
	}
	for i, capacity := range capacities {
		if !(capacity > 0 && capacity <= 1) {
			v.add(fmt.Sprintf("router.capacities[%d]", i), capacity, "is outside (0, 1]",
				"give each β_r as the fraction of the sequence processed at step r, with 0 < β_r ≤ 1")
		}
		if i > 0 && capacity > capacities[i-1] {
			v.add(fmt.Sprintf("router.capacities[%d]", i), capacity, fmt.Sprintf("is larger than the capacity of the step before, %v", capacities[i-1]),
				"make the capacities non-increasing, because step r selects among the tokens of step r − 1")
		}
	}
}

// checkKVStrategy checks that recursive KV sharing has a recursion block whose
// first step processes every token, because later steps reuse the step-1
// keys and values. The Recursive baseline and MoR models qualify.
func (v *validator) checkKVStrategy(c Config) {
	if !slices.Contains(knownKVStrategies, c.KV) {
		v.add("kv_strategy", quote(string(c.KV)), "is not a known KV strategy", "use one of "+quoteAll(knownKVStrategies))
		return
	}
	if c.KV == RecursionWiseKV {
		return
	}
	if c.Sharing != Cycle && c.Sharing != MiddleCycle {
		v.add("kv_strategy", quote(string(c.KV)), fmt.Sprintf("needs a recursion block, but sharing %q has none", c.Sharing),
			`set kv_strategy to "recursion-wise", or use sharing "middle-cycle" or "cycle"`)
		return
	}
	if c.Router == nil || c.Router.Kind != routers.ExpertChoice {
		return
	}
	capacities := c.Router.Capacities
	if len(capacities) > 0 && capacities[0] < 1 {
		v.add("router.capacities[0]", capacities[0], "is below 1, but recursive KV sharing reuses the step-1 keys and values of every token",
			`set β_1 = 1, or set kv_strategy to "recursion-wise"`)
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// quoteAll formats values as a quoted, comma-separated list.
func quoteAll[S ~string](values []S) string {
	quoted := make([]string, len(values))
	for i, value := range values {
		quoted[i] = quote(string(value))
	}
	return strings.Join(quoted, ", ")
}
