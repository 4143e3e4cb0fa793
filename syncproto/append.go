package syncproto

import (
	"encoding/json"
	"sort"
	"strconv"
)

// AppendJSON appends the state's wire JSON to b, as encoding/json would
// write it (keys in the same order, writes as given, fields and clock keys
// sorted), but without re-validating the values: it is for states that
// passed Validate, whose values are valid JSON. Ids, names and actors of a
// valid state need no escaping.
func (s State) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, s.ID)
	b = append(b, `,"form":`...)
	b = AppendJSONString(b, s.Form)
	b = append(b, `,"scope":`...)
	b = AppendJSONString(b, s.Scope)
	b = append(b, `,"clock":`...)
	b = s.Clock.appendJSON(b)
	b = append(b, `,"writes":[`...)
	names := []string{}
	for i, w := range s.Writes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"by":`...)
		b = AppendJSONString(b, w.By)
		b = append(b, `,"n":`...)
		b = strconv.AppendUint(b, w.N, 10)
		b = append(b, `,"at":`...)
		b = strconv.AppendInt(b, w.At, 10)
		b = append(b, `,"fields":{`...)
		names = names[:0]
		for n := range w.Fields {
			names = append(names, n)
		}
		sort.Strings(names)
		for j, n := range names {
			if j > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, n)
			b = append(b, ':')
			b = append(b, w.Fields[n]...)
		}
		b = append(b, '}')
		if len(w.Ctx) > 0 {
			b = append(b, `,"ctx":`...)
			b = w.Ctx.appendJSON(b)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func (c Clock) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, a := range c.Actors() {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, a)
		b = append(b, ':')
		b = strconv.AppendUint(b, c[a], 10)
	}
	return append(b, '}')
}

// AppendJSONString appends s as a JSON string: as it is when it holds only
// printable ASCII that needs no escape (ids, names, timestamps), else as
// json.Marshal writes it.
func AppendJSONString(b []byte, s string) []byte {
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

// AppendJSON appends the answer's JSON to b, byte for byte as json.Marshal
// writes it, without reflection: the single writer encodes every answer
// it keeps, and the server sends it.
func (r *PushResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"batch":`...)
	b = AppendJSONString(b, r.Batch)
	b = append(b, `,"results":`...)
	if r.Results == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Results {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Results[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (r *PushResult) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, r.ID)
	b = append(b, `,"status":`...)
	b = AppendJSONString(b, r.Status)
	if r.Seq != 0 {
		b = strconv.AppendUint(append(b, `,"seq":`...), r.Seq, 10)
	}
	if len(r.Clock) > 0 {
		b = r.Clock.appendJSON(append(b, `,"clock":`...))
	}
	if len(r.Conflicts) > 0 {
		b = append(b, `,"conflicts":[`...)
		for i, f := range r.Conflicts {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, f)
		}
		b = append(b, ']')
	}
	if r.Error != nil {
		b = append(b, `,"error":{"code":`...)
		b = AppendJSONString(b, string(r.Error.Code))
		b = append(b, `,"message":`...)
		b = AppendJSONString(b, r.Error.Message)
		b = append(b, '}')
	}
	return append(b, '}')
}
