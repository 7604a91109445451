package training

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadMetricsSkipsPartialLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	content := `{"step":1,"lm_loss":5.5}` + "\n" + `{"step":2,"lm_loss":5.25}` + "\n" + `{"step":3,"lm_lo`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	records, err := ReadMetrics(path)
	if err != nil {
		t.Fatalf("ReadMetrics failed on a log whose last line a killed run left half-written: %v", err)
	}
	if len(records) != 2 {
		t.Fatalf("got %d records, want the 2 complete ones", len(records))
	}
	if records[1].Step != 2 {
		t.Errorf("second record has step %d, want 2", records[1].Step)
	}
}

func TestReadMetricsRejectsCorruptMiddleLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	content := `{"step":1}` + "\n" + `not json` + "\n" + `{"step":3}` + "\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := ReadMetrics(path)
	if err == nil {
		t.Fatal("ReadMetrics accepted a corrupt line in the middle of the log")
	}
	if !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %q does not name line 2", err)
	}
}
