package export

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/internal/records"
)

// CSV writes RFC 4180 CSV (CRLF between records, UTF-8): a header
// id,form,scope,seq,updated_at,conflict then the field names in sorted
// order; a string value as it is, null or absent as an empty cell, any
// other value as JSON.
//
// encoding/csv is not used: with CRLF record ends it also rewrites line
// breaks inside values, and a value must go out byte for byte.
type CSV struct {
	bw     *bufio.Writer
	opt    Options
	fields []string
	cells  []string
	values map[string]json.RawMessage // reused for every row
}

// NewCSV returns a CSV encoder writing to w. Call Close at the end.
func NewCSV(w io.Writer, opt Options) *CSV {
	return &CSV{bw: bufio.NewWriterSize(w, 64<<10), opt: opt}
}

// writeRecord writes one CSV record: cells quoted when they hold a comma,
// a double quote, CR or LF (quotes doubled), and CRLF at the end.
func (c *CSV) writeRecord(cells []string) error {
	for i, cell := range cells {
		if i > 0 {
			c.bw.WriteByte(',')
		}
		if !strings.ContainsAny(cell, ",\"\r\n") {
			c.bw.WriteString(cell)
			continue
		}
		c.bw.WriteByte('"')
		c.bw.WriteString(strings.ReplaceAll(cell, `"`, `""`))
		c.bw.WriteByte('"')
	}
	_, err := c.bw.WriteString("\r\n")
	return err
}

// fixedColumns come before the field names.
var fixedColumns = []string{"id", "form", "scope", "seq", "updated_at", "conflict"}

// Start implements records.ExportWriter: it writes the BOM if asked and the
// header row.
func (c *CSV) Start(s records.ExportSnapshot) error {
	if c.opt.OnStart != nil {
		c.opt.OnStart(s)
	}
	if c.opt.BOM {
		if _, err := c.bw.WriteString("\uFEFF"); err != nil {
			return err
		}
	}
	c.fields = s.Fields
	header := append([]string{}, fixedColumns...)
	if c.opt.ReviewColumn {
		header = append(header, "_review")
	}
	header = append(header, s.Fields...)
	c.cells = make([]string, len(header))
	return c.writeRecord(header)
}

// Row implements records.ExportWriter. It returns the writer's error.
func (c *CSV) Row(r *records.ExportRow) error {
	cells := c.cells[:0]
	cells = append(cells, r.ID, r.Form, r.Scope, strconv.FormatUint(r.Seq, 10), r.UpdatedAt, strconv.FormatBool(r.Conflict))
	if c.opt.ReviewColumn {
		cells = append(cells, r.Review)
	}
	clear(c.values)
	if c.values == nil {
		c.values = map[string]json.RawMessage{}
	}
	if len(r.Values) > 0 {
		if err := json.Unmarshal(r.Values, &c.values); err != nil {
			return fmt.Errorf("export: record %s: values: %w", r.ID, err)
		}
	}
	for _, f := range c.fields {
		cells = append(cells, cell(c.values[f]))
	}
	return c.writeRecord(cells)
}

// cell renders one value: a JSON string as its text, null or absent as
// empty, anything else as its JSON.
func cell(v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// Close flushes what is buffered. It returns the writer's error.
func (c *CSV) Close() error { return c.bw.Flush() }
