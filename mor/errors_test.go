package mor

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomor/gomor/backend"
)

// Graph-building errors must come back from Exec.Call as errors, not crash the
// process: GoMLX recovers only panics that carry an error value.
func TestForwardErrorReturnedByExec(t *testing.T) {
	cfg := testConfig(MiddleCycle, 5, 3)
	store := seededStore(t, 1)
	exec := newLogitsExec(t, backend.MustNew(), store, cfg)

	tooLong := randomTokens(rand.New(rand.NewPCG(27, 28)), 1, cfg.MaxSeqLen+1, cfg.VocabSize)
	_, err := exec.Call(tooLong)
	if err == nil {
		t.Fatalf("a sequence of %d tokens with max_seq_len %d ran without error", cfg.MaxSeqLen+1, cfg.MaxSeqLen)
	}
	if !strings.Contains(err.Error(), "max_seq_len") {
		t.Errorf("error %q does not name max_seq_len", err)
	}
}
