package datasets

import (
	"fmt"
	"sort"
)

// Request is a log-likelihood query: the probability of Continuation after
// Context, both token ids. Context is never empty: a request without context text uses
// the EOS token as its context.
type Request struct {
	Context      []int
	Continuation []int
}

// Result is a model's score for a Request.
type Result struct {
	// LogLikelihood is the sum over continuation tokens of log p(token | all before it), in nats.
	LogLikelihood float64
	// IsGreedy is set when every continuation token is the model's argmax.
	IsGreedy bool
}

// Scorer computes log-likelihoods with a model. The model reads Context
// followed by all but the last Continuation token, and scores each
// Continuation token from the logits at the position before it.
type Scorer interface {
	LogLikelihoods(requests []Request) ([]Result, error)
}

// TaskKind is the rule that turns a task's log-likelihoods into metrics.
type TaskKind int

const (
	// MultipleChoice picks the choice with the highest log-likelihood (acc)
	// and, where the task reports it, the highest log-likelihood per byte of
	// choice text (acc_norm).
	MultipleChoice TaskKind = iota
	// GreedyContinuation scores one continuation: acc counts continuations that
	// are the model's greedy output, and perplexity is exp(-mean log-likelihood).
	GreedyContinuation
)

// Choice is one scored alternative of an item. The request's context is
// Context and its continuation is the task's TargetDelimiter followed by
// Continuation.
type Choice struct {
	Context      string
	Continuation string
}

// TaskItem is one evaluation example.
type TaskItem struct {
	Choices []Choice
	Gold    int    // index of the correct choice
	Group   string // BLiMP paradigm; empty for tasks without groups
}

// Task is a loaded evaluation task.
type Task struct {
	Name string
	Kind TaskKind
	// TargetDelimiter goes between context and continuation (" " in every
	// task here, as in lm-evaluation-harness).
	TargetDelimiter string
	// FewShotDelimiter separates demonstrations from each other and from the item.
	FewShotDelimiter string
	// ReportNormalized adds acc_norm for multiple-choice tasks whose choices differ.
	ReportNormalized bool
	Items            []TaskItem
}

// Metric names used in TaskResult.Metrics.
const (
	MetricAccuracy   = "acc"
	MetricNormalized = "acc_norm"
	MetricPerplexity = "perplexity"
)

// MetricValue is a metric and its standard error.
type MetricValue struct {
	Value  float64 `json:"value"`
	StdErr float64 `json:"stderr"`
}

// TaskResult holds a task's metrics. For BLiMP, Groups holds each paradigm's
// metrics and Metrics their mean.
type TaskResult struct {
	Task    string                            `json:"task"`
	Shots   int                               `json:"shots"`
	Items   int                               `json:"items"`
	Metrics map[string]MetricValue            `json:"metrics"`
	Groups  map[string]map[string]MetricValue `json:"groups,omitempty"`
}

// EvalOptions configures EvaluateTask.
type EvalOptions struct {
	// Shots is the number of demonstrations placed before each item, drawn from
	// the same task file (the same paradigm for BLiMP) without the item itself.
	Shots int
	// Seed selects the demonstrations: item i's are drawn from a generator seeded by (Seed, i).
	Seed uint64
	// Limit evaluates only the first Limit items (of each group for BLiMP); zero means all.
	Limit int
	// MaxLength is the model's context length in tokens. Longer requests lose
	// context tokens from the left. Zero means no limit.
	MaxLength int
	// RequestsPerCall is the number of requests passed to each Scorer call (512 if zero).
	RequestsPerCall int
	// Progress, when set, is called after each Scorer call with requests done and total.
	Progress func(done, total int)
}

// EvaluateTask builds the requests of the selected items, scores them with
// scorer and returns the task's metrics.
func EvaluateTask(task *Task, scorer Scorer, tokenizer Tokenizer, opts EvalOptions) (TaskResult, error) {
	selected := selectItems(task, opts.Limit)
	if len(selected) == 0 {
		return TaskResult{}, fmt.Errorf("task %s: no items to evaluate", task.Name)
	}

	var requests []Request
	for _, index := range selected {
		itemRequests, err := buildItemRequests(task, index, tokenizer, opts)
		if err != nil {
			return TaskResult{}, err
		}
		requests = append(requests, itemRequests...)
	}

	results, err := scoreInChunks(scorer, requests, opts)
	if err != nil {
		return TaskResult{}, fmt.Errorf("task %s: %w", task.Name, err)
	}

	outcomes := make([]itemOutcome, len(selected))
	next := 0
	for i, index := range selected {
		item := task.Items[index]
		outcomes[i] = scoreItem(task, item, results[next:next+len(item.Choices)])
		next += len(item.Choices)
	}
	return summarize(task, outcomes, opts.Shots), nil
}

// selectItems returns the indices of the items to evaluate: all, or the first
// limit items of each group.
func selectItems(task *Task, limit int) []int {
	countPerGroup := map[string]int{}
	var selected []int
	for i, item := range task.Items {
		if limit > 0 && countPerGroup[item.Group] >= limit {
			continue
		}
		countPerGroup[item.Group]++
		selected = append(selected, i)
	}
	return selected
}

// scoreInChunks calls the scorer on slices of requests and checks the answers' count.
func scoreInChunks(scorer Scorer, requests []Request, opts EvalOptions) ([]Result, error) {
	chunk := opts.RequestsPerCall
	if chunk <= 0 {
		chunk = 512
	}
	results := make([]Result, 0, len(requests))
	for start := 0; start < len(requests); start += chunk {
		end := min(start+chunk, len(requests))
		part, err := scorer.LogLikelihoods(requests[start:end])
		if err != nil {
			return nil, err
		}
		if len(part) != end-start {
			return nil, fmt.Errorf("scorer returned %d results for %d requests", len(part), end-start)
		}
		results = append(results, part...)
		if opts.Progress != nil {
			opts.Progress(end, len(requests))
		}
	}
	return results, nil
}

// TaskNames returns the names LoadTask accepts, sorted.
func TaskNames() []string {
	names := make([]string, 0, len(taskFiles))
	for name := range taskFiles {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
