package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/gomor/gomor/backend"
	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/routers"
)

func init() {
	register(command{
		name:    "describe",
		summary: "print a model's layer map, parameter counts and FLOPs per token",
		run:     runDescribe,
	})
}

// describeFlags are the options of `mor describe`.
type describeFlags struct {
	preset        string
	configPath    string
	asJSON        bool
	list          bool
	variables     bool
	contextLength int
	budget        float64
	tokensPerStep int64
}

func parseDescribeFlags(args []string, output io.Writer) (describeFlags, error) {
	var opts describeFlags
	flags := flag.NewFlagSet("describe", flag.ContinueOnError)
	flags.SetOutput(output)

	flags.StringVar(&opts.preset, "preset", "", "name of a preset model, e.g. mor-ec-360m-r3 (see --list)")
	flags.StringVar(&opts.configPath, "config", "", `path of a JSON model config; it may start from a preset with "base": "<preset>"`)
	flags.BoolVar(&opts.asJSON, "json", false, "print one JSON object instead of text")
	flags.BoolVar(&opts.list, "list", false, "list the preset names and exit")
	flags.BoolVar(&opts.variables, "variables", false, "also build the model graph on the pure Go backend (no weights are allocated) and print its variable tree; not with --json")
	flags.IntVar(&opts.contextLength, "context", 0, "context length N_ctx in tokens for the FLOPs counts; 0 means the model's max_seq_len (the paper uses 2048); mor train counts at its --seq-len, so pass the same value to match its step counts")
	flags.Float64Var(&opts.budget, "budget", 0, "forward-FLOPs budget, e.g. 16.5e18, to convert into training tokens (and steps with --tokens-per-step); 0 skips it")
	flags.Int64Var(&opts.tokensPerStep, "tokens-per-step", 0, "tokens per optimizer step (batch size × sequence length) for --budget, e.g. 2097152; 0 skips the step count")

	flags.Usage = func() {
		fmt.Fprintf(output, "Usage: mor describe (--preset NAME | --config FILE | --list) [flags]\n\n"+
			"Prints the unrolled-to-unique layer map, the Prefix/Block×N_r/Suffix layout, the\n"+
			"parameter counts, the per-step capacities and the forward FLOPs per token, both by\n"+
			"the MoR paper's accounting rule and as this implementation executes them.\n\nFlags:\n")
		flags.PrintDefaults()
	}

	if err := flags.Parse(args); err != nil {
		return opts, err
	}
	if flags.NArg() > 0 {
		return opts, fmt.Errorf("unexpected argument %q; pass the model with --preset or --config", flags.Arg(0))
	}
	if !opts.list && (opts.preset == "") == (opts.configPath == "") {
		return opts, errors.New("give exactly one of --preset NAME and --config FILE, or --list")
	}
	if opts.variables && opts.asJSON {
		return opts, errors.New("--variables prints a table; use it without --json")
	}
	if opts.contextLength < 0 || opts.budget < 0 || opts.tokensPerStep < 0 {
		return opts, errors.New("--context, --budget and --tokens-per-step must not be negative")
	}
	return opts, nil
}

func runDescribe(args []string) error {
	return describe(args, os.Stdout, os.Stderr)
}

// describe runs `mor describe` with its output and its usage text going to the given writers.
func describe(args []string, stdout, stderr io.Writer) error {
	opts, err := parseDescribeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	if opts.list {
		for _, name := range mor.PresetNames() {
			fmt.Fprintln(stdout, name)
		}
		return nil
	}

	config, err := loadDescribedConfig(opts)
	if err != nil {
		return err
	}
	if err := config.Validate(); err != nil {
		return err
	}

	description := describeModel(config, opts)
	if opts.asJSON {
		encoder := json.NewEncoder(stdout)
		encoder.SetIndent("", "  ")
		return encoder.Encode(description)
	}
	writeDescription(stdout, description)
	if opts.variables {
		return writeVariableTree(stdout, config)
	}
	return nil
}

// writeVariableTree builds the forward graph of c for one short sequence and
// prints the variables it creates. Compiling creates them with their shapes
// without allocating their values, so the 1.7B model needs no weight memory.
func writeVariableTree(w io.Writer, c mor.Config) error {
	goBackend, err := backend.NewWithConfig("go")
	if err != nil {
		return fmt.Errorf("starting the pure Go backend for --variables failed: %w", err)
	}
	store := model.NewStore()
	exec, err := model.NewExec(goBackend, store, func(scope *model.Scope, tokens *graph.Node) *graph.Node {
		return mor.Forward(scope, c, tokens, mor.ForwardOptions{Training: true}).Logits
	})
	if err != nil {
		return fmt.Errorf("building the model graph failed: %w", err)
	}
	defer exec.Finalize()

	length := min(8, c.MaxSeqLen)
	if _, err := exec.Compile(shapes.Make(dtypes.Int32, 1, length)); err != nil {
		return fmt.Errorf("building the model graph failed: %w", err)
	}
	fmt.Fprintf(w, "\nVariables (built in training mode, so auxiliary routers appear when enabled):\n%s", mor.VariableTree(store))
	return nil
}

