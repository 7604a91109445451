// Command pjrtcheck loads one PJRT plugin, prints its PJRT C API version and checks that it
// computes a 2×2 matrix product correctly. scripts/setup runs it after installing a plugin.
//
// Usage: go run ./backend/pjrtcheck /absolute/path/to/pjrt_c_api_cpu_plugin.so
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/gomor/gomor/backend"
)

func main() {
	if len(os.Args) != 2 || !filepath.IsAbs(os.Args[1]) {
		fmt.Fprintln(os.Stderr, "usage: pjrtcheck /absolute/path/to/pjrt_c_api_<name>_plugin.so")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "pjrtcheck: %v\n", err)
		os.Exit(1)
	}
}

func check(path string) error {
	plugin := backend.FindPlugin(path)
	if plugin.LoadErr != nil {
		return fmt.Errorf("PJRT plugin %s failed to load: %w", path, plugin.LoadErr)
	}
	fmt.Printf("PJRT plugin %s loads: PJRT C API %s (go-xla headers: %s)\n", path, plugin.APIVersion(), backend.HeaderAPIVersion)

	b, err := backend.NewWithConfig("xla:" + path)
	if err != nil {
		return err
	}
	defer b.Finalize()

	// [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]].
	output, err := graph.ExecOnce(b, graph.MatMul, [][]float32{{1, 2}, {3, 4}}, [][]float32{{5, 6}, {7, 8}})
	if err != nil {
		return fmt.Errorf("running a 2×2 matrix product on %s failed: %w", path, err)
	}
	got := tensors.MustCopyFlatData[float32](output)
	want := []float32{19, 22, 43, 50}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("2×2 matrix product on %s returned %v, want %v", path, got, want)
		}
	}
	fmt.Printf("2×2 matrix product on %s: %v, as expected\n", b.Name(), got)
	return nil
}
