package syncproto

import (
	"encoding/json"
	"sort"
	"strings"
)

// Analysis is what a record shows: its visible values and its conflicts.
type Analysis struct {
	// Visible holds each field's last-writer-wins value, reserved fields too.
	Visible map[string]json.RawMessage
	// Conflicts lists the non-reserved fields whose siblings hold two or
	// more different values (hard conflicts), sorted.
	Conflicts []string
	// DeleteEdit lists the non-reserved fields edited concurrently with the
	// visible delete, sorted; empty unless Deleted.
	DeleteEdit []string
	// Deleted is the visible value of _deleted.
	Deleted bool
}

// ConflictFields is the list a push result reports: every hard-conflicted
// field, and for a delete_edit conflict _deleted and the fields edited
// concurrently, sorted.
func (a Analysis) ConflictFields() []string {
	out := append([]string(nil), a.Conflicts...)
	if len(a.DeleteEdit) > 0 {
		out = append(out, FieldDeleted)
		out = append(out, a.DeleteEdit...)
	}
	sort.Strings(out)
	return dedupSorted(out)
}

// HasConflict reports whether the record holds a hard or delete_edit conflict.
func (a Analysis) HasConflict() bool { return len(a.Conflicts) > 0 || len(a.DeleteEdit) > 0 }

// IsReserved reports whether a field name is reserved (starts with '_').
func IsReserved(name string) bool { return strings.HasPrefix(name, "_") }

// Winner returns the last-writer-wins sibling of a non-empty sibling list:
// the greatest (at, by, n).
func Winner(sibs []Sibling) Sibling {
	w := sibs[0]
	for _, s := range sibs[1:] {
		if s.newer(w) {
			w = s
		}
	}
	return w
}

// Analyze computes a record's visible values and conflicts.
func Analyze(r *Record) Analysis {
	a := Analysis{Visible: make(map[string]json.RawMessage, len(r.Fields))}
	for name, sibs := range r.Fields {
		if len(sibs) == 0 {
			continue
		}
		a.Visible[name] = Winner(sibs).Value
		if !IsReserved(name) && hasDistinctValues(sibs) {
			a.Conflicts = append(a.Conflicts, name)
		}
	}
	sort.Strings(a.Conflicts)
	del, ok := r.Fields[FieldDeleted]
	if !ok || len(del) == 0 {
		return a
	}
	w := Winner(del)
	a.Deleted = isTrue(w.Value)
	if !a.Deleted {
		return a
	}
	for name, sibs := range r.Fields {
		if IsReserved(name) {
			continue
		}
		for _, s := range sibs {
			if s.Dot != w.Dot && !w.Ctx.Covers(s.Dot) {
				a.DeleteEdit = append(a.DeleteEdit, name)
				break
			}
		}
	}
	sort.Strings(a.DeleteEdit)
	return a
}

func hasDistinctValues(sibs []Sibling) bool {
	for _, s := range sibs[1:] {
		if !EqualValues(sibs[0].Value, s.Value) {
			return true
		}
	}
	return false
}

func dedupSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
