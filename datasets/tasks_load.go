package datasets

import (
	"bufio"
	"compress/bzip2"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// taskSpec is the location of a task's data and its reader.
type taskSpec struct {
	file string // name under the evaluation folder
	load func(name, path string) (*Task, error)
}

// taskFiles lists the tasks LoadTask reads, under their lm-evaluation-harness
// names. Multiple-choice contexts follow the harness's prompts: "Question:
// ...\nAnswer:" for PIQA, ARC and BoolQ, the query as given for the others.
var taskFiles = map[string]taskSpec{
	"lambada_openai": {"lambada_openai.jsonl", loadLambada},
	"hellaswag":      {"hellaswag_val_full.txt.bz2", loadHellaSwag},
	"piqa":           {"piqa.jsonl", queryChoicesLoader(answerPrompt, true)},
	"arc_easy":       {"arc_easy.jsonl", queryChoicesLoader(answerPrompt, true)},
	"arc_challenge":  {"arc_challenge.jsonl", queryChoicesLoader(answerPrompt, true)},
	"winogrande":     {"winogrande.jsonl", loadWinogrande},
	"blimp":          {"blimp", loadBLiMP},
	"openbook_qa":    {"openbook_qa.jsonl", queryChoicesLoader(queryAsIs, true)},
	"copa":           {"copa.jsonl", queryChoicesLoader(queryAsIs, false)},
	"siqa":           {"siqa.jsonl", queryChoicesLoader(queryAsIs, false)},
	"boolq":          {"boolq.jsonl", queryChoicesLoader(answerPrompt, false)},
	"commonsense_qa": {"commonsense_qa.jsonl", queryChoicesLoader(queryAsIs, false)},
}

// LoadTask reads a task by name from evalDir, the folder holding the task
// files (the eval/ folder of the data directory). TaskNames lists the names.
func LoadTask(name, evalDir string) (*Task, error) {
	spec, found := taskFiles[name]
	if !found {
		return nil, fmt.Errorf("unknown task %q; known tasks: %s", name, strings.Join(TaskNames(), ", "))
	}
	path := filepath.Join(evalDir, spec.file)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("task %s: %w; fetch it with `mor download tasks` or set GOMOR_DATA to the folder holding eval/", name, err)
	}
	return spec.load(name, path)
}

// LoadTaskFile reads a task from an explicit file (a folder for BLiMP), in the
// format of the named task.
func LoadTaskFile(name, path string) (*Task, error) {
	spec, found := taskFiles[name]
	if !found {
		return nil, fmt.Errorf("unknown task %q; known tasks: %s", name, strings.Join(TaskNames(), ", "))
	}
	return spec.load(name, path)
}

func newTask(name string, kind TaskKind, normalized bool) *Task {
	return &Task{Name: name, Kind: kind, TargetDelimiter: " ", FewShotDelimiter: "\n\n", ReportNormalized: normalized}
}

// loadLambada reads {"context", "continuation"} lines. The continuation is
// scored as " " + continuation.
func loadLambada(name, path string) (*Task, error) {
	task := newTask(name, GreedyContinuation, false)
	err := ReadJSONLFile(path, func(_ int, line []byte) error {
		var record struct {
			Context      *string `json:"context"`
			Continuation *string `json:"continuation"`
		}
		if err := decodeTaskLine(line, &record); err != nil {
			return err
		}
		if record.Context == nil || record.Continuation == nil {
			return errors.New(`missing "context" or "continuation"; each line needs both strings`)
		}
		task.Items = append(task.Items, TaskItem{Choices: []Choice{{Context: *record.Context, Continuation: *record.Continuation}}})
		return nil
	})
	return checkLoaded(task, path, err)
}

// promptStyle turns a query into the context of its choices.
type promptStyle func(query string) string

// answerPrompt ends the query with "\nAnswer:", as the harness's PIQA, ARC and
// BoolQ prompts do. A query that already ends in a newline keeps only one.
func answerPrompt(query string) string {
	return strings.TrimRight(query, "\n") + "\nAnswer:"
}

func queryAsIs(query string) string { return query }

// queryChoicesLoader returns a loader for {"query", "choices", "gold"} lines.
func queryChoicesLoader(prompt promptStyle, normalized bool) func(name, path string) (*Task, error) {
	return func(name, path string) (*Task, error) {
		task := newTask(name, MultipleChoice, normalized)
		err := ReadJSONLFile(path, func(_ int, line []byte) error {
			var record struct {
				Query   *string  `json:"query"`
				Choices []string `json:"choices"`
				Gold    *int     `json:"gold"`
			}
			if err := decodeTaskLine(line, &record); err != nil {
				return err
			}
			if record.Query == nil || record.Gold == nil {
				return errors.New(`missing "query" or "gold"; each line needs {"query", "choices", "gold"}`)
			}
			if err := checkGold(*record.Gold, len(record.Choices)); err != nil {
				return err
			}
			context := prompt(*record.Query)
			item := TaskItem{Gold: *record.Gold}
			for _, choice := range record.Choices {
				item.Choices = append(item.Choices, Choice{Context: context, Continuation: choice})
			}
			task.Items = append(task.Items, item)
			return nil
		})
		return checkLoaded(task, path, err)
	}
}

