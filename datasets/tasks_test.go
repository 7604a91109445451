package datasets

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomor/gomor/internal/testutil"

	"github.com/tiktoken-go/tokenizer/codec"
)

// fakeScorer gives each continuation token a fixed log-probability: -0.5 for
// a space, -1 for a vowel and -2 for anything else, plus contextBonus[context
// text] once per request. A continuation is greedy when it has only spaces and
// vowels. It records the requests it receives.
type fakeScorer struct {
	contextBonus map[string]float64
	requests     []Request
}

func fakeTokenLogProb(token int) float64 {
	switch {
	case token == ' ':
		return -0.5
	case token < 256 && strings.ContainsRune("aeiou", rune(token)):
		return -1
	}
	return -2
}

func (s *fakeScorer) LogLikelihoods(requests []Request) ([]Result, error) {
	s.requests = append(s.requests, requests...)
	results := make([]Result, len(requests))
	for i, request := range requests {
		result := Result{IsGreedy: true, LogLikelihood: s.contextBonus[byteTestTokenizer{}.Decode(request.Context)]}
		for _, token := range request.Continuation {
			lp := fakeTokenLogProb(token)
			result.LogLikelihood += lp
			if lp < -1 {
				result.IsGreedy = false
			}
		}
		results[i] = result
	}
	return results, nil
}

