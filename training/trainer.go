package training

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/schollz/progressbar/v3"
)

// Options configures a training run.
type Options struct {
	Model   Model
	Data    BatchSource
	Backend compute.Backend

	// RunDir receives metrics.jsonl and checkpoints/.
	RunDir string

	BatchSize    int // rows per micro-batch
	SeqLen       int // tokens per row
	Accumulation int // micro-batches per optimiser step; 0 or 1 means none

	Budget Budget

	Schedule       ScheduleKind
	PeakLR         float64
	WarmupFraction float64 // of the total steps
	DecayFraction  float64 // WarmupStableDecay cool-down, of the total steps
	MinLRRatio     float64 // Cosine floor, as a fraction of PeakLR

	Optimizer AdamWConfig

	CheckpointEvery int // optimiser steps between checkpoints; 0 means only at the end
	KeepCheckpoints int // newest checkpoints kept; at least 2

	// Seed sets the initialisation and the model's random draws; the data order has its own seed.
	Seed int64

	// Resume continues from the newest complete checkpoint in RunDir.
	Resume bool

	Tokenizer TokenizerIdentity

	// Progress receives the progress bar; nil disables it.
	Progress io.Writer

	// LogEvery logs the step, loss and throughput every LogEvery steps through Logger; 0 disables
	// it. Runs without a terminal use it in place of the progress bar.
	LogEvery int

	// StopAfter ends the run after this many optimiser steps in this process, without a final
	// checkpoint, as a killed process would; 0 means no limit.
	StopAfter int

	// Interrupt, when closed, ends the run after the step in progress: Train writes a checkpoint
	// and returns an *InterruptedError. The mor command closes it on SIGINT and SIGTERM.
	Interrupt <-chan struct{}

	Logger *slog.Logger
}

// InterruptedError reports a run ended through Options.Interrupt. Checkpoint is the checkpoint
// written at Step, from which --resume continues.
type InterruptedError struct {
	Step       int
	TotalSteps int
	Checkpoint string
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("training interrupted after step %d of %d; checkpoint %s holds it: rerun with the same flags and --resume to continue",
		e.Step, e.TotalSteps, e.Checkpoint)
}

// DefaultOptions returns the MoR paper's optimisation recipe at a tiny scale: WSD with 5%
// warm-up and 20% decay, peak learning rate 3e-3 (its 360M configs), DefaultAdamW, and no
// accumulation.
func DefaultOptions() Options {
	return Options{
		BatchSize: 16, SeqLen: 128, Accumulation: 1,
		Budget:          Budget{Unit: BudgetSteps, Value: 300},
		Schedule:        WarmupStableDecay,
		PeakLR:          3e-3,
		WarmupFraction:  0.05,
		DecayFraction:   0.2,
		MinLRRatio:      0.1,
		Optimizer:       DefaultAdamW(),
		KeepCheckpoints: 2,
		Seed:            1,
	}
}

// Result summarises a finished (or stopped) run.
type Result struct {
	Steps       int // optimiser steps completed, counting those before a resume
	TotalSteps  int
	TokensSeen  int64
	LastLMLoss  float64
	Checkpoint  string // newest checkpoint written, or "" when none
	WallSeconds float64
	Store       *model.Store
	Stopped     bool // StopAfter ended the run early
}

// NonFiniteError reports a loss or update that was NaN or ±Inf. The step's update was not
// applied and no checkpoint was written after it.
type NonFiniteError struct {
	Step           int
	LMLoss         float64
	GradNorm       float64
	LR             float64
	LastCheckpoint string
}

func (e *NonFiniteError) Error() string {
	last := e.LastCheckpoint
	if last == "" {
		last = "none written yet"
	}
	return fmt.Sprintf("training stopped at step %d: non-finite value (LM loss %g, gradient norm %g, learning rate %g); the last good checkpoint is %s; lower --lr, check the data, or resume from that checkpoint",
		e.Step, e.LMLoss, e.GradNorm, e.LR, last)
}

// TotalSteps returns the run's number of optimiser steps under its budget.
func (o Options) TotalSteps() (int, error) {
	return o.Budget.Steps(o.TokensPerStep(), o.Model.ForwardFLOPsPerToken(o.SeqLen))
}

