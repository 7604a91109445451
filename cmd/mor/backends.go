package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gomor/gomor/backend"
)

func init() {
	register(command{
		name:    "backends",
		summary: "list the compute backends, the active one, and their fp32 matrix-product GFLOP/s",
		run:     runBackends,
	})
}

type backendsFlags struct {
	size    int
	repeats int
	noBench bool
}

func parseBackendsFlags(args []string) (backendsFlags, error) {
	var parsed backendsFlags
	flags := flag.NewFlagSet("backends", flag.ContinueOnError)
	flags.IntVar(&parsed.size, "size", 2048, "matrix dimension N of the benchmark: an N×N by N×N fp32 product (2·N³ floating-point operations)")
	flags.IntVar(&parsed.repeats, "repeats", 5, "number of timed products per backend; the fastest one is reported")
	flags.BoolVar(&parsed.noBench, "no-bench", false, "list the backends without timing the matrix product")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: mor backends [flags]

Lists the compute backends this machine can run (pure Go, XLA CPU, XLA CUDA), which one gomor
uses and why, the PJRT plugin path and PJRT C API version for XLA, and the measured fp32
throughput of a matrix product on each available backend. The first product on each backend
builds and compiles the graph and is not timed. Timed runs include reading the product back to
host memory.

GOMLX_BACKEND chooses the active backend ("go", "xla:cpu", "xla:cuda"); unset, gomor uses XLA
when its plugin loads and pure Go otherwise.

Flags:
`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return parsed, err
	}
	if flags.NArg() > 0 {
		return parsed, fmt.Errorf("unexpected arguments %q; run mor backends --help for the flags", flags.Args())
	}
	if parsed.size < 1 || parsed.repeats < 1 {
		return parsed, fmt.Errorf("invalid -size %d or -repeats %d: both must be at least 1", parsed.size, parsed.repeats)
	}
	return parsed, nil
}

func runBackends(args []string) error {
	parsed, err := parseBackendsFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	selection, selectErr := backend.Select()
	if selectErr != nil {
		fmt.Println("Active backend: none (the error is printed last)")
	} else {
		fmt.Printf("Active backend: %s (%s)\n", selection.Config, selection.Reason)
	}
	registered := backend.Registered()
	slices.Sort(registered)
	fmt.Printf("Compiled-in backend names: %s\n\n", strings.Join(registered, ", "))

	candidates := backend.Candidates()
	printCandidates(candidates)
	if parsed.noBench {
		return selectErr
	}

	fmt.Printf("\nfp32 matrix product %d×%d by %d×%d (%.1f GFLOP), fastest of %d runs after an untimed compile:\n",
		parsed.size, parsed.size, parsed.size, parsed.size, 2*float64(parsed.size)*float64(parsed.size)*float64(parsed.size)/1e9, parsed.repeats)
	benchErr := benchmarkCandidates(candidates, parsed)
	if selectErr != nil {
		return selectErr
	}
	return benchErr
}

func printCandidates(candidates []backend.Candidate) {
	table := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "BACKEND\tSTATUS\tPJRT PLUGIN\tPJRT C API")
	for _, candidate := range candidates {
		status := "available"
		if !candidate.Available {
			status = "unavailable: " + candidate.Reason
		}
		path, version := "-", "-"
		if candidate.Plugin != nil && candidate.Plugin.Path != "" {
			path = candidate.Plugin.Path
			if candidate.Plugin.LoadErr == nil {
				version = fmt.Sprintf("%s (go-xla headers %s)", candidate.Plugin.APIVersion(), backend.HeaderAPIVersion)
			}
		}
		fmt.Fprintf(table, "%s\t%s\t%s\t%s\n", candidate.Config, status, path, version)
	}
	_ = table.Flush()
}

// benchmarkCandidates measures every available backend and returns the first error after
// measuring the others.
func benchmarkCandidates(candidates []backend.Candidate, parsed backendsFlags) error {
	var firstErr error
	for _, candidate := range candidates {
		if !candidate.Available {
			continue
		}
		line, err := benchmarkOne(candidate.Config, parsed)
		if err != nil {
			fmt.Printf("  %-9s failed: %v\n", candidate.Config, err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fmt.Println(line)
	}
	return firstErr
}

func benchmarkOne(config string, parsed backendsFlags) (string, error) {
	b, err := backend.NewWithConfig(config)
	if err != nil {
		return "", err
	}
	defer b.Finalize()

	result, err := backend.MeasureMatMul(b, parsed.size, parsed.repeats)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("  %-9s %8.1f GFLOP/s  (fastest run %v, compile and first run %v; %s)",
		config, result.GFLOPS(), result.Best().Round(100*time.Microsecond), result.Compile.Round(time.Millisecond), b.Description()), nil
}
