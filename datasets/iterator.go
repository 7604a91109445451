package datasets

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
)

// ShardSet is an ordered set of shards with one row length and one tokenizer,
// addressed by a global row index.
type ShardSet struct {
	Shards      []*Shard
	RowLength   int
	VocabSize   int
	TokenizerID [32]byte
	rowStarts   []int64 // global index of each shard's first row, then the total
}

// OpenShardSplit opens the shards of one split ("train" or "val") in a folder
// written by Pack, verifying each one's checksum.
func OpenShardSplit(dir, split string) (*ShardSet, error) {
	paths, err := filepath.Glob(filepath.Join(dir, split+"-*"+ShardExtension))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, fmt.Errorf("packed corpus %s: %w", dir, statErr)
		}
		return nil, fmt.Errorf("packed corpus %s: no %s shards (%s-*%s); pack the corpus with `mor pack`", dir, split, split, ShardExtension)
	}
	sort.Strings(paths)
	return OpenShards(paths...)
}

// OpenShards opens shards in the given order and checks that they agree on
// row length, vocabulary size and tokenizer.
func OpenShards(paths ...string) (*ShardSet, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("open shards: no shard path given")
	}
	set := &ShardSet{rowStarts: []int64{0}}
	for _, path := range paths {
		shard, err := OpenShard(path)
		if err != nil {
			set.Close()
			return nil, err
		}
		if err := set.add(shard); err != nil {
			shard.Close()
			set.Close()
			return nil, err
		}
	}
	return set, nil
}

func (s *ShardSet) add(shard *Shard) error {
	header := shard.Header
	if len(s.Shards) == 0 {
		s.RowLength, s.VocabSize, s.TokenizerID = header.RowLength, header.VocabSize, header.TokenizerID
	}
	first := s.Shards
	switch {
	case header.RowLength != s.RowLength:
		return fmt.Errorf("shard %s: row length %d differs from %d in %s; pack all shards with one --seq-len", shard.Path, header.RowLength, s.RowLength, first[0].Path)
	case header.VocabSize != s.VocabSize || header.TokenizerID != s.TokenizerID:
		return fmt.Errorf("shard %s: tokenizer %s (vocabulary %d) differs from %s (vocabulary %d) in %s; pack all shards with one tokenizer",
			shard.Path, header.TokenizerIDString(), header.VocabSize, ShardHeader{TokenizerID: s.TokenizerID}.TokenizerIDString(), s.VocabSize, first[0].Path)
	}
	s.Shards = append(s.Shards, shard)
	s.rowStarts = append(s.rowStarts, s.rowStarts[len(s.rowStarts)-1]+header.RowCount)
	return nil
}

// Rows returns the total number of rows.
func (s *ShardSet) Rows() int64 {
	return s.rowStarts[len(s.rowStarts)-1]
}

// ReadRow copies global row index into dst, which must hold RowLength tokens.
func (s *ShardSet) ReadRow(index int64, dst []int32) error {
	if index < 0 || index >= s.Rows() {
		return fmt.Errorf("shard set: row %d out of range [0, %d)", index, s.Rows())
	}
	// The shard whose first row is the last one at or before index.
	shard := sort.Search(len(s.Shards), func(i int) bool { return s.rowStarts[i+1] > index })
	return s.Shards[shard].ReadRow(index-s.rowStarts[shard], dst)
}

