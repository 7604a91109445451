package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/gomor/gomor/datasets"
)

func init() {
	register(command{
		name:    "download",
		summary: "download the Gutenberg subset, TinyStories, FineWeb-Edu shards, tokenizers and evaluation tasks",
		run:     runDownload,
	})
}

func runDownload(args []string) error {
	flags := flag.NewFlagSet("download", flag.ContinueOnError)
	baseURL := flags.String("base-url", os.Getenv(datasets.EnvDownloadURL), "mirror that serves files in the data folder's layout (eval/piqa.jsonl, gutenberg/MANIFEST.tsv, ...); empty fetches each file from its upstream source. Default: $"+datasets.EnvDownloadURL)
	dest := flags.String("dest", downloadDataDir(), "data folder to download into. Default: $GOMOR_DATA, else ./data")
	manifest := flags.String("manifest", "", "local copy of gutenberg/MANIFEST.tsv, needed for the Gutenberg subset without --base-url")
	shards := flags.Int("shards", 1, "number of FineWeb-Edu sample/10BT Parquet files to fetch, 1 to 14")
	list := flags.Bool("list", false, "list what can be downloaded and exit")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: mor download [--base-url URL] [--dest DIR] WHAT...\n\nDownloads files into the data folder. Each file is written to NAME.part, resumed after an interruption, checked against its recorded sha256 (or git blob id for Gutenberg books) when one is known, and renamed into place only when complete. Files already in place are checked and skipped.\n\nWHAT is one of: %s\n\nFlags:\n", strings.Join(datasets.DownloadNames(), ", "))
		flags.PrintDefaults()
	}
	err := flags.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if *list {
		fmt.Println(strings.Join(datasets.DownloadNames(), "\n"))
		return nil
	}
	if flags.NArg() == 0 {
		return fmt.Errorf("name what to download (one of %s); run `mor download --help`", strings.Join(datasets.DownloadNames(), ", "))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	downloader := &datasets.Downloader{
		BaseURL: *baseURL,
		Dest:    *dest,
		Logf:    func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
	}
	options := datasets.CatalogOptions{FineWebShards: *shards, GutenbergManifest: *manifest}
	fetchManifest := func() (string, error) { return downloader.FetchGutenbergManifest(ctx) }

	for _, what := range flags.Args() {
		files, err := datasets.DownloadCatalog(what, options, fetchManifest)
		if err != nil {
			return err
		}
		fetched, present, err := downloader.FetchAll(ctx, files)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d files fetched, %d already present, in %s\n", what, fetched, present, *dest)
	}
	return nil
}

// downloadDataDir returns $GOMOR_DATA, else "data" in the working folder.
func downloadDataDir() string {
	if dir := os.Getenv("GOMOR_DATA"); dir != "" {
		return dir
	}
	return "data"
}
