package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/training"
)

func init() {
	register(command{
		name:    "eval",
		summary: "evaluate a trained run: validation NLL per routing mode and depth cap, dead tokens, tasks",
		run:     runEval,
	})
}

type evalFlags struct {
	run         string
	rows, batch int
	routings    string
	depths      string
	tasks       string
	out         string
	limit       int
	taskRouting string
}

func parseEvalFlags(args []string) (evalFlags, error) {
	var f evalFlags
	flags := flag.NewFlagSet("eval", flag.ContinueOnError)
	flags.StringVar(&f.run, "run", "", "run directory of \"mor train\" (its newest complete checkpoint is used) or one checkpoint directory, e.g. runs/x/checkpoints/step-00000300 (required)")
	flags.IntVar(&f.rows, "rows", 64, "validation rows of the run's sequence length; 0 means the whole val split (the MoR paper used 500 rows of 2048 tokens)")
	flags.IntVar(&f.batch, "batch", 16, "rows per evaluation batch; also requests per batch for tasks")
	flags.StringVar(&f.routings, "routing", "", "comma-separated routing modes for the NLL: top-k (sequence-level, as the paper reports) and causal (router threshold, no look-ahead); empty means both for routed models and top-k otherwise")
	flags.StringVar(&f.depths, "depths", "", "comma-separated depth caps (max recursion steps) for top-k NLL, e.g. 1,2,3,4; empty means 1..N_r, plus N_r+1 for recursive baselines; none disables them")
	flags.StringVar(&f.out, "out", "", "file for the JSON report; empty means eval.json beside the checkpoint, replacing the one mor train wrote")
	flags.StringVar(&f.tasks, "tasks", "", "comma-separated evaluation tasks (e.g. blimp,piqa,lambada_openai), read from $GOMOR_DATA/eval; empty runs none")
	flags.IntVar(&f.limit, "limit", 0, "evaluate only the first N items of each task (of each paradigm for BLiMP); 0 means all")
	flags.StringVar(&f.taskRouting, "task-routing", string(training.SequenceTopK), "routing mode for task scoring: top-k or causal")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: mor eval --run DIR [flags]

Evaluates a trained model on the validation split of its training corpus and writes eval.json
beside the checkpoint, with the command line, git commit, backend and wall time. The NLL is the
mean over rows of each row's mean next-token negative log-likelihood in nats (the MoR paper's
validation metric). For routed models the dead-token ratio is the fraction of positions never
selected at the last recursion step in any evaluated row.

Flags:
`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return f, err
	}
	if flags.NArg() == 1 && f.run == "" {
		f.run = flags.Arg(0)
	} else if flags.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q; run `mor eval --help`", flags.Args())
	}
	switch {
	case f.run == "":
		return f, errors.New("missing --run: pass the run directory of `mor train` or a checkpoint directory")
	case f.rows < 0:
		return f, fmt.Errorf("invalid --rows %d: use 0 (all) or a positive number", f.rows)
	case f.batch < 1:
		return f, fmt.Errorf("invalid --batch %d: use at least 1", f.batch)
	case training.RoutingMode(f.taskRouting) != training.SequenceTopK && training.RoutingMode(f.taskRouting) != training.CausalRouting:
		return f, fmt.Errorf("invalid --task-routing %q: use top-k or causal", f.taskRouting)
	}
	return f, validateTaskNames(f.tasks)
}

// validateTaskNames checks a --tasks list before any model runs, so a misspelled task fails at once.
func validateTaskNames(list string) error {
	known := datasets.TaskNames()
	for _, name := range splitList(list) {
		if !slices.Contains(known, name) {
			return fmt.Errorf("invalid --tasks entry %q: use a comma-separated list of %s", name, strings.Join(known, ", "))
		}
	}
	return nil
}

// printTasks prints each task's metrics and each task's error, and returns an error naming the
// tasks that failed, so that scripts see a non-zero exit status.
func printTasks(report *training.EvalReport) error {
	for _, task := range report.Tasks {
		fmt.Printf("  task %-16s %d items:", task.Task, task.Items)
		names := make([]string, 0, len(task.Metrics))
		for name := range task.Metrics {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Printf(" %s %.4f ± %.4f", name, task.Metrics[name].Value, task.Metrics[name].StdErr)
		}
		fmt.Println()
	}
	if len(report.TaskErrors) == 0 {
		return nil
	}
	failed := make([]string, 0, len(report.TaskErrors))
	for name, message := range report.TaskErrors {
		fmt.Printf("  task %-16s failed: %s\n", name, message)
		failed = append(failed, name)
	}
	sort.Strings(failed)
	return fmt.Errorf("tasks %s failed (see above); set GOMOR_DATA to the folder that holds eval/ if their files were not found", strings.Join(failed, ", "))
}

// plan turns --routing and --depths into an EvalPlan on top of the model's default plan.
func (f evalFlags) plan(defaults training.EvalPlan) (training.EvalPlan, error) {
	plan := defaults
	if f.routings != "" {
		plan.Routings = nil
		for _, name := range splitList(f.routings) {
			mode := training.RoutingMode(name)
			if mode != training.SequenceTopK && mode != training.CausalRouting {
				return plan, fmt.Errorf("invalid --routing %q: use top-k, causal or both separated by a comma", name)
			}
			plan.Routings = append(plan.Routings, mode)
		}
	}
	switch f.depths {
	case "":
	case "none":
		plan.DepthCaps = nil
	default:
		plan.DepthCaps = nil
		for _, text := range splitList(f.depths) {
			depth, err := strconv.Atoi(text)
			if err != nil || depth < 1 {
				return plan, fmt.Errorf("invalid --depths entry %q: use positive integers such as 1,2,3", text)
			}
			plan.DepthCaps = append(plan.DepthCaps, depth)
		}
	}
	return plan, nil
}

func splitList(text string) []string {
	var items []string
	for _, item := range strings.Split(text, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func runEval(args []string) error {
	f, err := parseEvalFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	run, err := training.LoadRun(f.run)
	if err != nil {
		return err
	}
	plan, err := f.plan(training.DefaultEvalPlan(run.Model, run.Model.HasRecursionBlock()))
	if err != nil {
		return err
	}
	b, backendName, err := newBackend()
	if err != nil {
		return err
	}
	request := training.EvalRequest{
		Backend: b, BackendName: backendName, Rows: f.rows, BatchSize: f.batch, Plan: &plan,
		Tasks: splitList(f.tasks), TaskLimit: f.limit, EvalDir: evalDir(), TaskRouting: training.RoutingMode(f.taskRouting),
		Output: f.out,
	}
	report, path, err := training.EvaluateRun(run, request)
	if err != nil {
		return err
	}

	fmt.Printf("Evaluated %s (step %d) in %.1f s on %s: %s\n", report.Checkpoint, report.Step, report.Provenance.WallSeconds, backendName, path)
	printNLL(report.NLL)
	return printTasks(report)
}
