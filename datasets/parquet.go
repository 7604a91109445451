package datasets

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// parquetSource streams the text column of a Parquet file, one document per
// row, reading only the text and ID columns page by page (the FineWeb-Edu
// schema has text, id, url and several metadata columns).
type parquetSource struct {
	path     string
	file     *os.File
	parquet  *parquet.File
	textCol  *parquet.Column
	idCol    *parquet.Column // nil when the file has no usable ID column
	rowGroup int             // index of the next row group to open
	text     *columnValues
	ids      *columnValues
	row      int64 // 0-based index of the next row in the file
}

func openParquet(path string, opts CorpusOptions) (*parquetSource, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, err)
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("corpus %s: %w", path, err)
	}
	parsed, err := parquet.OpenFile(file, info.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("corpus %s: not a readable Parquet file: %w", path, err)
	}

	textCol, err := stringColumn(parsed, opts.textField())
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("corpus %s: %w; choose the text column with --text-field", path, err)
	}
	idCol, _ := stringColumn(parsed, opts.idField())

	return &parquetSource{path: path, file: file, parquet: parsed, textCol: textCol, idCol: idCol}, nil
}

// stringColumn returns the top-level, non-repeated byte-array column name.
func stringColumn(file *parquet.File, name string) (*parquet.Column, error) {
	column := file.Root().Column(name)
	if column == nil {
		var names []string
		for _, c := range file.Root().Columns() {
			names = append(names, c.Name())
		}
		return nil, fmt.Errorf("missing column %q (columns present: %v)", name, names)
	}
	if !column.Leaf() || column.Repeated() {
		return nil, fmt.Errorf("column %q is a group or a list, expected a string column", name)
	}
	if kind := column.Type().Kind(); kind != parquet.ByteArray {
		return nil, fmt.Errorf("column %q has type %s, expected a string (BYTE_ARRAY) column", name, kind)
	}
	return column, nil
}

func (s *parquetSource) Next() (Document, error) {
	for {
		if s.text == nil {
			if !s.openRowGroup() {
				return Document{}, io.EOF
			}
		}

		value, err := s.text.next()
		if errors.Is(err, io.EOF) {
			s.closeRowGroup()
			continue
		}
		if err != nil {
			return Document{}, fmt.Errorf("corpus %s: row %d, column %q: %w", s.path, s.row, s.textCol.Name(), err)
		}

		id := s.path + ":" + strconv.FormatInt(s.row, 10)
		if s.ids != nil {
			idValue, err := s.ids.next()
			if err != nil {
				return Document{}, fmt.Errorf("corpus %s: row %d, column %q: %w", s.path, s.row, s.idCol.Name(), err)
			}
			if !idValue.IsNull() {
				id = string(idValue.ByteArray())
			}
		}
		s.row++

		var text string
		if !value.IsNull() {
			text = string(value.ByteArray())
		}
		return Document{ID: id, Text: text}, nil
	}
}

// openRowGroup starts reading the next row group and reports whether there is one.
func (s *parquetSource) openRowGroup() bool {
	groups := s.parquet.RowGroups()
	if s.rowGroup >= len(groups) {
		return false
	}
	chunks := groups[s.rowGroup].ColumnChunks()
	s.rowGroup++

	s.text = &columnValues{pages: chunks[s.textCol.Index()].Pages()}
	if s.idCol != nil {
		s.ids = &columnValues{pages: chunks[s.idCol.Index()].Pages()}
	}
	return true
}

func (s *parquetSource) closeRowGroup() {
	if s.text != nil {
		s.text.close()
		s.text = nil
	}
	if s.ids != nil {
		s.ids.close()
		s.ids = nil
	}
}

func (s *parquetSource) Close() error {
	s.closeRowGroup()
	return s.file.Close()
}

// columnValues reads the values of one column chunk in row order. For a
// top-level non-repeated column there is exactly one value (maybe null) per row.
type columnValues struct {
	pages    parquet.Pages
	page     parquet.Page
	reader   parquet.ValueReader
	buffer   []parquet.Value
	position int
	count    int
}

func (c *columnValues) next() (parquet.Value, error) {
	for c.position >= c.count {
		if err := c.fill(); err != nil {
			return parquet.Value{}, err
		}
	}
	value := c.buffer[c.position]
	c.position++
	return value, nil
}

// fill reads the next batch of values, moving to the next page when needed.
func (c *columnValues) fill() error {
	if c.buffer == nil {
		c.buffer = make([]parquet.Value, 256)
	}
	for {
		if c.reader == nil {
			page, err := c.pages.ReadPage()
			if err != nil {
				return err
			}
			c.releasePage()
			c.page = page
			c.reader = page.Values()
		}

		n, err := c.reader.ReadValues(c.buffer)
		c.position, c.count = 0, n
		if errors.Is(err, io.EOF) {
			c.reader = nil
			err = nil
		}
		if err != nil || n > 0 {
			return err
		}
	}
}

// releasePage returns the current page's buffers to parquet-go's pool. The
// values handed out earlier were already copied into Go strings.
func (c *columnValues) releasePage() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
}

func (c *columnValues) close() {
	c.releasePage()
	c.pages.Close()
}
