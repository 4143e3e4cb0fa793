package export

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/fieldsync/fieldsync/internal/records"
)

// JSONL writes one JSON object a line:
// {"id","form","scope","seq","updated_at","conflict","values"}, plus
// "review" and "deleted".
type JSONL struct {
	w   *bufio.Writer
	enc *json.Encoder
	opt Options
}

type jsonlLine struct {
	ID        string                     `json:"id"`
	Form      string                     `json:"form"`
	Scope     string                     `json:"scope"`
	Seq       uint64                     `json:"seq"`
	UpdatedAt string                     `json:"updated_at"`
	Conflict  bool                       `json:"conflict"`
	Values    map[string]json.RawMessage `json:"values"`
	Review    string                     `json:"review"`
	Deleted   bool                       `json:"deleted"`
}

// NewJSONL returns a JSON Lines encoder writing to w. Call Close at the end.
func NewJSONL(w io.Writer, opt Options) *JSONL {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONL{w: bw, enc: enc, opt: opt}
}

// Start implements records.ExportWriter.
func (j *JSONL) Start(s records.ExportSnapshot) error {
	if j.opt.OnStart != nil {
		j.opt.OnStart(s)
	}
	return nil
}

// Row implements records.ExportWriter. It returns the writer's error.
func (j *JSONL) Row(r *records.ExportRow) error {
	return j.enc.Encode(jsonlLine{ID: r.ID, Form: r.Form, Scope: r.Scope, Seq: r.Seq, UpdatedAt: r.UpdatedAt, Conflict: r.Conflict, Values: r.Values, Review: r.Review, Deleted: r.Deleted})
}

// Close flushes what is buffered. It returns the writer's error.
func (j *JSONL) Close() error { return j.w.Flush() }
