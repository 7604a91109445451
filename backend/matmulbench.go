package backend

import (
	"fmt"
	"slices"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// MatMulResult is the measured fp32 throughput of an N×N by N×N matrix product on one backend.
type MatMulResult struct {
	Size    int             // N
	Runs    []time.Duration // one per timed run, in order
	Compile time.Duration   // first call: graph building, compilation and one run; not in Runs
}

// Best returns the fastest timed run.
func (r MatMulResult) Best() time.Duration {
	return slices.Min(r.Runs)
}

// GFLOPS returns 2·N³ floating-point operations divided by the fastest run, in units of 10⁹ per second.
func (r MatMulResult) GFLOPS() float64 {
	n := float64(r.Size)
	return 2 * n * n * n / r.Best().Seconds() / 1e9
}

// MeasureMatMul times repeats fp32 matrix products of two N×N matrices on b, after one untimed
// call that builds and compiles the graph. Inputs stay on the device between runs. Each timed
// run includes reading the product back to host memory, which also waits for an asynchronous
// backend to finish; for N=2048 that is a 16 MiB copy, small next to the 17 GFLOP product.
func MeasureMatMul(b compute.Backend, size, repeats int) (result MatMulResult, err error) {
	if size < 1 || repeats < 1 {
		return result, fmt.Errorf("matrix product benchmark needs size >= 1 and repeats >= 1, got size %d and repeats %d", size, repeats)
	}
	result.Size = size

	// Graph construction panics the GoMLX way; report it as an error naming the backend.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("matrix product benchmark on %s failed: %v", b.Name(), r)
		}
	}()

	lhs, rhs := benchmarkMatrix(size, 1), benchmarkMatrix(size, 2)
	for _, input := range []*tensors.Tensor{lhs, rhs} {
		if err := input.MaterializeOnDevice(b, true, 0); err != nil {
			return result, fmt.Errorf("copying a %d×%d input to %s failed: %w", size, size, b.Name(), err)
		}
	}
	exec, err := graph.NewExec(b, graph.MatMul)
	if err != nil {
		return result, err
	}
	defer exec.Finalize()

	start := time.Now()
	if err := runMatMul(exec, lhs, rhs); err != nil {
		return result, err
	}
	result.Compile = time.Since(start)

	for range repeats {
		start := time.Now()
		if err := runMatMul(exec, lhs, rhs); err != nil {
			return result, err
		}
		result.Runs = append(result.Runs, time.Since(start))
	}
	return result, nil
}

// runMatMul runs the product once and reads it back to host memory.
func runMatMul(exec *graph.Exec, lhs, rhs *tensors.Tensor) error {
	outputs, err := exec.Call(lhs, rhs)
	if err != nil {
		return err
	}
	product := outputs[0]
	defer product.MustFinalizeAll()

	if _, err := tensors.CopyFlatData[float32](product); err != nil {
		return fmt.Errorf("reading the matrix product back failed: %w", err)
	}
	return nil
}

// benchmarkMatrix returns an N×N float32 matrix with values in [-1, 1) from a fixed-seed
// linear congruential generator, so that every run multiplies the same numbers.
func benchmarkMatrix(size int, seed uint32) *tensors.Tensor {
	data := make([]float32, size*size)
	state := seed
	for i := range data {
		state = state*1664525 + 1013904223
		data[i] = float32(state>>8)/float32(1<<23) - 1
	}
	return tensors.FromFlatDataAndDimensions(data, size, size) // [N, N]
}
