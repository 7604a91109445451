package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

func init() {
	register(command{
		name:    "version",
		summary: "print the gomor module version, git commit, Go version and GoMLX version",
		run:     runVersion,
	})
}

func runVersion(args []string) error {
	flags := flag.NewFlagSet("version", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "Usage: mor version\n\nPrints the gomor module version, the git commit it was built from, the Go version and the versions of GoMLX, compute and go-xla. It takes no flags.")
	}
	err := flags.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; mor version takes none", flags.Args())
	}

	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("the binary has no build information; build it with module support (go build ./cmd/mor)")
	}
	fmt.Printf("gomor   %s %s\n", info.Main.Path, info.Main.Version)
	fmt.Printf("commit  %s\n", gitCommit(info))
	fmt.Printf("go      %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, path := range []string{"github.com/gomlx/gomlx", "github.com/gomlx/compute", "github.com/gomlx/go-xla"} {
		fmt.Printf("%-7s %s %s\n", filepath.Base(path), path, dependencyVersion(info, path))
	}
	return nil
}

// gitCommit returns the commit recorded by the Go toolchain, or, for builds with -buildvcs=false
// (set through GOFLAGS on some machines), the HEAD of the gomor checkout in the current directory.
func gitCommit(info *debug.BuildInfo) string {
	settings := map[string]string{}
	for _, setting := range info.Settings {
		settings[setting.Key] = setting.Value
	}
	if revision := settings["vcs.revision"]; revision != "" {
		if settings["vcs.modified"] == "true" {
			revision += " (with uncommitted changes)"
		}
		return revision
	}

	root, err := gitOutput("rev-parse", "--show-toplevel")
	if err != nil || !isGomorModule(filepath.Join(root, "go.mod"), info.Main.Path) {
		return "unknown (not recorded at build time, and the current directory is not in a gomor checkout)"
	}
	revision, err := gitOutput("rev-parse", "HEAD")
	if err != nil {
		return "unknown (git rev-parse HEAD failed: " + err.Error() + ")"
	}
	revision += " (HEAD of the checkout " + root
	if status, err := gitOutput("status", "--porcelain", "--untracked-files=no"); err == nil && status != "" {
		revision += ", with uncommitted changes"
	}
	return revision + ")"
}

func gitOutput(args ...string) (string, error) {
	output, err := exec.Command("git", args...).Output()
	return strings.TrimSpace(string(output)), err
}

// isGomorModule reports whether goMod declares the module modulePath.
func isGomorModule(goMod, modulePath string) bool {
	content, err := os.ReadFile(goMod)
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(content), "\n") {
		if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == modulePath
		}
	}
	return false
}

// dependencyVersion returns the version of a module the binary was built with, following replacements.
func dependencyVersion(info *debug.BuildInfo, path string) string {
	for _, dependency := range info.Deps {
		if dependency.Path != path {
			continue
		}
		if dependency.Replace != nil {
			return fmt.Sprintf("%s (replaced by %s %s)", dependency.Version, dependency.Replace.Path, dependency.Replace.Version)
		}
		return dependency.Version
	}
	return "not linked into this binary"
}