// loadWinogrande reads {"context_options"[2], "continuation", "gold"} lines.
// Partial scoring: the shared continuation is scored after each context.
func loadWinogrande(name, path string) (*Task, error) {
	task := newTask(name, MultipleChoice, false)
	err := ReadJSONLFile(path, func(_ int, line []byte) error {
		var record struct {
			ContextOptions []string `json:"context_options"`
			Continuation   *string  `json:"continuation"`
			Gold           *int     `json:"gold"`
		}
		if err := decodeTaskLine(line, &record); err != nil {
			return err
		}
		if record.Continuation == nil || record.Gold == nil {
			return errors.New(`missing "continuation" or "gold"; each line needs {"context_options", "continuation", "gold"}`)
		}
		if err := checkGold(*record.Gold, len(record.ContextOptions)); err != nil {
			return err
		}
		item := TaskItem{Gold: *record.Gold}
		for _, context := range record.ContextOptions {
			item.Choices = append(item.Choices, Choice{Context: context, Continuation: *record.Continuation})
		}
		task.Items = append(task.Items, item)
		return nil
	})
	return checkLoaded(task, path, err)
}

// loadHellaSwag reads the bzip2 text format: six lines per item, the context
// ("activity label: context"), the gold index, then four endings.
func loadHellaSwag(name, path string) (*Task, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", name, err)
	}
	defer file.Close()

	task := newTask(name, MultipleChoice, true)
	reader := bufio.NewReaderSize(bzip2.NewReader(file), 1<<16)
	for lineNum := 1; ; lineNum += 6 {
		lines, err := readLines(reader, 6)
		if errors.Is(err, io.EOF) && len(lines) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: line %d: %w", path, lineNum, err)
		}
		if len(lines) < 6 {
			return nil, fmt.Errorf("%s: line %d: the last item has %d of 6 lines (context, gold, four endings); the file is truncated", path, lineNum, len(lines))
		}

		gold, err := strconv.Atoi(strings.TrimSpace(lines[1]))
		if err != nil || gold < 0 || gold > 3 {
			return nil, fmt.Errorf("%s: line %d: gold %q is not an index 0-3; the lines are out of step (6 per item)", path, lineNum+1, lines[1])
		}
		item := TaskItem{Gold: gold}
		for _, ending := range lines[2:] {
			item.Choices = append(item.Choices, Choice{Context: lines[0], Continuation: ending})
		}
		task.Items = append(task.Items, item)
	}
	return checkLoaded(task, path, nil)
}

// readLines reads up to n lines without their line ends.
func readLines(reader *bufio.Reader, n int) ([]string, error) {
	var lines []string
	for len(lines) < n {
		line, err := reader.ReadString('\n')
		if line != "" {
			lines = append(lines, strings.TrimRight(line, "\r\n"))
		}
		if err != nil {
			return lines, err
		}
	}
	return lines, nil
}

// loadBLiMP reads BLiMP paradigm files, {"sentence_good", "sentence_bad", "UID"}
// per line, from a folder (every *.jsonl in it) or a single file. Each pair is
// scored as two whole sentences after EOS, and the good one should be likelier.
// A tie counts as correct, because the harness's argmax picks the first choice.
func loadBLiMP(name, path string) (*Task, error) {
	paths := []string{path}
	if info, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("task %s: %w", name, err)
	} else if info.IsDir() {
		paths, _ = filepath.Glob(filepath.Join(path, "*.jsonl"))
		sort.Strings(paths)
		if len(paths) == 0 {
			return nil, fmt.Errorf("task %s: no paradigm files (*.jsonl) in %s", name, path)
		}
	}

	task := newTask(name, MultipleChoice, false)
	for _, file := range paths {
		defaultGroup := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		err := ReadJSONLFile(file, func(_ int, line []byte) error {
			var record struct {
				Good *string `json:"sentence_good"`
				Bad  *string `json:"sentence_bad"`
				UID  string  `json:"UID"`
			}
			if err := decodeTaskLine(line, &record); err != nil {
				return err
			}
			if record.Good == nil || record.Bad == nil {
				return errors.New(`missing "sentence_good" or "sentence_bad"`)
			}
			group := record.UID
			if group == "" {
				group = defaultGroup
			}
			task.Items = append(task.Items, TaskItem{Gold: 0, Group: group, Choices: []Choice{{Continuation: *record.Good}, {Continuation: *record.Bad}}})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", name, err)
		}
	}
	return checkLoaded(task, path, nil)
}

// decodeTaskLine decodes one JSON line. Its error quotes the line.
func decodeTaskLine(line []byte, record any) error {
	if err := json.Unmarshal(line, record); err != nil {
		return fmt.Errorf("invalid JSON (%v): %s; fix or delete the line", err, abbreviate(string(line), 80))
	}
	return nil
}

func checkGold(gold, choices int) error {
	if choices < 2 {
		return fmt.Errorf("%d choices, expected at least 2", choices)
	}
	if gold < 0 || gold >= choices {
		return fmt.Errorf("gold %d is outside the %d choices", gold, choices)
	}
	return nil
}

// checkLoaded prefixes a read error with the task and rejects an empty file.
func checkLoaded(task *Task, path string, err error) (*Task, error) {
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", task.Name, err)
	}
	if len(task.Items) == 0 {
		return nil, fmt.Errorf("task %s: %s contains no items", task.Name, path)
	}
	return task, nil
}