func loadDescribedConfig(opts describeFlags) (mor.Config, error) {
	if opts.preset != "" {
		return mor.Preset(opts.preset)
	}
	return mor.LoadConfig(opts.configPath)
}

// modelDescription is the accounting that `mor describe` prints, and in its JSON form the --json output.
type modelDescription struct {
	Name   string     `json:"name"`
	Config mor.Config `json:"config"`

	LayerMap    []int  `json:"layer_map"`
	Layout      layout `json:"layout"`
	UniqueCount int    `json:"unique_layers"`

	NonEmbeddingParams int64 `json:"non_embedding_params"`
	EmbeddingParams    int64 `json:"embedding_params"`
	FinalNormParams    int64 `json:"final_norm_params"`
	RouterParams       int64 `json:"router_params"`
	TotalParams        int64 `json:"total_params"`
	LayerParams        int64 `json:"params_per_layer"`

	ContextLength         int           `json:"context_length"`
	Capacities            []float64     `json:"capacities"`
	StepTokens            []int         `json:"step_tokens"`
	ForwardFLOPsPerToken  float64       `json:"forward_flops_per_token"`
	ExecutedFLOPsPerToken executedFLOPs `json:"executed_flops_per_token"`
	// ExecutedMaskedFLOPsPerToken is the executed cost on the expert-choice
	// masked path (causal routing, reference runs, capacity warm-up), nil
	// for other models.
	ExecutedMaskedFLOPsPerToken *executedFLOPs     `json:"executed_masked_flops_per_token,omitempty"`
	Layers                      []layerDescription `json:"layers"`

	Budget *budgetDescription `json:"budget,omitempty"`
}

type layout struct {
	Prefix        []int `json:"prefix"`
	Block         []int `json:"block"`
	Suffix        []int `json:"suffix"`
	NumRecursions int   `json:"num_recursions"`
}

type executedFLOPs struct {
	Projections float64 `json:"projections"`
	Attention   float64 `json:"attention"`
	Routers     float64 `json:"routers"`
	LMHead      float64 `json:"lm_head"`
	Forward     float64 `json:"forward"`
	Training    float64 `json:"training"`
}

type layerDescription struct {
	Layer           int     `json:"layer"`
	UniqueLayer     int     `json:"unique_layer"`
	WeightsScope    string  `json:"weights_scope"`
	NormsScope      string  `json:"norms_scope"`
	Step            int     `json:"step"`
	Capacity        float64 `json:"capacity"`
	AttentionFactor float64 `json:"attention_factor"`
	ReusesKV        bool    `json:"reuses_kv"`
	FLOPsPerToken   float64 `json:"forward_flops_per_token"`
}

type budgetDescription struct {
	FLOPs         float64 `json:"flops"`
	Tokens        int64   `json:"tokens"`
	TokensPerStep int64   `json:"tokens_per_step,omitempty"`
	Steps         int64   `json:"steps,omitempty"`
}

func toExecutedFLOPs(flops mor.ExecutedFLOPs) executedFLOPs {
	return executedFLOPs{
		Projections: flops.Projections, Attention: flops.Attention, Routers: flops.Routers,
		LMHead: flops.LMHead, Forward: flops.Forward, Training: flops.Training,
	}
}

