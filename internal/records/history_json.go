package records

import (
	"encoding/json"
	"sort"
	"strconv"
)

// AppendJSON appends the entry's JSON, as encoding/json writes it, without
// re-validating its values (they come from a validated state). It is on the
// push path: one entry per changed record.
func (h *HistoryEntry) AppendJSON(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, h.Seq, 10)
	b = append(b, `,"received_at":`...)
	b = appendJSONString(b, h.ReceivedAt)
	b = append(b, `,"actor":`...)
	b = appendJSONString(b, h.Actor)
	if h.Batch != "" {
		b = append(b, `,"batch":`...)
		b = appendJSONString(b, h.Batch)
	}
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, h.Kind)
	b = append(b, `,"fields":[`...)
	for i, f := range h.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f)
	}
	b = append(b, `],"values":{`...)
	names := make([]string, 0, len(h.Values))
	for n := range h.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
		b = append(b, ':')
		b = append(b, h.Values[n]...)
	}
	b = append(b, '}')
	if len(h.Siblings) > 0 {
		sib, _ := json.Marshal(h.Siblings) // rare: a push carrying concurrent writes
		b = append(b, `,"siblings":`...)
		b = append(b, sib...)
	}
	b = append(b, `,"merged_concurrent":`...)
	b = strconv.AppendBool(b, h.MergedConcurrent)
	if h.Note != "" {
		b = append(b, `,"note":`...)
		b = appendJSONString(b, h.Note)
	}
	if h.ActorName != "" {
		b = append(b, `,"actor_name":`...)
		b = appendJSONString(b, h.ActorName)
	}
	if h.ActorRole != "" {
		b = append(b, `,"actor_role":`...)
		b = appendJSONString(b, h.ActorRole)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: as it is when it needs no
// escape, else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
