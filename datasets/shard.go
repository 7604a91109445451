package datasets

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// A shard file stores rows of token ids, all of one length:
//
//	offset  size  field
//	0       8     magic "GOMORSHD"
//	8       4     format version (ShardVersion)
//	12      4     token width in bytes: 2 (uint16, vocabularies up to 65,536) or 4 (uint32)
//	16      4     row length L in tokens
//	20      4     vocabulary size of the tokenizer
//	24      8     row count
//	32      32    tokenizer identity (sha256 of its files, see TokenizerIdentity)
//	64      4     CRC-32C (Castagnoli) of the payload
//	68      4     CRC-32C of bytes 0..67
//	72      56    zero
//	128     ...   payload: row count × L tokens, little-endian, row after row
//
// All integers are little-endian.

const (
	shardMagic      = "GOMORSHD"
	ShardVersion    = 1
	shardHeaderSize = 128
	// ShardExtension is the file name extension of shard files.
	ShardExtension = ".shard"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ShardHeader describes the rows stored in a shard.
type ShardHeader struct {
	Version     uint32
	TokenWidth  int // bytes per token: 2 or 4
	RowLength   int // tokens per row
	VocabSize   int
	RowCount    int64
	TokenizerID [32]byte
	PayloadCRC  uint32 // CRC-32C of the payload
}

// TokenWidthFor returns the bytes per token needed for a vocabulary size.
func TokenWidthFor(vocabSize int) int {
	if vocabSize <= 1<<16 {
		return 2
	}
	return 4
}

// TokenizerIdentity returns the sha256 of the tokenizer files' contents, in the
// given order, for the shard header's tokenizer identity.
func TokenizerIdentity(paths ...string) ([32]byte, error) {
	hash := sha256.New()
	for _, path := range paths {
		file, err := os.Open(path)
		if err != nil {
			return [32]byte{}, fmt.Errorf("tokenizer identity: %w", err)
		}
		_, err = io.Copy(hash, file)
		file.Close()
		if err != nil {
			return [32]byte{}, fmt.Errorf("tokenizer identity: reading %s: %w", path, err)
		}
	}
	var id [32]byte
	copy(id[:], hash.Sum(nil))
	return id, nil
}

// payloadBytes returns the payload size implied by the header.
func (h ShardHeader) payloadBytes() int64 {
	return h.RowCount * int64(h.RowLength) * int64(h.TokenWidth)
}

// marshal returns the 128-byte header with both checksums filled in.
func (h ShardHeader) marshal() []byte {
	buf := make([]byte, shardHeaderSize)
	copy(buf[0:8], shardMagic)
	binary.LittleEndian.PutUint32(buf[8:], h.Version)
	binary.LittleEndian.PutUint32(buf[12:], uint32(h.TokenWidth))
	binary.LittleEndian.PutUint32(buf[16:], uint32(h.RowLength))
	binary.LittleEndian.PutUint32(buf[20:], uint32(h.VocabSize))
	binary.LittleEndian.PutUint64(buf[24:], uint64(h.RowCount))
	copy(buf[32:64], h.TokenizerID[:])
	binary.LittleEndian.PutUint32(buf[64:], h.PayloadCRC)
	binary.LittleEndian.PutUint32(buf[68:], crc32.Checksum(buf[:68], castagnoli))
	return buf
}

// unmarshalShardHeader parses and checks a header read from path.
func unmarshalShardHeader(path string, buf []byte) (ShardHeader, error) {
	if string(buf[0:8]) != shardMagic {
		return ShardHeader{}, fmt.Errorf("shard %s: not a gomor shard (magic %q, expected %q); pack the corpus with `mor pack`", path, buf[0:8], shardMagic)
	}
	header := ShardHeader{Version: binary.LittleEndian.Uint32(buf[8:])}
	if header.Version != ShardVersion {
		return ShardHeader{}, fmt.Errorf("shard %s: format version %d is not supported (this build reads version %d); repack the corpus with this build's `mor pack`", path, header.Version, ShardVersion)
	}
	if stored, computed := binary.LittleEndian.Uint32(buf[68:]), crc32.Checksum(buf[:68], castagnoli); stored != computed {
		return ShardHeader{}, fmt.Errorf("shard %s: corrupt header (CRC-32C %08x, stored %08x); repack the corpus", path, computed, stored)
	}

	header.TokenWidth = int(binary.LittleEndian.Uint32(buf[12:]))
	header.RowLength = int(binary.LittleEndian.Uint32(buf[16:]))
	header.VocabSize = int(binary.LittleEndian.Uint32(buf[20:]))
	header.RowCount = int64(binary.LittleEndian.Uint64(buf[24:]))
	copy(header.TokenizerID[:], buf[32:64])
	header.PayloadCRC = binary.LittleEndian.Uint32(buf[64:])

	if header.TokenWidth != 2 && header.TokenWidth != 4 {
		return ShardHeader{}, fmt.Errorf("shard %s: invalid token width %d (expected 2 or 4); repack the corpus", path, header.TokenWidth)
	}
	if header.RowLength <= 0 || header.RowCount < 0 {
		return ShardHeader{}, fmt.Errorf("shard %s: invalid row length %d or row count %d; repack the corpus", path, header.RowLength, header.RowCount)
	}
	return header, nil
}

// WriteShard writes rows (row-major, RowCount × RowLength tokens) to path
// atomically: it writes a temporary file in the same folder, syncs it and
// renames it over path, so a crash leaves either the old file or the new one.
// The header's Version, TokenWidth, RowCount and PayloadCRC are filled in here.
func WriteShard(path string, header ShardHeader, rows []int32) error {
	if header.RowLength <= 0 || len(rows)%header.RowLength != 0 {
		return fmt.Errorf("shard %s: %d tokens do not fill rows of %d", path, len(rows), header.RowLength)
	}
	header.Version = ShardVersion
	header.TokenWidth = TokenWidthFor(header.VocabSize)
	header.RowCount = int64(len(rows) / header.RowLength)

	payload, err := encodeTokens(rows, header.TokenWidth, header.VocabSize)
	if err != nil {
		return fmt.Errorf("shard %s: %w", path, err)
	}
	header.PayloadCRC = crc32.Checksum(payload, castagnoli)

	return writeFileAtomically(path, header.marshal(), payload)
}

// encodeTokens returns the little-endian payload of tokens at the given width.
func encodeTokens(tokens []int32, width, vocabSize int) ([]byte, error) {
	payload := make([]byte, len(tokens)*width)
	for i, token := range tokens {
		if token < 0 || int(token) >= vocabSize {
			return nil, fmt.Errorf("token %d at position %d is outside the vocabulary [0, %d)", token, i, vocabSize)
		}
		if width == 2 {
			binary.LittleEndian.PutUint16(payload[2*i:], uint16(token))
		} else {
			binary.LittleEndian.PutUint32(payload[4*i:], uint32(token))
		}
	}
	return payload, nil
}

// writeFileAtomically writes the parts to a temporary file beside path, syncs
// it and renames it to path. The temporary file is removed on any error.
func writeFileAtomically(path string, parts ...[]byte) (err error) {
	temp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			temp.Close()
			os.Remove(temp.Name())
		}
	}()

	for _, part := range parts {
		if _, err = temp.Write(part); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	// CreateTemp creates the file readable by its owner only; shards and
	// downloads are ordinary data files.
	if err = temp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = temp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = temp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(temp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Shard is an open, verified shard file whose rows are read on demand.
type Shard struct {
	Path   string
	Header ShardHeader
	file   *os.File
}

// ReadShardHeader reads and checks the header of a shard without reading its payload.
func ReadShardHeader(path string) (ShardHeader, error) {
	file, err := os.Open(path)
	if err != nil {
		return ShardHeader{}, fmt.Errorf("shard %s: %w", path, err)
	}
	defer file.Close()
	return readCheckedHeader(path, file)
}

// readCheckedHeader reads the header and checks that the file size matches it.
func readCheckedHeader(path string, file *os.File) (ShardHeader, error) {
	info, err := file.Stat()
	if err != nil {
		return ShardHeader{}, fmt.Errorf("shard %s: %w", path, err)
	}
	if info.Size() < shardHeaderSize {
		return ShardHeader{}, fmt.Errorf("shard %s: truncated: %d bytes, shorter than the %d-byte header; repack the corpus", path, info.Size(), shardHeaderSize)
	}

	buf := make([]byte, shardHeaderSize)
	if _, err := io.ReadFull(file, buf); err != nil {
		return ShardHeader{}, fmt.Errorf("shard %s: reading header: %w", path, err)
	}
	header, err := unmarshalShardHeader(path, buf)
	if err != nil {
		return ShardHeader{}, err
	}

	expected := shardHeaderSize + header.payloadBytes()
	if info.Size() < expected {
		return ShardHeader{}, fmt.Errorf("shard %s: truncated: %d bytes, expected %d for %d rows of %d tokens at %d bytes each; repack the corpus",
			path, info.Size(), expected, header.RowCount, header.RowLength, header.TokenWidth)
	}
	if info.Size() > expected {
		return ShardHeader{}, fmt.Errorf("shard %s: %d bytes, expected %d for %d rows of %d tokens at %d bytes each (trailing data); repack the corpus",
			path, info.Size(), expected, header.RowCount, header.RowLength, header.TokenWidth)
	}
	return header, nil
}

// OpenShard opens a shard and verifies its header, size and payload checksum,
// which reads the whole file once.
func OpenShard(path string) (*Shard, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	header, err := readCheckedHeader(path, file)
	if err != nil {
		file.Close()
		return nil, err
	}

	crc := crc32.New(castagnoli)
	if _, err := io.Copy(crc, bufio.NewReaderSize(file, 1<<20)); err != nil {
		file.Close()
		return nil, fmt.Errorf("shard %s: reading payload: %w", path, err)
	}
	if computed := crc.Sum32(); computed != header.PayloadCRC {
		file.Close()
		return nil, fmt.Errorf("shard %s: corrupt payload (CRC-32C %08x, header stores %08x); repack the corpus", path, computed, header.PayloadCRC)
	}
	return &Shard{Path: path, Header: header, file: file}, nil
}

// ReadRow copies row index of the shard into dst, which must hold RowLength tokens.
func (s *Shard) ReadRow(index int64, dst []int32) error {
	if index < 0 || index >= s.Header.RowCount {
		return fmt.Errorf("shard %s: row %d out of range [0, %d)", s.Path, index, s.Header.RowCount)
	}
	if len(dst) != s.Header.RowLength {
		return fmt.Errorf("shard %s: destination has %d tokens, expected the row length %d", s.Path, len(dst), s.Header.RowLength)
	}

	width := s.Header.TokenWidth
	buf := make([]byte, s.Header.RowLength*width)
	offset := shardHeaderSize + index*int64(len(buf))
	if _, err := s.file.ReadAt(buf, offset); err != nil {
		return fmt.Errorf("shard %s: reading row %d: %w", s.Path, index, err)
	}
	for i := range dst {
		if width == 2 {
			dst[i] = int32(binary.LittleEndian.Uint16(buf[2*i:]))
		} else {
			dst[i] = int32(binary.LittleEndian.Uint32(buf[4*i:]))
		}
	}
	return nil
}

// Close closes the shard file.
func (s *Shard) Close() error {
	return s.file.Close()
}

// TokenizerIDString returns the tokenizer identity as hexadecimal.
func (h ShardHeader) TokenizerIDString() string {
	return hex.EncodeToString(h.TokenizerID[:])
}
