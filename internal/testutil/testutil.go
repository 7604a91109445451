// Package testutil contains helpers shared by gomor tests: running a test on every available
// compute backend and locating the shared data folder.
package testutil

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gomlx/compute"

	"github.com/gomor/gomor/backend"
)

// DataEnvVar names the folder that contains eval/, gutenberg/, tokenizers/ and text/.
const DataEnvVar = "GOMOR_DATA"

var (
	backendsMu sync.Mutex
	backends   = map[string]compute.Backend{} // one per configuration, shared by all tests in a process
	backendErr = map[string]error{}
)

// Backend returns the backend for config ("go", "xla:cpu", "xla:cuda"), created once per test
// binary and shared, or skips t with the reason when it is unavailable.
func Backend(t testing.TB, config string) compute.Backend {
	t.Helper()
	backendsMu.Lock()
	defer backendsMu.Unlock()

	if b, found := backends[config]; found {
		return b
	}
	if err, found := backendErr[config]; found {
		t.Skipf("backend %s unavailable: %v", config, err)
	}

	b, err := backend.NewWithConfig(config)
	if err != nil {
		backendErr[config] = err
		t.Skipf("backend %s unavailable: %v", config, err)
	}
	backends[config] = b
	return b
}

// ForEachBackend runs test as a subtest named after each backend configuration: pure Go always,
// XLA CPU when its PJRT plugin loads, XLA CUDA when an NVIDIA device and its plugin are present.
// A subtest whose backend is unavailable is skipped with the reason, so `go test -v` shows it.
// Backends are shared across tests in the same binary, so tests must not call Finalize on them.
func ForEachBackend(t *testing.T, test func(t *testing.T, b compute.Backend)) {
	t.Helper()
	for _, candidate := range backend.Candidates() {
		t.Run(candidate.Config, func(t *testing.T) {
			if !candidate.Available {
				if candidate.Config == backend.ConfigXLACUDA {
					t.Skipf("XLA CUDA skipped: %s", candidate.Reason)
				}
				t.Skipf("XLA skipped for %s: %s", candidate.Config, candidate.Reason)
			}
			test(t, Backend(t, candidate.Config))
		})
	}
}

// RepoRoot returns the repository root: the nearest folder above the working directory of
// the test (the package folder) that contains go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("reading the working directory failed: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod found above the test's working directory")
		}
		dir = parent
	}
}

// DataDir returns the shared data folder: $GOMOR_DATA when set, else ../shared/data relative to
// the repository root. It skips t with the folder it looked for when the folder does not exist.
func DataDir(t testing.TB) string {
	t.Helper()
	dir, source := os.Getenv(DataEnvVar), DataEnvVar
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "data")
		source = "default ../shared/data beside the repository"
	}

	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		t.Skipf("shared data folder %s (%s) not found: set %s to the folder that contains eval/, gutenberg/, tokenizers/ and text/",
			dir, source, DataEnvVar)
	}
	absolute, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	return absolute
}

// DataFile returns the path of a file under DataDir, skipping t when that file is missing.
func DataFile(t testing.TB, relative string) string {
	t.Helper()
	path := filepath.Join(DataDir(t), relative)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("shared data file %s not found: %v", path, err)
	}
	return path
}
