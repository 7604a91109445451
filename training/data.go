package training

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// BatchSource yields training batches in a reproducible order and can be rewound to a saved
// position, so a resumed run gets exactly the batches of an uninterrupted run.
type BatchSource interface {
	// Next returns the next batch as B·L token ids in row-major [B, L] order.
	Next() ([]int32, error)

	// Position returns an encoded state from which Restore continues with the same batches.
	Position() ([]byte, error)

	// Restore rewinds the source to a state returned by Position.
	Restore(position []byte) error
}

// PackRows cuts a token stream into contiguous rows of seqLen tokens and drops the remainder, the
// way the MoR reference packs documents (joined by EOS, attention across document boundaries).
func PackRows(stream []int32, seqLen int) [][]int32 {
	numRows := len(stream) / seqLen
	rows := make([][]int32, numRows)
	for i := range rows {
		rows[i] = stream[i*seqLen : (i+1)*seqLen]
	}
	return rows
}

// RowBatches serves batches of packed rows. Each epoch visits every row once in an order drawn
// from (Seed, epoch), so the order depends only on the position and never on wall-clock state.
type RowBatches struct {
	rows      [][]int32
	batchSize int
	seed      uint64

	state rowBatchesState
	order []int // permutation of the current epoch
}

type rowBatchesState struct {
	Epoch int    `json:"epoch"`
	Next  int    `json:"next_row"` // index into the epoch's permutation
	Seed  uint64 `json:"seed"`
	Rows  int    `json:"rows"`
}

// NewRowBatches returns a source of batches of batchSize rows; it needs at least batchSize rows.
func NewRowBatches(rows [][]int32, batchSize int, seed uint64) (*RowBatches, error) {
	if batchSize < 1 {
		return nil, fmt.Errorf("invalid batch size %d: use at least 1 row per batch", batchSize)
	}
	if len(rows) < batchSize {
		return nil, fmt.Errorf("the training data has %d rows but a batch needs %d: use more text, a shorter sequence length or a smaller batch", len(rows), batchSize)
	}
	b := &RowBatches{rows: rows, batchSize: batchSize, seed: seed}
	b.state = rowBatchesState{Seed: seed, Rows: len(rows)}
	b.shuffle()
	return b, nil
}

func (b *RowBatches) shuffle() {
	rng := rand.New(rand.NewPCG(b.seed, uint64(b.state.Epoch)))
	b.order = rng.Perm(len(b.rows))
}

// Next implements BatchSource. A batch never spans two epochs: rows left over at the end of an
// epoch are skipped.
func (b *RowBatches) Next() ([]int32, error) {
	if b.state.Next+b.batchSize > len(b.order) {
		b.state.Epoch++
		b.state.Next = 0
		b.shuffle()
	}
	seqLen := len(b.rows[0])
	batch := make([]int32, 0, b.batchSize*seqLen)
	for _, rowIndex := range b.order[b.state.Next : b.state.Next+b.batchSize] {
		batch = append(batch, b.rows[rowIndex]...)
	}
	b.state.Next += b.batchSize
	return batch, nil
}

// Position implements BatchSource.
func (b *RowBatches) Position() ([]byte, error) {
	return json.Marshal(b.state)
}

// Restore implements BatchSource; it rejects a position saved for other data.
func (b *RowBatches) Restore(position []byte) error {
	var state rowBatchesState
	if err := json.Unmarshal(position, &state); err != nil {
		return fmt.Errorf("invalid data position %q: %w", position, err)
	}
	if state.Seed != b.seed || state.Rows != len(b.rows) {
		return fmt.Errorf("the checkpoint's data position is for %d rows with seed %d, but this run has %d rows with seed %d: resume with the same data, sequence length and seed", state.Rows, state.Seed, len(b.rows), b.seed)
	}
	b.state = state
	b.shuffle()
	return nil
}

// Epoch returns the number of completed passes over the rows.
func (b *RowBatches) Epoch() int { return b.state.Epoch }
