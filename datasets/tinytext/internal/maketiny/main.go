// Command maketiny builds the shipped tinytext corpus from the Project
// Gutenberg books of the data folder. It strips each chosen book's Gutenberg
// header and licence and normalises CRLF to LF. Then it writes the books under
// train/ and val/ with a books.tsv index, and trains the 4096-token
// tokenizer.json on the training books.
//
// Run it from the repository root:
//
//	go run ./datasets/tinytext/internal/maketiny --data "$GOMOR_DATA" --out datasets/tinytext
package main

import (
	"bufio"
	"flag"
	"fmt"
	"iter"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gomor/gomor/datasets"
)

// book is one chosen book, by its Author/Title path in MANIFEST.tsv.
type book struct {
	split string // "train" or "val"
	path  string
}

// chosenBooks are public-domain classics, about 3 MB of training text and 300 KB
// of validation text once stripped. The README in the output folder explains
// why each one is in the public domain.
var chosenBooks = []book{
	{"train", "Shelley, Mary Wollstonecraft/Frankenstein; Or, The Modern Prometheus.txt"},
	{"train", "Doyle, Arthur Conan/A Study in Scarlet.txt"},
	{"train", "Swift, Jonathan/Gulliver's Travels into Several Remote Nations of the World.txt"},
	{"train", "Montgomery, L. M. (Lucy Maud)/Anne of Green Gables.txt"},
	{"train", "Carroll, Lewis/Alice's Adventures in Wonderland.txt"},
	{"train", "Burroughs, Edgar Rice/A Princess of Mars.txt"},
	{"train", "Joyce, James/Dubliners.txt"},
	{"train", `Kipling, Rudyard/"Captains Courageous": A Story of the Grand Banks.txt`},
	{"val", "Baum, L. Frank (Lyman Frank)/Twinkle and Chubbins: Their Astonishing Adventures in Nature-Fairyland.txt"},
	{"val", "Potter, Beatrix/A Collection of Beatrix Potter Stories.txt"},
}

func main() {
	dataDir := flag.String("data", os.Getenv("GOMOR_DATA"), "data folder that holds gutenberg/MANIFEST.tsv (default $GOMOR_DATA)")
	outDir := flag.String("out", filepath.Join("datasets", "tinytext"), "output folder of the tinytext package")
	vocabSize := flag.Int("vocab-size", 4096, "number of ids of the trained tokenizer, special tokens included")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("maketiny: no data folder; pass --data or set GOMOR_DATA")
	}

	if err := run(*dataDir, *outDir, *vocabSize); err != nil {
		log.Fatalf("maketiny: %v", err)
	}
}

func run(dataDir, outDir string, vocabSize int) error {
	manifest, err := readManifest(filepath.Join(dataDir, "gutenberg", "MANIFEST.tsv"))
	if err != nil {
		return err
	}

	var index strings.Builder
	index.WriteString("split\tfile\tauthor\ttitle\tblob_sha1\tbytes\n")
	var trainTexts []string
	for i, chosen := range chosenBooks {
		entry, found := manifest[chosen.path]
		if !found || entry.split != chosen.split {
			return fmt.Errorf("book %q is not in the %s split of MANIFEST.tsv", chosen.path, chosen.split)
		}
		raw, err := os.ReadFile(filepath.Join(dataDir, "gutenberg", entry.split, entry.blob+".txt"))
		if err != nil {
			return err
		}
		text := datasets.StripGutenberg(string(raw))

		author, title, _ := strings.Cut(strings.TrimSuffix(chosen.path, ".txt"), "/")
		file := fmt.Sprintf("%02d-%s.txt", i+1, slug(title))
		if err := os.WriteFile(filepath.Join(outDir, chosen.split, file), []byte(text), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&index, "%s\t%s\t%s\t%s\t%s\t%d\n", chosen.split, file, author, title, entry.blob, len(text))
		log.Printf("%s/%s: %d bytes (%d raw)", chosen.split, file, len(text), len(raw))
		if chosen.split == "train" {
			trainTexts = append(trainTexts, text)
		}
	}
	if err := os.WriteFile(filepath.Join(outDir, "books.tsv"), []byte(index.String()), 0o644); err != nil {
		return err
	}

	start := time.Now()
	tokenizer, err := datasets.TrainBPE(iter.Seq[string](func(yield func(string) bool) {
		for _, text := range trainTexts {
			if !yield(text) {
				return
			}
		}
	}), datasets.DefaultBPETrainOptions(vocabSize))
	if err != nil {
		return err
	}
	log.Printf("trained %v in %v", tokenizer, time.Since(start).Round(time.Millisecond))
	return tokenizer.SaveTokenizerJSON(filepath.Join(outDir, "tokenizer.json"))
}

type manifestEntry struct {
	split, blob string
}

// readManifest maps each Author/Title path of MANIFEST.tsv (split, blob_sha1,
// bytes, path) to its split and blob.
func readManifest(path string) (map[string]manifestEntry, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()

	entries := map[string]manifestEntry{}
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Split(scanner.Text(), "\t")
		if len(fields) != 4 || fields[0] == "split" {
			continue
		}
		entries[fields[3]] = manifestEntry{split: fields[0], blob: fields[1]}
	}
	return entries, scanner.Err()
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slug turns a title into a short file name: "Alice's Adventures in Wonderland" is
// "alices-adventures-in-wonderland".
func slug(title string) string {
	title, _, _ = strings.Cut(title, ":")
	title, _, _ = strings.Cut(title, ";")
	title = strings.NewReplacer("'", "", `"`, "").Replace(strings.ToLower(title))
	s := strings.Trim(nonSlug.ReplaceAllString(title, "-"), "-")
	if len(s) > 40 {
		s = s[:strings.LastIndex(s[:41], "-")]
	}
	return s
}