// Close closes every shard.
func (s *ShardSet) Close() error {
	var firstErr error
	for _, shard := range s.Shards {
		if err := shard.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// IteratorPosition is the state of a BatchIterator between batches. Saving it
// with a checkpoint and passing it to Restore makes training resume with
// exactly the batches it would have seen.
type IteratorPosition struct {
	Seed    uint64 `json:"seed"`
	Shuffle bool   `json:"shuffle"`
	Epoch   int64  `json:"epoch"` // completed passes over the rows
	Index   int64  `json:"index"` // rows of the current epoch already returned
	Rows    int64  `json:"rows"`  // rows in the data set, checked on Restore
}

// BatchIterator yields batches of rows, [B, L] tokens, for ever: each epoch
// visits every row once, in a fresh order derived from the seed and the epoch
// number when shuffling, and in storage order otherwise. A batch that reaches
// the end of an epoch continues with the first rows of the next one.
type BatchIterator struct {
	set          *ShardSet
	batchSize    int
	position     IteratorPosition
	order        []uint32 // row order of position.Epoch, nil without shuffling
	orderOfEpoch int64
}

// NewBatchIterator returns an iterator over set in batches of batchSize rows,
// starting at epoch 0.
func NewBatchIterator(set *ShardSet, batchSize int, seed uint64, shuffle bool) (*BatchIterator, error) {
	if batchSize <= 0 {
		return nil, fmt.Errorf("batch iterator: batch size %d must be positive", batchSize)
	}
	if set.Rows() == 0 {
		return nil, fmt.Errorf("batch iterator: the shards hold no rows; pack more text or use a shorter --seq-len")
	}
	if set.Rows() > math.MaxUint32 {
		return nil, fmt.Errorf("batch iterator: %d rows exceed the supported %d", set.Rows(), uint64(math.MaxUint32))
	}
	return &BatchIterator{
		set:          set,
		batchSize:    batchSize,
		position:     IteratorPosition{Seed: seed, Shuffle: shuffle, Rows: set.Rows()},
		orderOfEpoch: -1,
	}, nil
}

// BatchSize returns B.
func (it *BatchIterator) BatchSize() int { return it.batchSize }

// RowLength returns L.
func (it *BatchIterator) RowLength() int { return it.set.RowLength }

// Position returns the position before the next batch.
func (it *BatchIterator) Position() IteratorPosition { return it.position }

// Restore moves the iterator to a position saved by Position. The batch size
// may differ from the saved run, because the position counts rows.
func (it *BatchIterator) Restore(position IteratorPosition) error {
	if position.Rows != it.set.Rows() {
		return fmt.Errorf("batch iterator: the position was saved over %d rows but these shards hold %d; resume with the same packed corpus", position.Rows, it.set.Rows())
	}
	if position.Epoch < 0 || position.Index < 0 || position.Index >= position.Rows {
		return fmt.Errorf("batch iterator: invalid position epoch %d, index %d for %d rows", position.Epoch, position.Index, position.Rows)
	}
	it.position = position
	return nil
}

// Next fills batch, which must hold B×L tokens, row after row.
func (it *BatchIterator) Next(batch []int32) error {
	rowLength := it.set.RowLength
	if len(batch) != it.batchSize*rowLength {
		return fmt.Errorf("batch iterator: batch has %d tokens, expected %d×%d", len(batch), it.batchSize, rowLength)
	}
	for b := range it.batchSize {
		row := it.currentRow()
		if err := it.set.ReadRow(row, batch[b*rowLength:(b+1)*rowLength]); err != nil {
			return err
		}
		it.advance()
	}
	return nil
}

// currentRow returns the global row index at the current position.
func (it *BatchIterator) currentRow() int64 {
	if !it.position.Shuffle {
		return it.position.Index
	}
	if it.orderOfEpoch != it.position.Epoch {
		it.order = ShuffledOrder(it.position.Rows, it.position.Seed, uint64(it.position.Epoch))
		it.orderOfEpoch = it.position.Epoch
	}
	return int64(it.order[it.position.Index])
}

func (it *BatchIterator) advance() {
	it.position.Index++
	if it.position.Index == it.position.Rows {
		it.position.Index = 0
		it.position.Epoch++
	}
}

// ShuffledOrder returns a permutation of [0, n) that depends only on n, seed
// and epoch: a Fisher–Yates shuffle driven by SplitMix64, implemented here so
// that the order stays the same across Go releases.
func ShuffledOrder(n int64, seed, epoch uint64) []uint32 {
	order := make([]uint32, n)
	for i := range order {
		order[i] = uint32(i)
	}
	rng := splitMix64{state: seed ^ (epoch+1)*0x9E3779B97F4A7C15}
	for i := n - 1; i > 0; i-- {
		j := rng.below(uint64(i + 1))
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// splitMix64 is the SplitMix64 generator (Steele, Lea and Flood, 2014).
type splitMix64 struct{ state uint64 }

func (r *splitMix64) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// below returns a uniform integer in [0, n) by Lemire's multiply-and-reject method.
func (r *splitMix64) below(n uint64) uint64 {
	high, low := bits.Mul64(r.next(), n)
	if low < n {
		threshold := -n % n
		for low < threshold {
			high, low = bits.Mul64(r.next(), n)
		}
	}
	return high
}
