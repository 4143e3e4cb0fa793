package export

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/records"
)

// CSV writes RFC 4180 CSV (CRLF line ends, UTF-8): a header
// id,form,scope,seq,updated_at,conflict then the field names in sorted
// order; a string value as it is, null or absent as an empty cell, any
// other value as JSON.
type CSV struct {
	bw     *bufio.Writer
	w      *csv.Writer
	opt    Options
	fields []string
	cells  []string
}

// NewCSV returns a CSV encoder writing to w. Call Close at the end.
func NewCSV(w io.Writer, opt Options) *CSV {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	return &CSV{bw: bw, w: cw, opt: opt}
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
	return c.w.Write(header)
}

// Row implements records.ExportWriter. It returns the writer's error.
func (c *CSV) Row(r *records.ExportRow) error {
	cells := c.cells[:0]
	cells = append(cells, r.ID, r.Form, r.Scope, strconv.FormatUint(r.Seq, 10), r.UpdatedAt, strconv.FormatBool(r.Conflict))
	if c.opt.ReviewColumn {
		cells = append(cells, r.Review)
	}
	for _, f := range c.fields {
		cells = append(cells, cell(r.Values[f]))
	}
	return c.w.Write(cells)
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
func (c *CSV) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}