// TokensPerStep returns batch × sequence length × accumulation.
func (o Options) TokensPerStep() int {
	return o.BatchSize * o.SeqLen * max(o.Accumulation, 1)
}

func (o Options) validate() error {
	switch {
	case o.Model == nil:
		return errors.New("no model given")
	case o.Data == nil:
		return errors.New("no training data given")
	case o.Backend == nil:
		return errors.New("no backend given")
	case o.RunDir == "":
		return errors.New("no run directory given: set --run-dir")
	case o.BatchSize < 1:
		return fmt.Errorf("invalid batch size %d: use at least 1", o.BatchSize)
	case o.SeqLen < 2:
		return fmt.Errorf("invalid sequence length %d: use at least 2 tokens", o.SeqLen)
	case o.Accumulation < 0:
		return fmt.Errorf("invalid accumulation %d: use 1 (none) or more micro-batches per step", o.Accumulation)
	case o.PeakLR < 0 || math.IsNaN(o.PeakLR):
		return fmt.Errorf("invalid learning rate %g: use a positive value such as 3e-3", o.PeakLR)
	case o.WarmupFraction < 0 || o.WarmupFraction > 1:
		return fmt.Errorf("invalid warm-up fraction %g: use a value in [0, 1]", o.WarmupFraction)
	case o.CheckpointEvery < 0:
		return fmt.Errorf("invalid checkpoint interval %d: use 0 (end only) or a positive number of steps", o.CheckpointEvery)
	}
	return o.Optimizer.Validate()
}

// schedule builds the learning-rate schedule for totalSteps.
func (o Options) schedule(totalSteps int) Schedule {
	return Schedule{
		Kind:          o.Schedule,
		PeakLR:        o.PeakLR,
		TotalSteps:    totalSteps,
		WarmupSteps:   int(math.Round(o.WarmupFraction * float64(totalSteps))),
		DecayFraction: o.DecayFraction,
		MinLRRatio:    o.MinLRRatio,
	}
}

// run is the state of one Train call.
type run struct {
	options    Options
	logger     *slog.Logger
	store      *model.Store
	trainer    *train.Trainer
	schedule   Schedule
	layout     diagnosticsLayout
	metrics    *metricsLog
	state      TrainState
	lastSaved  string
	startStep  int
	started    time.Time
	wallBefore float64
}

// Train runs (or resumes) a training run and writes metrics.jsonl and checkpoints to RunDir.
// Graph-building panics come back as errors.
func Train(options Options) (result *Result, err error) {
	if options.Accumulation == 0 {
		options.Accumulation = 1
	}
	if err := options.validate(); err != nil {
		return nil, err
	}
	totalSteps, err := options.TotalSteps()
	if err != nil {
		return nil, err
	}
	r := &run{options: options, logger: options.Logger, started: time.Now()}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	r.schedule = options.schedule(totalSteps)
	if err := r.schedule.Validate(); err != nil {
		return nil, err
	}
	if err := r.setUp(totalSteps); err != nil {
		return nil, err
	}
	defer r.metrics.close()

	var loopErr error
	if panicErr := exceptions.TryCatch[error](func() { result, loopErr = r.loop() }); panicErr != nil {
		return nil, fmt.Errorf("training %s: %w", options.RunDir, panicErr)
	}
	return result, loopErr
}

// setUp creates the store (fresh or from the newest checkpoint), the GoMLX trainer and the log.
func (r *run) setUp(totalSteps int) error {
	o := r.options
	if err := os.MkdirAll(o.RunDir, 0o755); err != nil {
		return fmt.Errorf("creating run directory: %w", err)
	}
	r.store = model.NewStore()
	r.store.SetParam(model.ParamInitialSeed, o.Seed)
	if err := r.store.SetRNGStateFromSeed(o.Seed); err != nil {
		return err
	}
	modelJSON, err := json.Marshal(o.Model.Description())
	if err != nil {
		return fmt.Errorf("encoding the model description: %w", err)
	}
	optionsJSON, _ := json.Marshal(recordedOptions(o, totalSteps))
	r.state = TrainState{TotalSteps: totalSteps, Model: modelJSON, Tokenizer: o.Tokenizer, Options: optionsJSON}

	if err := r.restoreOrReject(modelJSON); err != nil {
		return err
	}
	r.metrics, err = openMetricsLog(filepath.Join(o.RunDir, "metrics.jsonl"), r.startStep)
	if err != nil {
		return err
	}

	opt := newAdamW(o.Optimizer)
	r.trainer = train.NewTrainer(o.Backend, r.store, r.modelFn, nil, opt, []metric.Interface{diagnosticsMetric{}}, nil)
	if o.Accumulation > 1 {
		if err := r.trainer.AccumulateGradients(o.Accumulation); err != nil {
			return err
		}
	}
	return nil
}

