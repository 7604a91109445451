package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTokenizeInput writes text to a file in a temporary folder.
func writeTokenizeInput(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The shipped tokenizer gives id 1+b to byte b and splits digits, so "123"
// is 1+'1', 1+'2', 1+'3' = 50 51 52.
func TestTokenizePrintsIDs(t *testing.T) {
	path := writeTokenizeInput(t, "digits.txt", "123")
	var stdout, stderr bytes.Buffer
	if err := tokenizeCommand([]string{"--tokenizer", "tinytext", path}, &stdout, &stderr); err != nil {
		t.Fatalf("mor tokenize: %v (%s)", err, stderr.String())
	}
	if got := stdout.String(); got != "50 51 52\n" {
		t.Errorf("output %q, want %q", got, "50 51 52\n")
	}
}

func TestTokenizeCountAndTokens(t *testing.T) {
	first := writeTokenizeInput(t, "a.txt", "123")
	second := writeTokenizeInput(t, "b.txt", "45")
	var stdout, stderr bytes.Buffer
	if err := tokenizeCommand([]string{"--count", first, second}, &stdout, &stderr); err != nil {
		t.Fatalf("mor tokenize --count: %v", err)
	}
	want := "3\t" + first + "\n2\t" + second + "\n5\ttotal\n"
	if got := stdout.String(); got != want {
		t.Errorf("--count output %q, want %q", got, want)
	}

	stdout.Reset()
	if err := tokenizeCommand([]string{"--tokens", second}, &stdout, &stderr); err != nil {
		t.Fatalf("mor tokenize --tokens: %v", err)
	}
	if got, want := stdout.String(), "53\t\"4\"\n54\t\"5\"\n"; got != want {
		t.Errorf("--tokens output %q, want %q", got, want)
	}
}

func TestTokenizeErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := tokenizeCommand([]string{"--tokenizer", filepath.Join(t.TempDir(), "absent.json"), "x.txt"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing tokenizer: error %v, want one naming absent.json", err)
	}
	err = tokenizeCommand([]string{"--count"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no input file") {
		t.Errorf("no file: error %v, want one saying there is no input file", err)
	}
	err = tokenizeCommand([]string{filepath.Join(t.TempDir(), "missing.txt")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing input: error %v, want one naming missing.txt", err)
	}
}
