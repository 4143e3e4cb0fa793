package syncproto

import (
	"bytes"
	"encoding/json"
	"sort"
)

// Reserved field names.
const (
	FieldDeleted = "_deleted"
	FieldReview  = "_review"
)

// Sibling is one surviving (write, value) pair of a field.
type Sibling struct {
	Dot
	At    int64
	Value json.RawMessage
	// Ctx is the deleting actor's clock, kept on a _deleted = true sibling only.
	Ctx Clock
}

// newer reports whether s wins over o under last-writer-wins: the greater
// (at, by, n).
func (s Sibling) newer(o Sibling) bool {
	if s.At != o.At {
		return s.At > o.At
	}
	if s.By != o.By {
		return s.By > o.By
	}
	return s.N > o.N
}

// Record is a record's state as the merge sees it: the clock and, for each
// field, its siblings ordered by dot. Build one with FromState and turn it
// back into its wire form with State. A Record is never modified by the
// functions of this package: they return new ones.
type Record struct {
	ID     string
	Form   string
	Scope  string
	Clock  Clock
	Fields map[string][]Sibling
}

// FromState ungroups a wire state into siblings per field. It expects a
// state that passed Validate; ctx is kept only on _deleted = true values.
func FromState(s State) *Record {
	r := &Record{ID: s.ID, Form: s.Form, Scope: s.Scope, Clock: s.Clock.Copy(), Fields: map[string][]Sibling{}}
	if r.Clock == nil {
		r.Clock = Clock{}
	}
	for _, w := range s.Writes {
		for name, v := range w.Fields {
			sib := Sibling{Dot: w.Dot(), At: w.At, Value: compact(v)}
			if name == FieldDeleted && isTrue(v) && w.Ctx != nil {
				sib.Ctx = w.Ctx.Copy()
			}
			r.Fields[name] = append(r.Fields[name], sib)
		}
	}
	for name, sibs := range r.Fields {
		r.Fields[name] = sortSiblings(sibs)
	}
	return r
}

// State groups the siblings back by write: the wire form. Writes are ordered
// by dot, so equal records give equal bytes.
func (r *Record) State() State {
	byDot := map[Dot]*Write{}
	for name, sibs := range r.Fields {
		for _, s := range sibs {
			w := byDot[s.Dot]
			if w == nil {
				w = &Write{By: s.By, N: s.N, At: s.At, Fields: map[string]json.RawMessage{}}
				byDot[s.Dot] = w
			}
			w.Fields[name] = s.Value
			if name == FieldDeleted && s.Ctx != nil {
				w.Ctx = s.Ctx.Copy()
			}
		}
	}
	writes := make([]Write, 0, len(byDot))
	for _, w := range byDot {
		writes = append(writes, *w)
	}
	sort.Slice(writes, func(i, j int) bool { return writes[i].Dot().Less(writes[j].Dot()) })
	return State{ID: r.ID, Form: r.Form, Scope: r.Scope, Clock: r.Clock.Copy(), Writes: writes}
}

// Equal reports whether two records hold the same clock and the same
// siblings (same dots and values, byte for byte).
func (r *Record) Equal(o *Record) bool {
	if r.ID != o.ID || r.Form != o.Form || r.Scope != o.Scope || !r.Clock.Equal(o.Clock) || len(r.Fields) != len(o.Fields) {
		return false
	}
	for name, a := range r.Fields {
		b, ok := o.Fields[name]
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].Dot != b[i].Dot || a[i].At != b[i].At || !bytes.Equal(a[i].Value, b[i].Value) || !a[i].Ctx.Equal(b[i].Ctx) {
				return false
			}
		}
	}
	return true
}

// Dots returns the dots of every surviving write, ordered.
func (r *Record) Dots() []Dot {
	seen := map[Dot]bool{}
	var out []Dot
	for _, sibs := range r.Fields {
		for _, s := range sibs {
			if !seen[s.Dot] {
				seen[s.Dot] = true
				out = append(out, s.Dot)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

func sortSiblings(s []Sibling) []Sibling {
	sort.Slice(s, func(i, j int) bool { return s[i].Dot.Less(s[j].Dot) })
	return s
}

// compact returns v without insignificant white space, so that equal
// values sent with other spacing are stored as the same bytes.
func compact(v json.RawMessage) json.RawMessage {
	if isCompact(v) {
		return v
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return v
	}
	if b.Len() == len(v) {
		return v
	}
	return b.Bytes()
}

// isCompact reports whether a JSON value has no white space outside its
// strings.
func isCompact(v []byte) bool {
	_, c := scanJSON(v)
	return c
}

func isTrue(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "true" }