// restoreOrReject loads the newest checkpoint when resuming. A fresh run rejects a run directory
// that already has one, so no run is overwritten by accident.
func (r *run) restoreOrReject(modelJSON []byte) error {
	o := r.options
	checkpoint, err := LoadLatestCheckpoint(o.RunDir)
	if !o.Resume {
		if err == nil {
			return fmt.Errorf("run directory %s already has checkpoint %s: pass --resume to continue it or choose another --run-dir", o.RunDir, checkpoint.Dir)
		}
		return nil
	}

	if err != nil {
		return fmt.Errorf("cannot resume from %s: %w; train without --resume to start a new run", o.RunDir, err)
	}
	if !sameJSON(checkpoint.State.Model, modelJSON) {
		return fmt.Errorf("cannot resume: checkpoint %s has model %s but this run has model %s; resume with the same preset and flags", checkpoint.Dir, checkpoint.State.Model, modelJSON)
	}
	if checkpoint.State.Tokenizer != o.Tokenizer {
		return fmt.Errorf("cannot resume: checkpoint %s was trained with tokenizer %+v but this run uses %+v", checkpoint.Dir, checkpoint.State.Tokenizer, o.Tokenizer)
	}
	if checkpoint.State.TotalSteps != r.state.TotalSteps {
		return fmt.Errorf("cannot resume: checkpoint %s has a budget of %d steps but this run has %d; resume with the same budget, batch and sequence length", checkpoint.Dir, checkpoint.State.TotalSteps, r.state.TotalSteps)
	}

	if err := checkpoint.Restore(r.store); err != nil {
		return err
	}
	if err := o.Data.Restore(checkpoint.State.DataPosition); err != nil {
		return err
	}
	r.state.Step = checkpoint.State.Step
	r.state.TokensSeen = checkpoint.State.TokensSeen
	r.wallBefore = checkpoint.State.WallSeconds
	r.startStep = checkpoint.State.Step
	r.lastSaved = checkpoint.Dir
	r.logger.Info("resuming training", "run", o.RunDir, "checkpoint", checkpoint.Dir, "step", r.startStep, "total_steps", r.state.TotalSteps)
	return nil
}

// recordedOptions is the subset of Options stored with each checkpoint.
func recordedOptions(o Options, totalSteps int) map[string]any {
	return map[string]any{
		"batch_size": o.BatchSize, "seq_len": o.SeqLen, "accumulation": o.Accumulation,
		"budget": o.Budget.String(), "total_steps": totalSteps, "schedule": o.Schedule,
		"peak_lr": o.PeakLR, "warmup_fraction": o.WarmupFraction, "decay_fraction": o.DecayFraction,
		"min_lr_ratio": o.MinLRRatio, "optimizer": o.Optimizer, "seed": o.Seed,
	}
}

