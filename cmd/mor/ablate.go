package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"

	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/training"
)

func init() {
	register(command{
		name:    "ablate",
		summary: "train and evaluate a named suite of models at one forward-FLOPs budget and tabulate them",
		run:     runAblate,
	})
}

type ablateFlags struct {
	train  trainFlags
	suite  string
	flops  float64
	out    string
	only   string
	resume bool
}

func parseAblateFlags(args []string) (ablateFlags, error) {
	var f ablateFlags
	flags := flag.NewFlagSet("ablate", flag.ContinueOnError)
	addTrainingFlags(flags, &f.train)
	flags.StringVar(&f.suite, "suite", "", "suite name (required): "+strings.Join(training.AblationSuiteNames(), ", "))
	flags.Float64Var(&f.flops, "flops", 0, "forward-FLOPs budget of every model (MoR paper rule, e.g. 2e14); each model trains for budget / (FLOPs per token × tokens per step) steps (required)")
	flags.StringVar(&f.out, "out", "", "folder for one run directory per model, the shared packed data and ablation.md / ablation.json; empty means runs/ablate-<suite>-<UTC time>")
	flags.StringVar(&f.only, "only", "", "comma-separated presets of the suite to run; empty runs all")
	flags.BoolVar(&f.resume, "resume", false, "reuse finished models in --out and resume unfinished ones from their checkpoints")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: mor ablate --suite NAME --flops BUDGET [flags]

Trains every model of a suite at the same forward-FLOPs budget (the MoR paper's accounting
rule), so a cheaper model sees more tokens, evaluates each one, and writes a comparison table
(ablation.md and ablation.json) with non-embedding parameters, FLOPs per token, steps, tokens,
validation NLL, dead-token ratio and wall time. The table is rewritten after each model, and
--resume continues an interrupted suite. The training flags apply to every model, except
--preset and --budget, which come from --suite and --flops and are rejected here.

Suite paper-tiny mirrors Table 3 of the MoR paper at tiny scale: vanilla, recursive N_r = 2
and 3, MoR expert-choice N_r = 2 and 3, MoR token-choice N_r = 3 and MoR expert-choice with
recursive KV sharing. Use it with --data $GOMOR_DATA/gutenberg.

Flags:
`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return f, err
	}
	if flags.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q; run `mor ablate --help`", flags.Args())
	}
	var perModel []string
	flags.Visit(func(set *flag.Flag) {
		if set.Name == "preset" || set.Name == "budget" {
			perModel = append(perModel, "--"+set.Name)
		}
	})
	if len(perModel) > 0 {
		return f, fmt.Errorf("invalid %s: mor ablate takes each model's preset from --suite and its budget from --flops; remove %s", strings.Join(perModel, " and "), strings.Join(perModel, " and "))
	}
	if f.suite == "" {
		return f, fmt.Errorf("missing --suite: use one of %s", strings.Join(training.AblationSuiteNames(), ", "))
	}
	if _, err := training.AblationSuite(f.suite); err != nil {
		return f, fmt.Errorf("invalid --suite: %w", err)
	}
	if !(f.flops > 0) || math.IsInf(f.flops, 0) {
		return f, fmt.Errorf("invalid --flops %g: give the forward-FLOPs budget of each model, e.g. --flops 2e14", f.flops)
	}
	f.train.budget = strconv.FormatFloat(f.flops, 'g', -1, 64) + string(training.BudgetFLOPs)
	return f, f.train.validate()
}

func runAblate(args []string) error {
	f, err := parseAblateFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	variants, _ := training.AblationSuite(f.suite)
	variants, err = selectVariants(variants, f.only)
	if err != nil {
		return err
	}
	if f.out == "" {
		f.out = filepath.Join("runs", "ablate-"+f.suite+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	if f.train.packDir == "" {
		f.train.packDir = filepath.Join(f.out, "data")
	}
	b, backendName, err := newBackend()
	if err != nil {
		return err
	}

	start := time.Now()
	report := training.AblationReport{Suite: f.suite, FLOPsBudget: f.flops, Data: f.train.data, SeqLen: f.train.seqLen,
		TokensPerStep: f.train.batch * f.train.seqLen * f.train.accum, ValidationRows: f.train.evalRows}
	for _, variant := range variants {
		row := runVariant(f, variant, b, backendName)
		report.Rows = append(report.Rows, row)
		report.Provenance = training.NewProvenance(backendName, time.Since(start))
		if err := writeAblation(f.out, report); err != nil {
			return err
		}
	}
	fmt.Printf("Ablation %s at %g forward FLOPs: %d models in %.0f s.\n", f.suite, f.flops, len(report.Rows), time.Since(start).Seconds())
	fmt.Printf("  table: %s\n  json:  %s\n\n", filepath.Join(f.out, "ablation.md"), filepath.Join(f.out, "ablation.json"))
	fmt.Print(report.Markdown())
	return nil
}

func selectVariants(variants []training.AblationVariant, only string) ([]training.AblationVariant, error) {
	if only == "" {
		return variants, nil
	}
	var selected []training.AblationVariant
	for _, preset := range splitList(only) {
		found := false
		for _, v := range variants {
			if v.Preset == preset {
				selected = append(selected, v)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("invalid --only entry %q: not a preset of this suite", preset)
		}
	}
	return selected, nil
}

// runVariant trains and evaluates one model of the suite, or reuses a finished run under --resume.
func runVariant(f ablateFlags, variant training.AblationVariant, b compute.Backend, backendName string) training.AblationRow {
	start := time.Now()
	row := training.AblationRow{Label: variant.Label, Preset: variant.Preset, RunDir: filepath.Join(f.out, variant.Preset)}
	if cfg, err := mor.Preset(variant.Preset); err == nil {
		row.NonEmbedParams = mor.NonEmbeddingParams(cfg)
		row.FLOPsPerToken = mor.ForwardFLOPsPerToken(cfg, mor.FLOPsOptions{ContextLength: f.train.seqLen})
	}

	if f.resume {
		if reused, ok := finishedRow(row); ok {
			slog.Info("reusing finished ablation run", "preset", variant.Preset, "run", row.RunDir)
			return reused
		}
	}
	runFlags := f.train
	runFlags.preset = variant.Preset
	runFlags.runDir = row.RunDir
	runFlags.resume = f.resume && hasCheckpoint(row.RunDir)
	outcome, err := trainAndEvaluate(runFlags, b, backendName, os.Stderr)
	row.WallSeconds = time.Since(start).Seconds()
	if err != nil {
		row.Error = err.Error()
		slog.Error("ablation run failed", "preset", variant.Preset, "run", row.RunDir, "error", err)
		return row
	}
	row.Steps, row.Tokens = outcome.Result.Steps, outcome.Result.TokensSeen
	row.NonEmbedParams, row.FLOPsPerToken = outcome.Info.NonEmbedParams, outcome.Info.FLOPsPerToken
	if outcome.Eval != nil {
		row.RowFromEval(outcome.Eval)
	}
	return row
}

// finishedRow rebuilds a row from a run whose final checkpoint has an eval.json.
func finishedRow(row training.AblationRow) (training.AblationRow, bool) {
	run, err := training.LoadRun(row.RunDir)
	if err != nil || run.Checkpoint.State.Step != run.Checkpoint.State.TotalSteps {
		return row, false
	}
	var report training.EvalReport
	if err := training.ReadJSON(filepath.Join(run.Checkpoint.Dir, training.EvalFile), &report); err != nil {
		return row, false
	}
	row.Steps, row.Tokens = run.Checkpoint.State.Step, run.Checkpoint.State.TokensSeen
	row.NonEmbedParams, row.FLOPsPerToken = run.Info.NonEmbedParams, run.Info.FLOPsPerToken
	row.WallSeconds = run.Info.Provenance.WallSeconds + report.Provenance.WallSeconds
	row.RowFromEval(&report)
	return row, true
}

func hasCheckpoint(runDir string) bool {
	_, err := training.LoadLatestCheckpoint(runDir)
	return err == nil
}

func writeAblation(out string, report training.AblationReport) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := training.WriteJSON(filepath.Join(out, "ablation.json"), report); err != nil {
		return err
	}
	return training.WriteText(filepath.Join(out, "ablation.md"), report.Markdown())
}
