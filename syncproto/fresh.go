package syncproto

import "encoding/json"

// FreshState returns what ApplyPush(nil, FromState(item)), then State and
// Analyze, give for a valid push item of one write without reserved
// fields: the case of nearly every record a tablet creates. It computes
// them without building siblings: the write is the record, its values made
// compact. ok is false for any other item; use the general path then.
//
// The returned state and analysis share the item's field map when every
// value is already compact; neither may be modified.
func FreshState(item State) (st State, a Analysis, ok bool) {
	if len(item.Writes) != 1 {
		return State{}, Analysis{}, false
	}
	w := item.Writes[0]
	allCompact := true
	for name, v := range w.Fields {
		if IsReserved(name) {
			return State{}, Analysis{}, false
		}
		allCompact = allCompact && isCompact(v)
	}
	fields := w.Fields
	if !allCompact {
		fields = make(map[string]json.RawMessage, len(w.Fields))
		for name, v := range w.Fields {
			fields[name] = compact(v)
		}
	}
	st = State{ID: item.ID, Form: item.Form, Scope: item.Scope, Clock: Clock{}.Max(item.Clock),
		Writes: []Write{{By: w.By, N: w.N, At: w.At, Fields: fields}}}
	return st, Analysis{Visible: fields}, true
}
