package training

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ShippedCorpusName is the --data value that selects the corpus shipped in the repository.
const ShippedCorpusName = "tinytext"

// ShippedCorpus returns the folder of a corpus shipped in the repository under datasets/<name>/
// and its tokenizer.json. It finds the repository by walking up from the working directory to
// the go.mod of module github.com/gomor/gomor.
func ShippedCorpus(name string) (corpus, tokenizer string, err error) {
	root, err := repositoryRoot()
	if err != nil {
		return "", "", err
	}
	corpus = filepath.Join(root, "datasets", name)
	tokenizer = filepath.Join(corpus, "tokenizer.json")
	for _, path := range []string{corpus, tokenizer} {
		if _, err := os.Stat(path); err != nil {
			return "", "", fmt.Errorf("%w: %s is missing; pass --data and --tokenizer to train on another corpus", ErrNoShippedCorpus, path)
		}
	}
	return corpus, tokenizer, nil
}

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
			return "", fmt.Errorf("%w: the working directory is not inside the gomor repository; run from the checkout or pass --data and --tokenizer", ErrNoShippedCorpus)
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