// modelFn is the train.ModelFn: inputs are the tokens [B, L] int32 and the learning rate (a
// float32 scalar). It adds the LM loss plus the weighted auxiliary losses as the main loss and
// returns the packed diagnostics as the only prediction.
func (r *run) modelFn(scope *model.Scope, _ any, inputs []*graph.Node) []*graph.Node {
	tokens, lr := inputs[0], inputs[1]
	g := tokens.Graph()
	SetLearningRate(lr)
	globalStep := optimizer.GetGlobalStepVar(r.store).NodeValue(g)

	out := r.options.Model.Forward(scope, tokens, ForwardOptions{Training: true, Routing: SequenceTopK, GlobalStep: globalStep})
	lmLoss := graph.ReduceAllMean(RowNLL(out.Logits, tokens))
	total := lmLoss
	if out.WeightedAuxLoss != nil {
		total = graph.Add(total, graph.ConvertDType(out.WeightedAuxLoss, dtypes.Float32))
	}
	train.AddMainLoss(total)
	if out.AfterStep != nil {
		train.AddPerStepUpdateGraphFn(scope.In("after_step"), g, func(*model.Scope, *graph.Graph) { out.AfterStep(g) })
	}

	values := map[string]*graph.Node{lmLossEntry: lmLoss, totalLossEntry: total}
	for name, node := range out.Losses {
		values[auxLossPrefix+name] = node
	}
	for name, node := range out.Metrics {
		values[metricPrefix+name] = node
	}
	packed, layout := packDiagnostics(values)
	r.layout = layout
	return []*graph.Node{packed}
}

