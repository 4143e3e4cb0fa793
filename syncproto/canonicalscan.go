package syncproto

import (
	"bytes"
	"slices"
)

// canonicalScan is Canonical in one pass over the text, without decoding
// into interfaces, for values whose strings need no rewriting (no escape,
// no control character, valid UTF-8), whose keys are plain ASCII
// (see jsonScanner.str) and whose objects repeat no key. It declines (ok false) anything else, and Canonical then
// decodes; FuzzCanonicalScan holds the two to the same bytes.
func canonicalScan(v []byte) (c []byte, ok bool) {
	s := jsonScanner{b: v}
	s.ws()
	c, ok = s.canonical(make([]byte, 0, len(v)), 0)
	if !ok {
		return nil, false
	}
	s.ws()
	return c, s.i == len(s.b)
}

// member is one object member being put in canonical order: its key (the
// bytes between the quotes) and its canonical value in a scratch buffer.
type member struct {
	key        []byte
	start, end int
}

// canonical appends the canonical form of the value at s.i, at depth d.
func (s *jsonScanner) canonical(out []byte, d int) ([]byte, bool) {
	if s.i >= len(s.b) {
		return nil, false
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		if _, ok := s.str(); !ok {
			return nil, false
		}
		lit, ok := canonicalScalar(s.b[start:s.i], false)
		return append(out, lit...), ok
	case c == '-' || c >= '0' && c <= '9':
		if !s.number() {
			return nil, false
		}
		return appendCanonicalNumber(out, s.b[start:s.i]), true
	case c == 't' || c == 'f' || c == 'n':
		if s.value(d) != scanOK {
			return nil, false
		}
		return append(out, s.b[start:s.i]...), true
	case c == '[':
		if d >= scanMaxDepth {
			return nil, false
		}
		out = append(out, '[')
		first := true
		ok := s.elements(func() bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			var ok bool
			out, ok = s.canonical(out, d+1)
			return ok
		})
		return append(out, ']'), ok
	case c == '{':
		if d >= scanMaxDepth {
			return nil, false
		}
		var members []member
		var scratch []byte
		ok := s.members(func(key []byte) bool {
			m := member{key: key, start: len(scratch)}
			var ok bool
			if scratch, ok = s.canonical(scratch, d+1); !ok {
				return false
			}
			m.end = len(scratch)
			members = append(members, m)
			return true
		})
		if !ok {
			return nil, false
		}
		slices.SortFunc(members, func(a, b member) int { return bytes.Compare(a.key, b.key) })
		out = append(out, '{')
		for i, m := range members {
			if i > 0 {
				if bytes.Equal(members[i-1].key, m.key) {
					return nil, false // a repeated key: the last wins, as decoding says
				}
				out = append(out, ',')
			}
			out = append(out, '"')
			out = append(out, m.key...)
			out = append(out, '"', ':')
			out = append(out, scratch[m.start:m.end]...)
		}
		return append(out, '}'), true
	}
	return nil, false
}
