package training

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// ShippedCorpusName is the --data (and --tokenizer) value that selects the corpus compiled into
// the binary, datasets/tinytext, with its 4096-token BPE.
const ShippedCorpusName = "tinytext"

// repositoryRoot walks up from the working directory to the go.mod of module
// github.com/gomor/gomor.
func repositoryRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isGomorModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the working directory is not inside the gomor repository")
		}
		dir = parent
	}
}

func isGomorModule(goMod string) bool {
	file, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == "github.com/gomor/gomor"
		}
	}
	return false
}

// DataRoot returns the folder of the shared corpora, tokenizers and evaluation sets: $GOMOR_DATA,
// else ../shared/data beside the repository checkout (where CI places it), else "".
func DataRoot() string {
	if data := os.Getenv("GOMOR_DATA"); data != "" {
		return data
	}
	root, err := repositoryRoot()
	if err != nil {
		return ""
	}
	candidate := filepath.Join(filepath.Dir(root), "shared", "data")
	if isDir(candidate) {
		return candidate
	}
	return ""
}
