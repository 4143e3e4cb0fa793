package export

import (
	"bufio"
	"io"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
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
// and the values are already one JSON object as stored.
func (j *JSONL) Row(r *records.ExportRow) error {
	b := j.buf[:0]
	b = append(b, `{"id":`...)
	b = sp.AppendJSONString(b, r.ID)
	b = append(b, `,"form":`...)
	b = sp.AppendJSONString(b, r.Form)
	b = append(b, `,"scope":`...)
	b = sp.AppendJSONString(b, r.Scope)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"updated_at":`...)
	b = sp.AppendJSONString(b, r.UpdatedAt)
	b = append(b, `,"conflict":`...)
	b = strconv.AppendBool(b, r.Conflict)
	b = append(b, `,"values":`...)
	if len(r.Values) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, r.Values...)
	}
	b = append(b, `,"review":`...)
	b = sp.AppendJSONString(b, r.Review)
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, r.Deleted)
	b = append(b, "}\n"...)
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

// Close flushes what is buffered. It returns the writer's error.
func (j *JSONL) Close() error { return j.w.Flush() }