// loop runs the optimiser steps from the current state to the end of the budget.
func (r *run) loop() (*Result, error) {
	o := r.options
	total := r.state.TotalSteps
	bar := r.newProgressBar(total)
	stepsThisRun := 0
	var last StepRecord

	for step := r.startStep; step < total; step++ {
		if o.StopAfter > 0 && stepsThisRun == o.StopAfter {
			return r.result(last, true), nil
		}
		record, err := r.step(step)
		if err != nil {
			return nil, err
		}
		last = record
		stepsThisRun++
		if err := r.metrics.write(record); err != nil {
			return nil, err
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("loss %.4f  %.0f tok/s", record.LMLoss, record.TokensPerSecond))
			_ = bar.Add(1)
		}
		if o.LogEvery > 0 && record.Step%o.LogEvery == 0 {
			r.logger.Info("training step", "run", o.RunDir, "step", record.Step, "total_steps", total,
				"lm_loss", record.LMLoss, "lr", record.LR, "tokens_per_second", record.TokensPerSecond)
		}
		isLast := step+1 == total
		saved := false
		if isLast || (o.CheckpointEvery > 0 && (step+1)%o.CheckpointEvery == 0) {
			if err := r.checkpoint(); err != nil {
				return nil, err
			}
			saved = true
		}
		if !isLast && interrupted(o.Interrupt) {
			return nil, r.interrupt(saved, total)
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return r.result(last, false), nil
}

func (r *run) newProgressBar(total int) *progressbar.ProgressBar {
	if r.options.Progress == nil {
		return nil
	}
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(r.options.Progress),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	_ = bar.Set(r.startStep)
	return bar
}

// step runs one optimiser step (all its micro-batches) and returns its record.
func (r *run) step(step int) (StepRecord, error) {
	o := r.options
	start := time.Now()
	lr := r.schedule.LR(step)
	sums := map[string][]float64{}
	for range o.Accumulation {
		packed, err := r.microStep(lr)
		if err != nil {
			return StepRecord{}, err
		}
		for name, values := range r.layout.unpack(packed) {
			if sums[name] == nil {
				sums[name] = make([]float64, len(values))
			}
			for i, v := range values {
				sums[name][i] += v / float64(o.Accumulation)
			}
		}
	}
	seconds := time.Since(start).Seconds()
	r.state.Step = step + 1
	r.state.TokensSeen += int64(o.TokensPerStep())

	record := StepRecord{
		Step: step + 1, Tokens: r.state.TokensSeen, LR: lr,
		LMLoss: sums[lmLossEntry][0], Loss: sums[totalLossEntry][0],
		GradNorm:          r.status(gradNormName),
		AuxRouterGradNorm: r.status(auxGradNormName),
		TokensPerSecond:   float64(o.TokensPerStep()) / seconds,
		StepSeconds:       seconds,
		AuxLosses:         map[string]float64{},
		Metrics:           map[string][]float64{},
	}
	for name, values := range sums {
		if auxName, ok := strings.CutPrefix(name, auxLossPrefix); ok {
			record.AuxLosses[auxName] = values[0]
		} else if metricName, ok := strings.CutPrefix(name, metricPrefix); ok {
			record.Metrics[metricName] = values
		}
	}
	if r.status(updateFiniteName) != 1 || !isFinite(record.LMLoss) || !isFinite(record.Loss) {
		return StepRecord{}, &NonFiniteError{Step: step + 1, LMLoss: record.LMLoss, GradNorm: record.GradNorm, LR: lr, LastCheckpoint: r.lastSaved}
	}
	if hook, ok := o.Model.(StepHook); ok {
		if err := hook.AfterOptimizerStep(r.store, step, record.Metrics); err != nil {
			return StepRecord{}, fmt.Errorf("after step %d: %w", step+1, err)
		}
	}
	return record, nil
}

// microStep feeds one batch to the GoMLX trainer and returns the packed diagnostics.
func (r *run) microStep(lr float64) ([]float32, error) {
	o := r.options
	tokens, err := o.Data.Next()
	if err != nil {
		return nil, fmt.Errorf("reading the next training batch: %w", err)
	}
	if len(tokens) != o.BatchSize*o.SeqLen {
		return nil, fmt.Errorf("the data source returned %d tokens but a batch of %d×%d needs %d", len(tokens), o.BatchSize, o.SeqLen, o.BatchSize*o.SeqLen)
	}
	tokenTensor := tensors.FromFlatDataAndDimensions(tokens, o.BatchSize, o.SeqLen) // [B, L]
	lrTensor := tensors.FromScalar(float32(lr))
	outputs, err := r.trainer.TrainStep(train.Batch{Inputs: []*tensors.Tensor{tokenTensor, lrTensor}})
	if err != nil {
		return nil, err
	}
	packed := tensors.MustCopyFlatData[float32](outputs[len(outputs)-1])
	for _, t := range outputs {
		_ = t.FinalizeAll()
	}
	return packed, nil
}

// status reads a scalar the optimiser stored after the last update.
func (r *run) status(name string) float64 {
	v := r.store.GetVariable(model.JoinPath(statusScope, name))
	if v == nil || !v.HasValue() {
		return 0
	}
	return float64(tensors.ToScalar[float32](v.MustValue()))
}

// interrupted reports whether interrupt is closed, without blocking; a nil channel never is.
func interrupted(interrupt <-chan struct{}) bool {
	select {
	case <-interrupt:
		return true
	default:
		return false
	}
}

// interrupt writes a checkpoint of the current step unless the loop just wrote one, and returns
// the error that ends the run.
func (r *run) interrupt(saved bool, total int) error {
	if !saved {
		if err := r.checkpoint(); err != nil {
			return err
		}
	}
	if r.options.Progress != nil {
		fmt.Fprintln(r.options.Progress)
	}
	return &InterruptedError{Step: r.state.Step, TotalSteps: total, Checkpoint: r.lastSaved}
}

func (r *run) checkpoint() error {
	if err := r.metrics.flush(); err != nil {
		return err
	}
	position, err := r.options.Data.Position()
	if err != nil {
		return fmt.Errorf("reading the data position: %w", err)
	}
	r.state.DataPosition = position
	r.state.WallSeconds = r.wallBefore + time.Since(r.started).Seconds()
	dir, err := SaveCheckpoint(r.options.RunDir, r.store, r.state, r.options.KeepCheckpoints)
	if err != nil {
		return fmt.Errorf("writing checkpoint at step %d: %w", r.state.Step, err)
	}
	r.lastSaved = dir
	return nil
}

func (r *run) result(last StepRecord, stopped bool) *Result {
	return &Result{
		Steps: r.state.Step, TotalSteps: r.state.TotalSteps, TokensSeen: r.state.TokensSeen,
		LastLMLoss: last.LMLoss, Checkpoint: r.lastSaved,
		WallSeconds: r.wallBefore + time.Since(r.started).Seconds(),
		Store:       r.store, Stopped: stopped,
	}
}

// sameJSON reports whether two JSON documents are equal after removing insignificant spaces.
func sameJSON(a, b []byte) bool {
	var compactA, compactB bytes.Buffer
	if json.Compact(&compactA, a) != nil || json.Compact(&compactB, b) != nil {
		return false
	}
	return bytes.Equal(compactA.Bytes(), compactB.Bytes())
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
