package export

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/records"
)

// JSONL writes one JSON object a line:
// {"id","form","scope","seq","updated_at","conflict","values"}, plus
// "review" and "deleted".
type JSONL struct {
	w   *bufio.Writer
	opt Options
	buf []byte
}

// NewJSONL returns a JSON Lines encoder writing to w. Call Close at the end.
func NewJSONL(w io.Writer, opt Options) *JSONL {
	return &JSONL{w: bufio.NewWriterSize(w, 64<<10), opt: opt}
}

// Start implements records.ExportWriter.
func (j *JSONL) Start(s records.ExportSnapshot) error {
	if j.opt.OnStart != nil {
		j.opt.OnStart(s)
	}
	return nil
}

// Row implements records.ExportWriter. It returns the writer's error.
//
// The line is assembled by hand: ids are UUIDs, form, scope and review are
// [a-z0-9_-] names and updated_at a timestamp, none of which needs escaping,
// and the values are already one JSON object as stored. Any other string is
// quoted by strconv-compatible JSON quoting.
func (j *JSONL) Row(r *records.ExportRow) error {
	b := j.buf[:0]
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"form":`...)
	b = appendString(b, r.Form)
	b = append(b, `,"scope":`...)
	b = appendString(b, r.Scope)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"updated_at":`...)
	b = appendString(b, r.UpdatedAt)
	b = append(b, `,"conflict":`...)
	b = strconv.AppendBool(b, r.Conflict)
	b = append(b, `,"values":`...)
	if len(r.Values) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, r.Values...)
	}
	b = append(b, `,"review":`...)
	b = appendString(b, r.Review)
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, r.Deleted)
	b = append(b, "}\n"...)
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

// appendString appends s as a JSON string: plain when it needs no escape,
// else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Close flushes what is buffered. It returns the writer's error.
func (j *JSONL) Close() error { return j.w.Flush() }
