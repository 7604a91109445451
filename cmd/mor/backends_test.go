package main

import (
	"strings"
	"testing"
)

func TestBackendsFlagsDefaults(t *testing.T) {
	parsed, err := parseBackendsFlags(nil)
	if err != nil {
		t.Fatalf("parsing no flags failed: %v", err)
	}
	if parsed.size != 2048 {
		t.Errorf("default -size = %d, want 2048", parsed.size)
	}
	if parsed.repeats != 5 {
		t.Errorf("default -repeats = %d, want 5", parsed.repeats)
	}
	if parsed.noBench {
		t.Errorf("default -no-bench = true, want false")
	}
}

func TestBackendsFlagsRejectInvalid(t *testing.T) {
	for _, args := range [][]string{{"-size", "0"}, {"-repeats", "-1"}, {"extra"}} {
		if _, err := parseBackendsFlags(args); err == nil {
			t.Errorf("parseBackendsFlags(%q) succeeded, want an error", args)
		}
	}
}

func TestBackendsUnknownBackendFails(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "bogus")
	err := runBackends([]string{"-no-bench"})
	if err == nil {
		t.Fatalf("mor backends with GOMLX_BACKEND=bogus succeeded, want an error")
	}
	if !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("error %q does not name the value \"bogus\"", err)
	}
}

func TestBackendsSmallBenchmarkRuns(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	if err := runBackends([]string{"-size", "32", "-repeats", "1"}); err != nil {
		t.Errorf("mor backends -size 32 -repeats 1 failed: %v", err)
	}
}
