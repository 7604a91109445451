// Package tinytext is a small public-domain English corpus compiled into the
// binary, with a byte-level BPE tokenizer of 4096 tokens trained on it, so that
// training and the tests run on a fresh machine with nothing downloaded.
//
// The training split is eight Project Gutenberg books (about 3.0 MB) and the
// validation split two books by other authors (about 290 KB), with the
// Gutenberg header and licence removed and CRLF line ends turned into LF.
// README.md lists the books and why each is in the public domain;
// internal/maketiny rebuilds the files and the tokenizer from the Gutenberg
// dump.
package tinytext

import (
	"embed"
	"fmt"
	"iter"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gomor/gomor/datasets"
)

//go:embed books.tsv tokenizer.json train/*.txt val/*.txt
var files embed.FS

// VocabSize is the number of ids of the shipped tokenizer, "<|endoftext|>" (id 0) included.
const VocabSize = 4096

// Split names a part of the corpus.
type Split string

const (
	SplitTrain      Split = "train"
	SplitValidation Split = "val"
)

// Book is one book of the corpus.
type Book struct {
	Split    Split
	File     string // file name under the split's folder, such as "01-frankenstein.txt"
	Author   string // as Project Gutenberg catalogues it: "Shelley, Mary Wollstonecraft"
	Title    string
	BlobSHA1 string // git blob id of the raw file in the Gutenberg dump
	Bytes    int    // size of Text
}

// Text returns the book's text.
func (b Book) Text() string {
	data, err := files.ReadFile(path.Join(string(b.Split), b.File))
	if err != nil {
		panic(fmt.Sprintf("tinytext: embedded book %s/%s is missing: %v", b.Split, b.File, err))
	}
	return string(data)
}

// Books returns every book of both splits in file order.
func Books() []Book {
	return slices.Clone(loadBooks())
}

// Train returns the texts of the training books, one document per book.
func Train() iter.Seq[string] { return documents(SplitTrain) }

// Validation returns the texts of the validation books, one document per book.
func Validation() iter.Seq[string] { return documents(SplitValidation) }

// Source returns the books of a split as a datasets.DocumentSource, with the
// file name as document ID, ready for packing.
func Source(split Split) datasets.DocumentSource {
	var docs []datasets.Document
	for _, book := range loadBooks() {
		if book.Split == split {
			docs = append(docs, datasets.Document{ID: path.Join(string(split), book.File), Text: book.Text()})
		}
	}
	return &datasets.SliceSource{Documents: docs}
}

func documents(split Split) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, book := range loadBooks() {
			if book.Split == split && !yield(book.Text()) {
				return
			}
		}
	}
}

// TokenizerJSON returns the shipped tokenizer in Hugging Face tokenizer.json format.
func TokenizerJSON() []byte {
	data, err := files.ReadFile("tokenizer.json")
	if err != nil {
		panic(fmt.Sprintf("tinytext: embedded tokenizer.json is missing: %v", err))
	}
	return data
}

// Tokenizer returns the shipped tokenizer, parsed once and shared; a BPE is
// safe for concurrent use.
func Tokenizer() (*datasets.BPE, error) {
	return loadTokenizer()
}

var loadTokenizer = sync.OnceValues(func() (*datasets.BPE, error) {
	return datasets.ParseTokenizerJSON(TokenizerJSON(), "tinytext/tokenizer.json")
})

// loadBooks parses books.tsv: a header line, then split, file, author, title,
// blob_sha1 and bytes, separated by tabs.
var loadBooks = sync.OnceValue(func() []Book {
	data, err := files.ReadFile("books.tsv")
	if err != nil {
		panic(fmt.Sprintf("tinytext: embedded books.tsv is missing: %v", err))
	}
	var books []Book
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if i == 0 {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 6 {
			panic(fmt.Sprintf("tinytext: books.tsv line %d has %d fields, want 6: %q", i+1, len(fields), line))
		}
		size, err := strconv.Atoi(fields[5])
		if err != nil {
			panic(fmt.Sprintf("tinytext: books.tsv line %d has an invalid byte count: %v", i+1, err))
		}
		books = append(books, Book{
			Split: Split(fields[0]), File: fields[1], Author: fields[2], Title: fields[3],
			BlobSHA1: fields[4], Bytes: size,
		})
	}
	return books
})