// describeModel gathers the accounting of a valid config.
func describeModel(c mor.Config, opts describeFlags) modelDescription {
	flopsOptions := mor.FLOPsOptions{ContextLength: opts.contextLength}
	contextLength := opts.contextLength
	if contextLength == 0 {
		contextLength = c.MaxSeqLen
	}
	params := mor.CountParams(c)
	executed := mor.ExecutedFLOPsPerToken(c, flopsOptions)
	plan := c.Layout()

	d := modelDescription{
		Name:                  c.Name,
		Config:                c,
		LayerMap:              c.LayerMap(),
		Layout:                layout{Prefix: plan.Prefix, Block: plan.Block, Suffix: plan.Suffix, NumRecursions: plan.NumRecursions},
		UniqueCount:           c.NumUniqueLayers(),
		NonEmbeddingParams:    params.NonEmbedding,
		EmbeddingParams:       params.Embedding,
		FinalNormParams:       params.FinalNorm,
		RouterParams:          params.Router,
		TotalParams:           params.Total,
		LayerParams:           mor.LayerParams(c),
		ContextLength:         contextLength,
		Capacities:            mor.StepCapacities(c),
		StepTokens:            mor.StepTokenCounts(c, contextLength),
		ForwardFLOPsPerToken:  mor.ForwardFLOPsPerToken(c, flopsOptions),
		ExecutedFLOPsPerToken: toExecutedFLOPs(executed),
	}
	if c.Router != nil && c.Router.Kind == routers.ExpertChoice {
		masked := toExecutedFLOPs(mor.ExecutedFLOPsPerToken(c, mor.FLOPsOptions{ContextLength: opts.contextLength, MaskedPath: true}))
		d.ExecutedMaskedFLOPsPerToken = &masked
	}
	scopes := make(map[int]mor.SharingEntry)
	for _, entry := range mor.SharingMap(c) {
		scopes[entry.Unrolled] = entry
	}
	for _, layer := range mor.PaperFLOPsBreakdown(c, flopsOptions) {
		d.Layers = append(d.Layers, layerDescription{
			Layer: layer.Layer, UniqueLayer: layer.UniqueLayer,
			WeightsScope: scopes[layer.Layer].Weights, NormsScope: scopes[layer.Layer].Norms,
			Step: layer.Step, Capacity: layer.Capacity, AttentionFactor: layer.AttentionFactor,
			ReusesKV: layer.ReusesKV, FLOPsPerToken: layer.Total(),
		})
	}
	if opts.budget > 0 {
		d.Budget = &budgetDescription{FLOPs: opts.budget, Tokens: mor.TokensForBudget(c, opts.budget, opts.contextLength)}
		if opts.tokensPerStep > 0 {
			d.Budget.TokensPerStep = opts.tokensPerStep
			d.Budget.Steps = mor.StepsForBudget(c, opts.budget, opts.tokensPerStep, opts.contextLength)
		}
	}
	return d
}

// writeDescription prints the human-readable form of d.
func writeDescription(w io.Writer, d modelDescription) {
	c := d.Config
	fmt.Fprintf(w, "%s\n", describeArchitecture(c))
	fmt.Fprintf(w, "  d_model %d, %d heads (%d KV heads) × head_dim %d, FFN %d, vocabulary %d, max_seq_len %d, dtype %s\n\n",
		c.DModel, c.NumHeads, c.NumKVHeads, c.HeadDim, c.FFNSize, c.VocabSize, c.MaxSeqLen, c.DType)

	fmt.Fprintf(w, "Layout: %s\n", describeLayout(d))
	fmt.Fprintf(w, "  %d unrolled layers, %d unique\n\n", len(d.LayerMap), d.UniqueCount)

	fmt.Fprintf(w, "Parameters:\n")
	fmt.Fprintf(w, "  non-embedding  %s (%d)  unique decoder layers, as the paper counts them\n", formatCount(float64(d.NonEmbeddingParams), "B"), d.NonEmbeddingParams)
	fmt.Fprintf(w, "  embedding      %s (%d)\n", formatCount(float64(d.EmbeddingParams), "B"), d.EmbeddingParams)
	fmt.Fprintf(w, "  final norm     %d\n", d.FinalNormParams)
	fmt.Fprintf(w, "  router         %s (%d)\n", formatCount(float64(d.RouterParams), "B"), d.RouterParams)
	fmt.Fprintf(w, "  total          %s (%d)\n\n", formatCount(float64(d.TotalParams), "B"), d.TotalParams)

	if c.Router != nil {
		fmt.Fprintf(w, "Capacities per recursion step (N_ctx = %d%s):\n", d.ContextLength, balancedNote(c))
		for r, beta := range d.Capacities {
			fmt.Fprintf(w, "  step %d  β = %.4f  k = %d tokens\n", r+1, beta, d.StepTokens[r])
		}
		fmt.Fprintln(w)
	}

	e := d.ExecutedFLOPsPerToken
	fmt.Fprintf(w, "Forward FLOPs per token (N_ctx = %d):\n", d.ContextLength)
	fmt.Fprintf(w, "  paper rule  %s\n", formatCount(d.ForwardFLOPsPerToken, "G"))
	fmt.Fprintf(w, "  executed    %s = projections %s + attention %s + routers %s + LM head %s\n",
		formatCount(e.Forward, "G"), formatCount(e.Projections, "G"), formatCount(e.Attention, "G"), formatCount(e.Routers, "G"), formatCount(e.LMHead, "G"))
	if masked := d.ExecutedMaskedFLOPsPerToken; masked != nil {
		fmt.Fprintf(w, "  masked      %s executed on the masked path (causal routing, reference runs, capacity warm-up)\n", formatCount(masked.Forward, "G"))
	}
	fmt.Fprintf(w, "  training    %s (3 × executed forward)\n\n", formatCount(e.Training, "G"))

	if d.Budget != nil {
		fmt.Fprintf(w, "Budget %.4g forward FLOPs: %s tokens", d.Budget.FLOPs, formatCount(float64(d.Budget.Tokens), "B"))
		if d.Budget.Steps > 0 {
			fmt.Fprintf(w, ", %d steps of %d tokens", d.Budget.Steps, d.Budget.TokensPerStep)
		}
		fmt.Fprintf(w, "\n\n")
	}

	writeLayerTable(w, d)
}