func loadFixtureTask(t *testing.T, name, file string) *Task {
	t.Helper()
	task, err := LoadTaskFile(name, filepath.Join("testdata", "tasks", file))
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func assertMetric(t *testing.T, what string, got MetricValue, value, stdErr float64) {
	t.Helper()
	if math.Abs(got.Value-value) > 1e-9 {
		t.Errorf("%s = %.6f, expected %.6f", what, got.Value, value)
	}
	if math.Abs(got.StdErr-stdErr) > 1e-9 {
		t.Errorf("%s stderr = %.6f, expected %.6f", what, got.StdErr, stdErr)
	}
}

func TestMultipleChoiceHandComputed(t *testing.T) {
	task := loadFixtureTask(t, "arc_easy", "arc_three.jsonl")
	scorer := &fakeScorer{}
	result, err := EvaluateTask(task, scorer, byteTestTokenizer{}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// By hand: item 1 " a" -1.5 (per byte -1.5) vs " bb" -4.5 (-2.25), gold 0:
	// acc right, acc_norm right. Item 2 " bc" -4.5 (-2.25) vs " aei" -3.5
	// (-1.167), gold 1: both right. Item 3 " bcd" -6.5 (-2.167) vs " x" -2.5
	// (-2.5), gold 0: acc wrong, acc_norm right.
	// acc = 2/3 with stderr sqrt((2·(1/3)² + (2/3)²)/2)/sqrt(3) = 1/3.
	assertMetric(t, "acc", result.Metrics[MetricAccuracy], 2.0/3, 1.0/3)
	assertMetric(t, "acc_norm", result.Metrics[MetricNormalized], 1, 0)
	if result.Items != 3 {
		t.Errorf("items = %d, expected 3", result.Items)
	}

	if len(scorer.requests) != 6 {
		t.Fatalf("%d requests, expected 6 (two choices per item)", len(scorer.requests))
	}
	first := scorer.requests[0]
	if got := (byteTestTokenizer{}).Decode(first.Context); got != "Question: one?\nAnswer:" {
		t.Errorf("first context = %q, expected %q", got, "Question: one?\nAnswer:")
	}
	if got := (byteTestTokenizer{}).Decode(first.Continuation); got != " a" {
		t.Errorf("first continuation = %q, expected %q", got, " a")
	}
}

func TestLambadaHandComputed(t *testing.T) {
	task := loadFixtureTask(t, "lambada_openai", "lambada_two.jsonl")
	scorer := &fakeScorer{}
	result, err := EvaluateTask(task, scorer, byteTestTokenizer{}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Item 1 " ae": -2.5, greedy. Item 2: the context's trailing space moves to
	// the continuation, "  ab": -0.5-0.5-1-2 = -4, not greedy.
	// acc = 0.5 ± 0.5. Mean log-likelihood -3.25 ± 0.75, so perplexity
	// exp(3.25) with stderr exp(3.25)·0.75.
	assertMetric(t, "acc", result.Metrics[MetricAccuracy], 0.5, 0.5)
	assertMetric(t, "perplexity", result.Metrics[MetricPerplexity], math.Exp(3.25), math.Exp(3.25)*0.75)

	second := scorer.requests[1]
	if got := (byteTestTokenizer{}).Decode(second.Context); got != "z" {
		t.Errorf("second context = %q, expected %q", got, "z")
	}
	if got := (byteTestTokenizer{}).Decode(second.Continuation); got != "  ab" {
		t.Errorf("second continuation = %q, expected %q", got, "  ab")
	}
}

func TestWinograndePartialScoring(t *testing.T) {
	task := loadFixtureTask(t, "winogrande", "winogrande_two.jsonl")
	scorer := &fakeScorer{contextBonus: map[string]float64{"The cat": -1, "Ann": -0.3}}
	result, err := EvaluateTask(task, scorer, byteTestTokenizer{}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The continuation is the same after both contexts, so the bonus decides:
	// item 1 prefers "The dog" (gold 1, right), item 2 prefers "Bob" (gold 0, wrong).
	assertMetric(t, "acc", result.Metrics[MetricAccuracy], 0.5, 0.5)
	if _, found := result.Metrics[MetricNormalized]; found {
		t.Errorf("winogrande reports acc_norm, expected acc only")
	}
	for i, want := range []string{"The cat", "The dog"} {
		if got := (byteTestTokenizer{}).Decode(scorer.requests[i].Context); got != want {
			t.Errorf("request %d context = %q, expected %q", i, got, want)
		}
		if got := (byteTestTokenizer{}).Decode(scorer.requests[i].Continuation); got != " ran." {
			t.Errorf("request %d continuation = %q, expected %q", i, got, " ran.")
		}
	}
}

func TestBLiMPPerParadigm(t *testing.T) {
	task := loadFixtureTask(t, "blimp", "blimp")
	scorer := &fakeScorer{}
	result, err := EvaluateTask(task, scorer, byteTestTokenizer{}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// alpha: " aa." -4.5 > " bb." -6.5 right; " bab." -7.5 < " aaa." -5.5 wrong.
	// beta: " e." -3.5 > " cc." -6.5 right. Mean over paradigms (0.5 + 1)/2;
	// stderr sqrt(0.5² + 0²)/2.
	assertMetric(t, "alpha acc", result.Groups["alpha"][MetricAccuracy], 0.5, 0.5)
	assertMetric(t, "beta acc", result.Groups["beta"][MetricAccuracy], 1, 0)
	assertMetric(t, "mean acc", result.Metrics[MetricAccuracy], 0.75, 0.25)

	first := scorer.requests[0]
	if len(first.Context) != 1 || first.Context[0] != testEOS {
		t.Errorf("BLiMP context = %v, expected [EOS]", first.Context)
	}
}

func TestHellaSwagByteNormalized(t *testing.T) {
	task := loadFixtureTask(t, "hellaswag", "hellaswag_two.txt.bz2")
	result, err := EvaluateTask(task, &fakeScorer{}, byteTestTokenizer{}, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Endings " bb" -4.5 (-2.25 per byte), " cc" -4.5, " a" -1.5 (-1.5), " eee"
	// -3.5 (-1.167). acc picks 2, acc_norm picks 3. Gold 2 then gold 3.
	assertMetric(t, "acc", result.Metrics[MetricAccuracy], 0.5, 0.5)
	assertMetric(t, "acc_norm", result.Metrics[MetricNormalized], 0.5, 0.5)
	if got := task.Items[0].Choices[0].Context; got != "Label: first context" {
		t.Errorf("context = %q, expected %q", got, "Label: first context")
	}
}

func TestFewShotExcludesItem(t *testing.T) {
	task := loadFixtureTask(t, "arc_easy", "arc_three.jsonl")
	scorer := &fakeScorer{}
	if _, err := EvaluateTask(task, scorer, byteTestTokenizer{}, EvalOptions{Shots: 2, Seed: 5}); err != nil {
		t.Fatal(err)
	}

	context := (byteTestTokenizer{}).Decode(scorer.requests[0].Context)
	for _, demo := range []string{"Question: two?\nAnswer: aei\n\n", "Question: three?\nAnswer: bcd\n\n"} {
		if !strings.Contains(context, demo) {
			t.Errorf("item 1 context %q lacks demonstration %q", context, demo)
		}
	}
	if strings.Count(context, "Question: one?") != 1 || !strings.HasSuffix(context, "\n\nQuestion: one?\nAnswer:") {
		t.Errorf("item 1 context %q should end with its own question, present once", context)
	}

	_, err := EvaluateTask(task, &fakeScorer{}, byteTestTokenizer{}, EvalOptions{Shots: 3})
	if err == nil || !strings.Contains(err.Error(), "only 2 other items") {
		t.Errorf("3 shots from 3 items: error = %v, expected one about only 2 other items", err)
	}
}

func TestFewShotSeeded(t *testing.T) {
	task := &Task{Name: "numbers", Kind: MultipleChoice, TargetDelimiter: " ", FewShotDelimiter: "\n\n"}
	for i := range 40 {
		text := fmt.Sprint("q", i)
		task.Items = append(task.Items, TaskItem{Choices: []Choice{{Context: text, Continuation: "a"}, {Context: text, Continuation: "b"}}})
	}
	prefixes := func(seed uint64) string {
		var all []string
		for i := range task.Items {
			prefix, err := fewShotPrefix(task, i, 3, seed)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(prefix, fmt.Sprintf("q%d a", i)) {
				t.Errorf("item %d demonstrations %q include the item itself", i, prefix)
			}
			all = append(all, prefix)
		}
		return strings.Join(all, "|")
	}
	if prefixes(1) != prefixes(1) {
		t.Errorf("seed 1 gave different demonstrations on two calls")
	}
	if prefixes(1) == prefixes(2) {
		t.Errorf("seeds 1 and 2 gave the same demonstrations for all 40 items")
	}
}

func TestEncodePairMovesTrailingSpace(t *testing.T) {
	context, continuation := EncodePair(byteTestTokenizer{}, "Answer: ", "yes")
	if got := (byteTestTokenizer{}).Decode(context); got != "Answer:" {
		t.Errorf("context = %q, expected %q", got, "Answer:")
	}
	if got := (byteTestTokenizer{}).Decode(continuation); got != " yes" {
		t.Errorf("continuation = %q, expected %q", got, " yes")
	}
}

func TestTruncateRequestFromLeft(t *testing.T) {
	request := Request{Context: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Continuation: []int{11, 12}}
	truncated, err := TruncateRequest(request, 5)
	if err != nil {
		t.Fatal(err)
	}
	// The model reads context + continuation[:1], so 4 context tokens fit in 5.
	if fmt.Sprint(truncated.Context) != "[7 8 9 10]" {
		t.Errorf("truncated context = %v, expected [7 8 9 10]", truncated.Context)
	}
	if _, err := TruncateRequest(Request{Context: []int{1}, Continuation: []int{1, 2, 3}}, 2); err == nil {
		t.Errorf("a 3-token continuation fit a 2-token model, expected an error")
	}
}

func TestLimitPerGroup(t *testing.T) {
	task := loadFixtureTask(t, "blimp", "blimp")
	result, err := EvaluateTask(task, &fakeScorer{}, byteTestTokenizer{}, EvalOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if result.Items != 2 {
		t.Errorf("items with limit 1 = %d, expected 2 (one per paradigm)", result.Items)
	}
}

func TestTaskBadLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "piqa.jsonl")
	writeTestFile(t, path, "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n")
	_, err := LoadTaskFile("piqa", path)
	if err == nil || !strings.Contains(err.Error(), "line 2: gold 2 is outside the 2 choices") {
		t.Errorf("error = %v, expected line 2 and the gold range", err)
	}

	writeTestFile(t, path, "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{not json}\n")
	_, err = LoadTaskFile("piqa", path)
	if err == nil || !strings.Contains(err.Error(), "line 2: invalid JSON") {
		t.Errorf("error = %v, expected line 2 and invalid JSON", err)
	}
}

func TestTaskItemCounts(t *testing.T) {
	evalDir := filepath.Join(testutil.DataDir(t), "eval")
	// Item counts published with the data files.
	expected := map[string]int{
		"lambada_openai": 5153,
		"hellaswag":      10042,
		"piqa":           1838,
		"winogrande":     1267,
		"arc_easy":       2376,
		"arc_challenge":  1172,
		"openbook_qa":    500,
		"copa":           100,
		"siqa":           1954,
		"boolq":          3270,
		"commonsense_qa": 1221,
		"blimp":          67 * 1000,
	}
	if testing.Short() {
		delete(expected, "hellaswag") // decompressing bzip2 takes the longest
	}
	for name, count := range expected {
		t.Run(name, func(t *testing.T) {
			task, err := LoadTask(name, evalDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(task.Items) != count {
				t.Errorf("%s: %d items, expected %d", name, len(task.Items), count)
			}
		})
	}
}

func TestBLiMPParadigmCount(t *testing.T) {
	task, err := LoadTask("blimp", filepath.Join(testutil.DataDir(t), "eval"))
	if err != nil {
		t.Fatal(err)
	}
	perGroup := map[string]int{}
	for _, item := range task.Items {
		perGroup[item.Group]++
	}
	if len(perGroup) != 67 {
		t.Errorf("%d paradigms, expected 67", len(perGroup))
	}
	for group, count := range perGroup {
		if count != 1000 {
			t.Errorf("paradigm %s has %d pairs, expected 1000", group, count)
		}
	}
}

func TestHellaSwagRealFirstItem(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses the whole HellaSwag file")
	}
	task, err := LoadTask("hellaswag", filepath.Join(testutil.DataDir(t), "eval"))
	if err != nil {
		t.Fatal(err)
	}
	first := task.Items[0]
	if first.Choices[0].Context != "Roof shingle removal: A man is sitting on a roof. he" {
		t.Errorf("first context = %q", first.Choices[0].Context)
	}
	if first.Gold != 3 || first.Choices[3].Continuation != "starts pulling up roofing on a roof." {
		t.Errorf("first gold = %d, ending %q; expected 3 and %q", first.Gold, first.Choices[3].Continuation, "starts pulling up roofing on a roof.")
	}
}

func TestEncodePairGPT2MatchesTiktoken(t *testing.T) {
	tokenizer, err := LoadTokenizer(filepath.Join(testutil.DataDir(t), "tokenizers", "gpt2"))
	if err != nil {
		t.Fatal(err)
	}
	r50k := codec.NewR50kBase()
	encode := func(text string) []int {
		ids, _, err := r50k.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int, len(ids))
		for i, id := range ids {
			out[i] = int(id)
		}
		return out
	}

	cases := []struct{ context, continuation, contextAfterMove string }{
		{"Question: Which is heavier?\nAnswer:", " a brick", "Question: Which is heavier?\nAnswer:"},
		{"The capital of France is ", "Paris", "The capital of France is"},
		{"He said\n\n", "hello", "He said"},
	}
	for _, c := range cases {
		context, continuation := EncodePair(tokenizer, c.context, c.continuation)
		expectedContext := encode(c.contextAfterMove)
		expectedContinuation := encode(c.context + c.continuation)[len(expectedContext):]
		if fmt.Sprint(context) != fmt.Sprint(expectedContext) {
			t.Errorf("%q: context = %v, expected %v", c.context, context, expectedContext)
		}
		if fmt.Sprint(continuation) != fmt.Sprint(expectedContinuation) {
			t.Errorf("%q + %q: continuation = %v, expected %v", c.context, c.continuation, continuation, expectedContinuation)
		}
	}
}

// mergingTestTokenizer is the byte tokenizer plus the tokens "th" (301) and
// "the" (300), matched longest first, so a context "th" merges with "e".
type mergingTestTokenizer struct{ byteTestTokenizer }

func (mergingTestTokenizer) Encode(text string) []int {
	var ids []int
	for i := 0; i < len(text); {
		switch {
		case strings.HasPrefix(text[i:], "the"):
			ids, i = append(ids, 300), i+3
		case strings.HasPrefix(text[i:], "th"):
			ids, i = append(ids, 301), i+2
		default:
			ids, i = append(ids, int(text[i])), i+1
		}
	}
	return ids
}

func TestEncodePairMergedBoundary(t *testing.T) {
	context, continuation := EncodePair(mergingTestTokenizer{}, "th", "e cat")
	if fmt.Sprint(context) != "[301]" {
		t.Errorf("context = %v, expected [301] (\"th\")", context)
	}
	// encode("the cat") = [the, ' ', c, a, t] is longer than encode("th"), so
	// the harness's rule applies and cuts after one token: the "e" merged into
	// "the" is not scored, as in lm-evaluation-harness.
	if fmt.Sprint(continuation) != "[32 99 97 116]" {
		t.Errorf("continuation = %v, expected [32 99 97 116] (\" cat\")", continuation)
	}

	context, continuation = EncodePair(mergingTestTokenizer{}, "th", "e")
	if fmt.Sprint(context) != "[301]" || fmt.Sprint(continuation) != "[101]" {
		t.Errorf("merged boundary: context %v, continuation %v; expected [301] and [101] (\"e\" on its own)", context, continuation)
	}
}
