package backend_test

import (
	"testing"
	"time"

	"github.com/gomlx/compute"

	"github.com/gomor/gomor/backend"
	"github.com/gomor/gomor/internal/testutil"
)

func TestMeasureMatMulSmall(t *testing.T) {
	testutil.ForEachBackend(t, func(t *testing.T, b compute.Backend) {
		result, err := backend.MeasureMatMul(b, 64, 3)
		if err != nil {
			t.Fatalf("MeasureMatMul(64, 3) on %s failed: %v", b.Name(), err)
		}
		if len(result.Runs) != 3 {
			t.Errorf("MeasureMatMul(64, 3) on %s timed %d runs, want 3", b.Name(), len(result.Runs))
		}
		if result.Best() <= 0 || result.Best() > time.Minute {
			t.Errorf("fastest 64×64 product on %s took %v, want between 0 and a minute", b.Name(), result.Best())
		}
		if result.GFLOPS() <= 0 {
			t.Errorf("GFLOPS on %s = %v, want > 0", b.Name(), result.GFLOPS())
		}
	})
}

func TestMatMulResultGFLOPS(t *testing.T) {
	// 2·1000³ = 2·10⁹ operations in 0.5 s (the fastest run) is 4 GFLOP/s.
	result := backend.MatMulResult{Size: 1000, Runs: []time.Duration{time.Second, 500 * time.Millisecond, 2 * time.Second}}
	if got := result.GFLOPS(); got < 3.999 || got > 4.001 {
		t.Errorf("GFLOPS for N=1000 and a fastest run of 0.5 s = %v, want 4", got)
	}
}

func TestMeasureMatMulRejectsZeroSize(t *testing.T) {
	b := testutil.Backend(t, backend.ConfigGo)
	if _, err := backend.MeasureMatMul(b, 0, 1); err == nil {
		t.Errorf("MeasureMatMul with size 0 succeeded, want an error")
	}
}
