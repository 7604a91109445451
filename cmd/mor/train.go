package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/compute"
	"golang.org/x/term"

	"github.com/gomor/gomor/backend"
	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/training"
)

func init() {
	register(command{
		name:    "train",
		summary: "train a model on a corpus (default: tiny MoR on the shipped corpus), then evaluate it",
		run:     runTrain,
	})
}

// Defaults of `mor train`: a tiny expert-choice MoR with N_r = 3 on the shipped corpus.
const (
	defaultPreset = "mor-ec-tiny-r3"
	defaultSeqLen = 128
	defaultBatch  = 16
	defaultBudget = "150steps"
)

// trainFlags are the flags shared by `mor train` and `mor ablate`.
type trainFlags struct {
	preset, configPath   string
	data, tokenizer      string
	packDir, runDir      string
	valFraction          float64
	textField            string
	seqLen, batch, accum int
	lr                   float64
	schedule             string
	warmup, decay        float64
	minLRRatio           float64
	weightDecay, clip    float64
	budget               string
	checkpointEvery      int
	keep                 int
	seed                 int64
	resume               bool
	noProgress           bool

	// Evaluation after training.
	noEval    bool
	evalRows  int
	evalBatch int
	tasks     string
	limit     int
}

// addTrainingFlags registers every training flag on flags; ablate reuses them.
func addTrainingFlags(flags *flag.FlagSet, f *trainFlags) {
	flags.StringVar(&f.preset, "preset", defaultPreset, "model preset, <family>-<scale>[-r<N_r>][-kvshare], e.g. vanilla-tiny, recursive-tiny-r3, mor-ec-tiny-r3, mor-tc-tiny-r3 (see \"mor describe\")")
	flags.StringVar(&f.configPath, "config", "", "JSON model config file decoded on top of --preset; fields it leaves out keep the preset's values")
	flags.StringVar(&f.data, "data", training.ShippedCorpusName, "training text: \"tinytext\" (the corpus compiled into mor, datasets/tinytext: 8 books to train, 2 to validate), a .txt/.jsonl/.jsonl.zst/.parquet file or folder, a folder with train/ and val/ sub-folders (e.g. $GOMOR_DATA/gutenberg), or a folder packed by \"mor pack\"")
	flags.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer.json file or folder (tokenizer.json, or vocab.json + merges.txt); empty means the 4096-token BPE shipped with tinytext; the model's vocabulary size follows the tokenizer")
	flags.StringVar(&f.packDir, "pack-dir", "", "folder for the packed shards of a raw corpus; empty means <run-dir>/data; a packing of the same corpus, tokenizer and --seq-len is reused")
	flags.Float64Var(&f.valFraction, "val-fraction", 0.05, "fraction of documents held out for validation when the corpus has no val/ folder")
	flags.StringVar(&f.textField, "text-field", "text", "JSONL field or Parquet column holding the text of a --data corpus")
	flags.IntVar(&f.seqLen, "seq-len", defaultSeqLen, "tokens per training row (the context length L)")
	flags.IntVar(&f.batch, "batch", defaultBatch, "rows per micro-batch")
	flags.IntVar(&f.accum, "accum", 1, "micro-batches accumulated per optimiser step (gradient accumulation); tokens per step = batch × seq-len × accum")
	flags.Float64Var(&f.lr, "lr", 3e-3, "peak learning rate of the main AdamW; the auxiliary routers use 10× this")
	flags.StringVar(&f.schedule, "schedule", string(training.WarmupStableDecay), "learning-rate schedule: wsd (linear warm-up, constant, linear decay to 0), cosine (to --min-lr-ratio × lr) or constant")
	flags.Float64Var(&f.warmup, "warmup", 0.05, "warm-up length as a fraction of the total steps")
	flags.Float64Var(&f.decay, "decay", 0.2, "wsd only: length of the final linear decay as a fraction of the total steps")
	flags.Float64Var(&f.minLRRatio, "min-lr-ratio", 0.1, "cosine only: final learning rate as a fraction of --lr")
	flags.Float64Var(&f.weightDecay, "weight-decay", 0.1, "AdamW weight decay (decoupled); RMSNorm scales and other rank-1 variables are excluded")
	flags.Float64Var(&f.clip, "clip", 1.0, "maximum global L2 norm of the gradient; 0 disables clipping")
	flags.StringVar(&f.budget, "budget", defaultBudget, "training length: a number followed by steps, tokens or flops (forward FLOPs by the MoR paper's rule, so models of different cost get different step counts), e.g. 300steps, 2e6tokens, 5e13flops")
	flags.IntVar(&f.checkpointEvery, "checkpoint-every", 50, "optimiser steps between checkpoints; 0 writes one only at the end (a killed run loses the steps since the last one)")
	flags.IntVar(&f.keep, "keep", 2, "number of newest checkpoints kept (at least 2)")
	flags.Int64Var(&f.seed, "seed", 1, "seed of the initialisation, the model's random draws and the data order")
	flags.BoolVar(&f.noProgress, "no-progress", false, "draw no progress bar and log no periodic step lines (without a terminal, a line is logged every 10% of the steps in place of the bar)")
	flags.BoolVar(&f.noEval, "no-eval", false, "skip the evaluation after training")
	flags.IntVar(&f.evalRows, "eval-rows", 64, "validation rows (of --seq-len tokens) for the NLL; 0 means the whole val split")
	flags.IntVar(&f.evalBatch, "eval-batch", 16, "rows per evaluation batch")
	flags.StringVar(&f.tasks, "tasks", "", "comma-separated evaluation tasks run after training (e.g. blimp,piqa); they read $GOMOR_DATA/eval; empty runs none")
	flags.IntVar(&f.limit, "limit", 0, "evaluate only the first N items of each task (of each paradigm for BLiMP); 0 means all")
}

