package records

import (
	"encoding/json"
	"sort"
	"strconv"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// AppendJSON appends the entry's JSON, as encoding/json writes it, without
// re-validating its values (they come from a validated state). It is on the
// push path: one entry per changed record.
func (h *HistoryEntry) AppendJSON(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, h.Seq, 10)
	b = append(b, `,"received_at":`...)
	b = sp.AppendJSONString(b, h.ReceivedAt)
	if h.body != nil {
		return append(b, h.body...)
	}
	return h.appendBody(b)
}

// SizeHint is about how many bytes AppendJSON writes, to size its buffer.
func (h *HistoryEntry) SizeHint() int {
	if h.body != nil {
		return 96 + len(h.ReceivedAt) + len(h.body)
	}
	return 1024
}

// freeze encodes now what AppendJSON writes after the received time, so
// that writing the entry in a transaction is a copy. The entry must not
// change after this, but for Seq and ReceivedAt.
func (h *HistoryEntry) freeze() {
	size := 256 + len(h.valuesJSON)
	if h.valuesJSON != nil {
		for _, n := range h.Fields { // the names of Values, without walking the map
			size += 2*len(n) + 8
		}
	} else {
		for n, v := range h.Values {
			size += 2*len(n) + 8 + len(v)
		}
	}
	h.body = h.appendBody(make([]byte, 0, size))
}

// appendBody appends the entry's JSON from its actor on.
func (h *HistoryEntry) appendBody(b []byte) []byte {
	b = append(b, `,"actor":`...)
	b = sp.AppendJSONString(b, h.Actor)
	if h.Batch != "" {
		b = append(b, `,"batch":`...)
		b = sp.AppendJSONString(b, h.Batch)
	}
	b = append(b, `,"kind":`...)
	b = sp.AppendJSONString(b, h.Kind)
	b = append(b, `,"fields":[`...)
	for i, f := range h.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = sp.AppendJSONString(b, f)
	}
	b = append(b, `],"values":`...)
	if h.valuesJSON != nil {
		b = append(b, h.valuesJSON...)
	} else {
		b = h.appendValues(b)
	}
	if len(h.Siblings) > 0 {
		sib, _ := json.Marshal(h.Siblings) // rare: a push carrying concurrent writes
		b = append(b, `,"siblings":`...)
		b = append(b, sib...)
	}
	b = append(b, `,"merged_concurrent":`...)
	b = strconv.AppendBool(b, h.MergedConcurrent)
	if h.Note != "" {
		b = append(b, `,"note":`...)
		b = sp.AppendJSONString(b, h.Note)
	}
	if h.ActorName != "" {
		b = append(b, `,"actor_name":`...)
		b = sp.AppendJSONString(b, h.ActorName)
	}
	if h.ActorRole != "" {
		b = append(b, `,"actor_role":`...)
		b = sp.AppendJSONString(b, h.ActorRole)
	}
	return append(b, '}')
}

// valuesAreFields reports whether Values holds a value for every name of
// Fields and no other.
func (h *HistoryEntry) valuesAreFields() bool {
	if len(h.Values) != len(h.Fields) {
		return false
	}
	for _, n := range h.Fields {
		if _, ok := h.Values[n]; !ok {
			return false
		}
	}
	return true
}

// appendValues appends Values as one JSON object, names sorted.
func (h *HistoryEntry) appendValues(b []byte) []byte {
	names := h.Fields // sorted; usually every changed field gained a value
	if !h.valuesAreFields() {
		names = make([]string, 0, len(h.Values))
		for n := range h.Values {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	b = append(b, '{')
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = sp.AppendJSONString(b, n)
		b = append(b, ':')
		b = append(b, h.Values[n]...)
	}
	return append(b, '}')
}
