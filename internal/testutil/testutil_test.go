package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

func TestForEachBackendRunsGraph(t *testing.T) {
	ran := 0
	ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		ran++

		// [2,2] x [2,2]: [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]] by hand.
		output, err := graph.ExecOnce(b, func(a, b *graph.Node) *graph.Node {
			return graph.MatMul(a, b)
		}, [][]float32{{1, 2}, {3, 4}}, [][]float32{{5, 6}, {7, 8}})
		if err != nil {
			t.Fatalf("executing a 2x2 matmul on %s failed: %v", b.Name(), err)
		}

		got := tensors.MustCopyFlatData[float32](output)
		want := []float32{19, 22, 43, 50}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("matmul element %d on %s = %v, want %v", i, b.Name(), got[i], want[i])
			}
		}
	})
	if ran == 0 {
		t.Errorf("ForEachBackend ran no subtest, but the pure-Go backend is always available")
	}
}

func TestBackendSharedPerConfig(t *testing.T) {
	first := Backend(t, "go")
	second := Backend(t, "go")
	if first != second {
		t.Errorf("Backend(t, \"go\") returned two different backends, want one shared instance")
	}
}

func TestDataDirFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DataEnvVar, dir)
	if got := DataDir(t); got != dir {
		t.Errorf("DataDir with %s=%s = %s, want %s", DataEnvVar, dir, got, dir)
	}
}

func TestDataDirMissingSkips(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	t.Setenv(DataEnvVar, missing)

	// A subtest observes the skip without skipping this test.
	skipped := false
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		DataDir(t)
	})
	if !skipped {
		t.Errorf("DataDir with %s=%s (a missing folder) did not skip", DataEnvVar, missing)
	}
}

func TestRepoRootHasGoMod(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("RepoRoot = %s, which has no go.mod: %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testutil")); err != nil {
		t.Errorf("RepoRoot = %s, which does not contain internal/testutil: %v", root, err)
	}
}