func parseTrainFlags(args []string) (trainFlags, error) {
	var f trainFlags
	flags := flag.NewFlagSet("train", flag.ContinueOnError)
	addTrainingFlags(flags, &f)
	flags.StringVar(&f.runDir, "run-dir", "", "folder for run.json, metrics.jsonl and checkpoints/ (eval.json goes beside the last checkpoint); empty means runs/<preset>-<UTC time>")
	flags.BoolVar(&f.resume, "resume", false, "continue the run in --run-dir from its newest complete checkpoint, with the same flags")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: mor train [flags]

Trains a model and evaluates it. With no flags it trains a tiny expert-choice MoR (N_r = 3) on
the corpus shipped with the repository and prints where the metrics, checkpoints and
evaluation are. Metrics of every step go to <run-dir>/metrics.jsonl; checkpoints hold the
weights, the optimiser state, the data position and the RNG state, so --resume continues a
run exactly. The run stops with an error on a NaN or infinite loss and keeps its last good
checkpoint.

Flags:
`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return f, err
	}
	if flags.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q: every setting is a flag; run `mor train --help`", flags.Args())
	}
	return f, f.validate()
}

// validate checks the flags that do not need the model or the data.
func (f trainFlags) validate() error {
	switch {
	case f.seqLen < 2:
		return fmt.Errorf("invalid --seq-len %d: use at least 2 tokens", f.seqLen)
	case f.batch < 1:
		return fmt.Errorf("invalid --batch %d: use at least 1 row", f.batch)
	case f.accum < 1:
		return fmt.Errorf("invalid --accum %d: use 1 (no accumulation) or more", f.accum)
	case !(f.lr > 0) || math.IsInf(f.lr, 0):
		return fmt.Errorf("invalid --lr %g: use a positive finite learning rate such as 3e-3", f.lr)
	case f.warmup < 0 || f.warmup > 1:
		return fmt.Errorf("invalid --warmup %g: use a fraction of the steps in [0, 1], e.g. 0.05", f.warmup)
	case f.decay < 0 || f.decay > 1:
		return fmt.Errorf("invalid --decay %g: use a fraction of the steps in [0, 1], e.g. 0.2", f.decay)
	case f.checkpointEvery < 0:
		return fmt.Errorf("invalid --checkpoint-every %d: use 0 (end only) or a positive number of steps", f.checkpointEvery)
	case f.evalRows < 0:
		return fmt.Errorf("invalid --eval-rows %d: use 0 (all) or a positive number of rows", f.evalRows)
	}
	switch training.ScheduleKind(f.schedule) {
	case training.WarmupStableDecay, training.Cosine, training.Constant:
	default:
		return fmt.Errorf("invalid --schedule %q: use wsd, cosine or constant", f.schedule)
	}
	if _, err := training.ParseBudget(f.budget); err != nil {
		return fmt.Errorf("--budget: %w", err)
	}
	return validateTaskNames(f.tasks)
}

// modelConfig returns the preset with --config decoded on top of it.
func (f trainFlags) modelConfig() (mor.Config, error) {
	cfg, err := mor.Preset(f.preset)
	if err != nil {
		return cfg, fmt.Errorf("invalid --preset: %w", err)
	}
	if f.configPath != "" {
		data, err := os.ReadFile(f.configPath)
		if err != nil {
			return cfg, fmt.Errorf("reading --config: %w", err)
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return cfg, fmt.Errorf("invalid --config %s: %w", f.configPath, err)
		}
	}
	return cfg, nil
}

// dataSpec resolves --pack-dir and turns the paths absolute, so that run.json stays valid from
// any working directory. An empty --tokenizer means the shipped corpus's tokenizer.
func (f trainFlags) dataSpec(runDir string) training.DataSpec {
	spec := training.DataSpec{Path: f.data, Tokenizer: f.tokenizer, SeqLen: f.seqLen, PackDir: f.packDir, ValidationFraction: f.valFraction, TextField: f.textField}
	if spec.PackDir == "" {
		spec.PackDir = filepath.Join(runDir, "data")
	}
	spec.PackDir = absolutePath(spec.PackDir)
	if spec.Path != training.ShippedCorpusName {
		spec.Path = absolutePath(spec.Path)
	}
	if spec.Tokenizer != "" && spec.Tokenizer != training.ShippedCorpusName {
		spec.Tokenizer = absolutePath(spec.Tokenizer)
	}
	return spec
}

// absolutePath returns path made absolute, or path itself when the working directory is unknown.
func absolutePath(path string) string {
	if absolute, err := filepath.Abs(path); err == nil {
		return absolute
	}
	return path
}

func runTrain(args []string) error {
	f, err := parseTrainFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.runDir == "" {
		if f.resume {
			return errors.New("--resume needs --run-dir: name the run to continue")
		}
		f.runDir = filepath.Join("runs", f.preset+"-"+time.Now().UTC().Format("20060102-150405"))
	}
	b, backendName, err := newBackend()
	if err != nil {
		return err
	}
	outcome, err := trainAndEvaluate(f, b, backendName, os.Stderr)
	if err != nil {
		return err
	}
	return printOutcome(outcome)
}

// newBackend creates the selected backend and returns it with its configuration name.
func newBackend() (compute.Backend, string, error) {
	b, err := backend.New()
	if err != nil {
		return nil, "", fmt.Errorf("creating the compute backend: %w; set GOMLX_BACKEND=go to use pure Go", err)
	}
	name := "unknown"
	if selection, err := backend.Select(); err == nil {
		name = selection.Config
	}
	return b, name, nil
}

// runOutcome is the result of one train-and-evaluate call.
type runOutcome struct {
	RunDir    string
	Info      training.RunInfo
	Result    *training.Result
	Eval      *training.EvalReport
	EvalPath  string
	TrainWall time.Duration
	TotalWall time.Duration
}

// trainAndEvaluate prepares the data, trains (or resumes), writes run.json and evaluates the
// final checkpoint unless --no-eval.
func trainAndEvaluate(f trainFlags, b compute.Backend, backendName string, progress *os.File) (*runOutcome, error) {
	start := time.Now()
	cfg, err := f.modelConfig()
	if err != nil {
		return nil, err
	}
	spec := f.dataSpec(f.runDir)
	data, err := training.PrepareData(spec, slog.Default())
	if err != nil {
		return nil, err
	}
	defer data.Train.Close()
	defer data.Val.Close()
	cfg = fitConfigToData(cfg, data.Tokenizer.VocabSize(), f.seqLen)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid model config: %w", err)
	}

	source, err := training.NewShardBatches(data.Train, f.batch, uint64(f.seed))
	if err != nil {
		return nil, err
	}
	options := f.trainOptions(cfg, source, b)
	options.Tokenizer = data.Identity
	switch {
	case f.noProgress || progress == nil:
	case term.IsTerminal(int(progress.Fd())):
		options.Progress = progress
	default:
		// Without a terminal the bar's redraws would fill the log, so log every 10% instead.
		options.LogEvery = max(1, totalStepsHint(options)/10)
	}
	totalSteps, err := options.TotalSteps()
	if err != nil {
		return nil, err
	}

	info := training.RunInfo{
		Preset: f.preset, Config: cfg, Data: spec.Path, PackDir: data.PackDir, TokenizerPath: spec.Tokenizer,
		Tokenizer: data.Identity, SeqLen: f.seqLen, BatchSize: f.batch, Accumulation: f.accum,
		Budget: f.budget, TotalSteps: totalSteps, FLOPsPerToken: options.Model.ForwardFLOPsPerToken(f.seqLen),
		NonEmbedParams: mor.NonEmbeddingParams(cfg),
	}
	if err := os.MkdirAll(f.runDir, 0o755); err != nil {
		return nil, err
	}

	// run.json is written before training too, so mor eval can read the checkpoints of a run
	// that was killed; it is rewritten with the training wall time at the end. A fresh run must
	// not overwrite the run.json of an existing run.
	if checkpoint, err := training.LoadLatestCheckpoint(f.runDir); err == nil && !f.resume {
		return nil, fmt.Errorf("run directory %s already has checkpoint %s: pass --resume to continue it or choose another --run-dir", f.runDir, checkpoint.Dir)
	}
	info.Provenance = training.NewProvenance(backendName, time.Since(start))
	if err := training.WriteJSON(filepath.Join(f.runDir, training.RunInfoFile), info); err != nil {
		return nil, err
	}
	slog.Info("training", "run", f.runDir, "preset", f.preset, "backend", backendName, "steps", totalSteps,
		"tokens_per_step", options.TokensPerStep(), "forward_flops_per_token", info.FLOPsPerToken, "resume", f.resume)
	stopSignals := interruptOnSignal(&options)
	result, err := training.Train(options)
	stopSignals()
	if err != nil {
		return nil, err
	}
	outcome := &runOutcome{RunDir: f.runDir, Result: result, TrainWall: time.Since(start)}
	info.Provenance = training.NewProvenance(backendName, outcome.TrainWall)
	outcome.Info = info
	if err := training.WriteJSON(filepath.Join(f.runDir, training.RunInfoFile), info); err != nil {
		return nil, err
	}

	if !f.noEval {
		run, err := training.LoadRun(f.runDir)
		if err != nil {
			return nil, err
		}
		outcome.Eval, outcome.EvalPath, err = training.EvaluateRun(run, f.evalRequest(b, backendName))
		if err != nil {
			return nil, err
		}
	}
	outcome.TotalWall = time.Since(start)
	return outcome, nil
}

// totalStepsHint returns the run's step count, or 100 when the budget cannot be turned into steps
// yet (Train reports that error).
func totalStepsHint(options training.Options) int {
	if steps, err := options.TotalSteps(); err == nil {
		return steps
	}
	return 100
}

// fitConfigToData sets the vocabulary to the tokenizer's and raises max_seq_len to --seq-len.
func fitConfigToData(cfg mor.Config, vocabSize, seqLen int) mor.Config {
	if cfg.VocabSize != vocabSize {
		slog.Info("setting the model's vocabulary size to the tokenizer's", "preset_vocab_size", cfg.VocabSize, "tokenizer_vocab_size", vocabSize)
		cfg.VocabSize = vocabSize
	}
	if cfg.MaxSeqLen < seqLen {
		slog.Info("raising max_seq_len to --seq-len", "max_seq_len", cfg.MaxSeqLen, "seq_len", seqLen)
		cfg.MaxSeqLen = seqLen
	}
	return cfg
}

func (f trainFlags) trainOptions(cfg mor.Config, source training.BatchSource, b compute.Backend) training.Options {
	budget, _ := training.ParseBudget(f.budget) // checked by validate
	options := training.DefaultOptions()
	options.Model = training.MoRModel{Config: cfg}
	options.Data = source
	options.Backend = b
	options.RunDir = f.runDir
	options.BatchSize, options.SeqLen, options.Accumulation = f.batch, f.seqLen, f.accum
	options.Budget = budget
	options.Schedule = training.ScheduleKind(f.schedule)
	options.PeakLR, options.WarmupFraction, options.DecayFraction, options.MinLRRatio = f.lr, f.warmup, f.decay, f.minLRRatio
	options.Optimizer.WeightDecay = f.weightDecay
	options.Optimizer.ClipNorm = f.clip
	options.CheckpointEvery = f.checkpointEvery
	options.KeepCheckpoints = f.keep
	options.Seed = f.seed
	options.Resume = f.resume
	return options
}

func (f trainFlags) evalRequest(b compute.Backend, backendName string) training.EvalRequest {
	request := training.EvalRequest{
		Backend: b, BackendName: backendName, Rows: f.evalRows, BatchSize: f.evalBatch,
		TaskLimit: f.limit, EvalDir: evalDir(), TaskRouting: training.SequenceTopK,
	}
	for _, name := range strings.Split(f.tasks, ",") {
		if name = strings.TrimSpace(name); name != "" {
			request.Tasks = append(request.Tasks, name)
		}
	}
	return request
}

// evalDir returns the eval/ folder of training.DataRoot ($GOMOR_DATA or ../shared/data beside
// the checkout), or "eval" when neither exists so that task errors name a path.
func evalDir() string {
	return filepath.Join(training.DataRoot(), "eval")
}

// printOutcome prints where the run's files are and its evaluation, and returns an error when
// an evaluation task failed.
func printOutcome(o *runOutcome) error {
	r := o.Result
	fmt.Printf("Trained %s for %d steps (%d tokens) in %.1f s; last LM loss %.4f.\n",
		o.Info.Preset, r.Steps, r.TokensSeen, o.TrainWall.Seconds(), r.LastLMLoss)
	fmt.Printf("  run:         %s\n", o.RunDir)
	fmt.Printf("  metrics:     %s\n", filepath.Join(o.RunDir, "metrics.jsonl"))
	fmt.Printf("  checkpoint:  %s\n", r.Checkpoint)
	if o.Eval != nil {
		fmt.Printf("  evaluation:  %s\n", o.EvalPath)
		printNLL(o.Eval.NLL)
		return printTasks(o.Eval)
	}
	return nil
}

func printNLL(results []training.NLLResult) {
	for _, r := range results {
		depth := "all steps"
		if r.MaxDepth > 0 {
			depth = fmt.Sprintf("max depth %d", r.MaxDepth)
		}
		switch {
		case r.Error != "":
			fmt.Printf("  NLL %-6s %-12s not available: %s\n", r.Routing, depth, r.Error)
		case r.DeadTokenRatio != nil:
			fmt.Printf("  NLL %-6s %-12s %.4f over %d rows (dead-token ratio %.3f)\n", r.Routing, depth, r.NLL, r.Rows, *r.DeadTokenRatio)
		default:
			fmt.Printf("  NLL %-6s %-12s %.4f over %d rows\n", r.Routing, depth, r.NLL, r.Rows)
		}
	}
}

// interruptOnSignal makes the first SIGINT or SIGTERM end training after the current step with a
// checkpoint, through options.Interrupt. A second signal stops the process at once. The returned
// function restores the default signal handling.
func interruptOnSignal(options *training.Options) (stop func()) {
	interrupt := make(chan struct{})
	signals := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case received := <-signals:
			signal.Stop(signals)
			slog.Warn("stopping after the current step and writing a checkpoint; send the signal again to stop at once",
				"signal", received.String())
			close(interrupt)
		case <-done:
		}
	}()
	options.Interrupt = interrupt
	return func() {
		signal.Stop(signals)
		close(done)
	}
}
