package syncproto

import (
	"bytes"
	"encoding/json"
	"sort"
)

// FreshState returns what ApplyPush(nil, FromState(item)), then State and
// Analyze, give for a valid push item of one write without reserved
// fields: the case of nearly every record a tablet creates. It computes
// them without building siblings: the write is the record, its values made
// compact. ok is false for any other item; use the general path then.
//
// The returned state and analysis share the item's field map when every
// value is already compact; neither may be modified.
func FreshState(item State) (st State, a Analysis, ok bool) { return freshState(item, false) }

// freshState is FreshState; knownCompact says every value is known to be
// compact already (read from text without white space).
func freshState(item State, knownCompact bool) (st State, a Analysis, ok bool) {
	if len(item.Writes) != 1 {
		return State{}, Analysis{}, false
	}
	w := item.Writes[0]
	allCompact := true
	for name, v := range w.Fields {
		if IsReserved(name) {
			return State{}, Analysis{}, false
		}
		allCompact = allCompact && (knownCompact || isCompact(v))
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

// Fresh is a record new to the server made of one push item that
// FreshState takes, in the forms a server keeps.
type Fresh struct {
	State    State
	Analysis Analysis
	// JSON is State.AppendJSON.
	JSON []byte
	// Names are the field names, sorted.
	Names []string
	// Values is the visible values as one JSON object, names sorted: the
	// write's fields object.
	Values []byte
}

// NewFresh returns the Fresh of a valid item read from raw (ReadItem), or
// ok false when FreshState declines it. raw must be the text ReadItem read
// item from without error: its values are not checked for JSON again.
// When raw is already the text AppendJSON writes for the state (as the SDK
// and encoding/json send it: keys in order, no white space), JSON and
// Values are slices of raw and nothing is encoded again.
func NewFresh(raw []byte, item State) (f Fresh, ok bool) {
	if len(item.Writes) != 1 {
		return Fresh{}, false
	}
	values, names, asText := freshText(raw, len(item.Writes[0].Fields))
	f.State, f.Analysis, ok = freshState(item, asText)
	if !ok {
		return Fresh{}, false
	}
	if asText && len(names) == len(f.Analysis.Visible) {
		f.JSON, f.Values, f.Names = raw, values, names
		return f, true
	}
	f.Names = make([]string, 0, len(f.Analysis.Visible))
	for name := range f.Analysis.Visible {
		f.Names = append(f.Names, name)
	}
	sort.Strings(f.Names)
	f.JSON = f.State.AppendJSON(make([]byte, 0, len(raw)+64))
	f.Values = appendObject(make([]byte, 0, len(raw)), f.Names, f.Analysis.Visible)
	return f, true
}

// appendObject appends {"name":value,...} for names, in their order.
func appendObject(b []byte, names []string, values map[string]json.RawMessage) []byte {
	b = append(b, '{')
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, name)
		b = append(b, ':')
		b = append(b, values[name]...)
	}
	return append(b, '}')
}

// freshText reads an item of one write that is exactly in the form
// AppendJSON writes: keys in order, ids and names plain (see
// jsonScanner.str), clock actors and field names ascending, integers as
// strconv writes them, no ctx, no white space. It returns the write's
// fields object and its names in order; ok is false for any other text.
// raw must be valid JSON (ReadItem read it): the field values are skipped,
// not checked again. nFields is how many fields the write has, a
// capacity for names.
func freshText(raw []byte, nFields int) (fields []byte, names []string, ok bool) {
	s := jsonScanner{b: raw}
	lit := func(l string) bool {
		if !bytes.HasPrefix(s.b[s.i:], []byte(l)) {
			return false
		}
		s.i += len(l)
		return true
	}
	plain := func() bool { _, ok := s.plainBytes(); return ok }
	digits := func() bool { _, ok := s.uint(); return ok }
	if !lit(`{"id":`) || !plain() || !lit(`,"form":`) || !plain() || !lit(`,"scope":`) || !plain() || !lit(`,"clock":{`) {
		return nil, nil, false
	}
	var prev []byte
	for first := true; ; first = false {
		if !first && !lit(",") {
			break
		}
		key, ok := s.plainBytes()
		if !ok || !first && bytes.Compare(prev, key) >= 0 || !lit(":") || !digits() {
			return nil, nil, false
		}
		prev = key
	}
	if !lit(`},"writes":[{"by":`) || !plain() || !lit(`,"n":`) || !digits() || !lit(`,"at":`) {
		return nil, nil, false
	}
	neg := lit("-")
	if at, ok := s.uint(); !ok || neg && at == 0 || !lit(`,"fields":`) {
		return nil, nil, false
	}
	start := s.i
	names = make([]string, 0, nFields)
	if !lit("{") {
		return nil, nil, false
	}
	for first := true; ; first = false {
		if !first && !lit(",") {
			break
		}
		key, ok := s.plainBytes()
		if !ok || !first && bytes.Compare(prev, key) >= 0 || !lit(":") || !s.skipValid() {
			return nil, nil, false
		}
		prev = key
		names = append(names, string(key))
	}
	end := s.i + 1
	if !lit("}}]}") || s.i != len(s.b) || s.spaced {
		return nil, nil, false
	}
	return raw[start:end:end], names, true
}
