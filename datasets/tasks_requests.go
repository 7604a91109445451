package datasets

import (
	"fmt"
	"strings"
	"unicode"
)

// EncodePair returns the context and continuation tokens of one request the
// way lm-evaluation-harness builds them. White space at the end of the context
// moves to the start of the continuation. The continuation tokens are
// encode(context+continuation) without the first len(encode(context)) tokens,
// so that they are the tokens the model reads in the whole text. An empty
// context becomes the single token EOS.
func EncodePair(tokenizer Tokenizer, context, continuation string) (contextIDs, continuationIDs []int) {
	trimmed := strings.TrimRightFunc(context, unicode.IsSpace)
	continuation = context[len(trimmed):] + continuation
	context = trimmed

	if context == "" {
		return []int{tokenizer.EOS()}, tokenizer.Encode(continuation)
	}
	whole := tokenizer.Encode(context + continuation)
	contextIDs = tokenizer.Encode(context)
	if len(contextIDs) < len(whole) {
		return contextIDs, whole[len(contextIDs):]
	}

	// NOTE: a context that ends inside a word can merge with the continuation
	// into as few tokens as the context alone. The harness's rule then leaves no
	// continuation token, so the continuation is encoded on its own instead.
	return contextIDs, tokenizer.Encode(continuation)
}

// TruncateRequest drops context tokens from the left so that the model input,
// context plus all but the last continuation token, fits in maxLength tokens.
// A continuation longer than maxLength is an error, because the model could
// not score it with any context.
func TruncateRequest(request Request, maxLength int) (Request, error) {
	if maxLength <= 0 || len(request.Context)+len(request.Continuation)-1 <= maxLength {
		return request, nil
	}
	keep := maxLength + 1 - len(request.Continuation)
	if keep < 1 {
		return Request{}, fmt.Errorf("continuation of %d tokens does not fit the model's %d-token context", len(request.Continuation), maxLength)
	}
	request.Context = request.Context[len(request.Context)-keep:]
	return request, nil
}

// buildItemRequests returns one request per choice of item index, with
// demonstrations in front when opts.Shots > 0.
func buildItemRequests(task *Task, index int, tokenizer Tokenizer, opts EvalOptions) ([]Request, error) {
	prefix, err := fewShotPrefix(task, index, opts.Shots, opts.Seed)
	if err != nil {
		return nil, err
	}

	item := task.Items[index]
	requests := make([]Request, len(item.Choices))
	for i, choice := range item.Choices {
		context, continuation := EncodePair(tokenizer, prefix+choice.Context, task.TargetDelimiter+choice.Continuation)
		request, err := TruncateRequest(Request{Context: context, Continuation: continuation}, opts.MaxLength)
		if err != nil {
			return nil, fmt.Errorf("task %s item %d choice %d: %w", task.Name, index, i, err)
		}
		requests[i] = request
	}
	return requests, nil
}

// demonstrationText returns an item written out with its correct choice.
func demonstrationText(task *Task, item TaskItem) string {
	gold := item.Choices[item.Gold]
	return gold.Context + task.TargetDelimiter + gold.Continuation
}

// fewShotPrefix returns the demonstrations for item index, each followed by
// the task's FewShotDelimiter, or "" for zero shots.
func fewShotPrefix(task *Task, index, shots int, seed uint64) (string, error) {
	if shots <= 0 {
		return "", nil
	}
	pool := demonstrationPool(task, index)
	if shots > len(pool) {
		return "", fmt.Errorf("task %s: %d shots requested but only %d other items share item %d's file", task.Name, shots, len(pool), index)
	}

	var b strings.Builder
	for _, demo := range sampleWithoutReplacement(pool, shots, seed, uint64(index)) {
		b.WriteString(demonstrationText(task, task.Items[demo]))
		b.WriteString(task.FewShotDelimiter)
	}
	return b.String(), nil
}

// demonstrationPool returns the items that may serve as demonstrations for
// item index: those of the same group, without the item itself.
func demonstrationPool(task *Task, index int) []int {
	group := task.Items[index].Group
	var pool []int
	for i, item := range task.Items {
		if i != index && item.Group == group {
			pool = append(pool, i)
		}
	}
	return pool
}

// sampleWithoutReplacement returns k distinct elements of pool chosen by a
// partial Fisher–Yates shuffle seeded by (seed, stream).
func sampleWithoutReplacement(pool []int, k int, seed, stream uint64) []int {
	shuffled := append([]int(nil), pool...)
	rng := splitMix64{state: seed ^ (stream+1)*0xD1B54A32D192ED03}
	for i := range k {
		j := i + int(rng.below(uint64(len(shuffled)-i)))
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	return shuffled[:k]
}