// describeArchitecture returns the first line: name, sharing, N_r, routing and KV strategy.
func describeArchitecture(c mor.Config) string {
	name := c.Name
	if name == "" {
		name = "(unnamed config)"
	}
	if c.Sharing == mor.NoSharing {
		return name + ": vanilla transformer, no sharing"
	}

	parts := []string{fmt.Sprintf("%s sharing with N_r = %d", c.Sharing, c.NumRecursions)}
	if c.Router == nil {
		parts = append(parts, "no router (every token runs every step)")
	} else {
		parts = append(parts, fmt.Sprintf("%s routing (%s router, %s, α = %g, T = %g)",
			c.Router.Kind, c.Router.Architecture, c.Router.ScoreFunc, c.Router.Alpha, c.Router.Temperature))
		parts = append(parts, fmt.Sprintf("%s KV caching", c.KV))
	}
	return name + ": " + strings.Join(parts, ", ")
}

// describeLayout writes "Prefix [0] → Block [1..10] × 3 → Suffix [11] (1+10+1)".
func describeLayout(d modelDescription) string {
	l := d.Layout
	if len(l.Block) == 0 {
		return fmt.Sprintf("%d layers in sequence, unique indices %v", len(l.Prefix), l.Prefix)
	}
	var parts []string
	if len(l.Prefix) > 0 {
		parts = append(parts, fmt.Sprintf("Prefix %s", formatIndices(l.Prefix)))
	}
	parts = append(parts, fmt.Sprintf("Block %s × %d", formatIndices(l.Block), l.NumRecursions))
	if len(l.Suffix) > 0 {
		parts = append(parts, fmt.Sprintf("Suffix %s", formatIndices(l.Suffix)))
	}
	return fmt.Sprintf("%s  (%d+%d+%d)", strings.Join(parts, " → "), len(l.Prefix), len(l.Block), len(l.Suffix))
}

// formatIndices writes consecutive indices as a range, [1..10].
func formatIndices(indices []int) string {
	consecutive := true
	for i := 1; i < len(indices); i++ {
		consecutive = consecutive && indices[i] == indices[i-1]+1
	}
	if consecutive && len(indices) > 2 {
		return fmt.Sprintf("[%d..%d]", indices[0], indices[len(indices)-1])
	}
	return fmt.Sprint(indices)
}

// writeLayerTable prints the unrolled-to-unique layer map with the paper-rule cost of each layer.
func writeLayerTable(w io.Writer, d modelDescription) {
	fmt.Fprintf(w, "Layer map (unrolled → unique, with the variable scopes each layer reads) and paper-rule FLOPs per token:\n")
	table := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(table, "layer\tunique\tweights\tnorms\tstep\tcapacity\tattention factor\tFLOPs/token\t")
	for _, layer := range d.Layers {
		step := "-"
		if layer.Step > 0 {
			step = fmt.Sprint(layer.Step)
		}
		factor := fmt.Sprintf("%.4f", layer.AttentionFactor)
		if layer.ReusesKV {
			factor += " (step-1 KV)"
		}
		fmt.Fprintf(table, "%d\t%d\t%s\t%s\t%s\t%.4f\t%s\t%s\t\n",
			layer.Layer, layer.UniqueLayer, layer.WeightsScope, layer.NormsScope, step, layer.Capacity, factor, formatCount(layer.FLOPsPerToken, "G"))
	}
	table.Flush()
}

// formatCount formats x with a K, M, billion or T suffix: one decimal below
// 1e9 and two from 1e9. The billion suffix is "B" for parameter counts and
// "G" for FLOPs.
func formatCount(x float64, billion string) string {
	switch {
	case x >= 1e12:
		return fmt.Sprintf("%.2fT", x/1e12)
	case x >= 1e9:
		return fmt.Sprintf("%.2f%s", x/1e9, billion)
	case x >= 1e6:
		return fmt.Sprintf("%.1fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fK", x/1e3)
	default:
		return fmt.Sprintf("%.0f", x)
	}
}

// balancedNote marks token-choice capacities, which are the loads of perfectly balanced routing.
func balancedNote(c mor.Config) string {
	if c.Router != nil && c.Router.Kind == routers.TokenChoice {
		return ", token-choice loads if perfectly balanced"
	}
	return ""
}
