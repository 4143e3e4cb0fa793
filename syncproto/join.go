package syncproto

import "bytes"

// Join merges two states of one record (PROTOCOL.md §1). The clock is the
// pointwise max; a sibling of either side survives when the other side has
// the same sibling or has not seen its dot. Join is commutative, associative
// and idempotent. Both records must have the same id; a and b are not
// modified.
func Join(a, b *Record) *Record {
	out := &Record{ID: a.ID, Form: a.Form, Scope: a.Scope, Clock: a.Clock.Max(b.Clock), Fields: make(map[string][]Sibling, len(a.Fields))}
	for name, sa := range a.Fields {
		if merged := joinField(sa, a.Clock, b.Fields[name], b.Clock); len(merged) > 0 {
			out.Fields[name] = merged
		}
	}
	for name, sb := range b.Fields {
		if _, done := a.Fields[name]; done {
			continue
		}
		if merged := joinField(nil, a.Clock, sb, b.Clock); len(merged) > 0 {
			out.Fields[name] = merged
		}
	}
	return out
}

// ApplyPush merges a push item into the server's state (PROTOCOL.md §2).
// Fields the item carries (named by any of its writes) merge as in Join;
// the others stay as the server has them. server may be nil for a new
// record. The item must have passed ValidateItem against server.
func ApplyPush(server, item *Record) *Record {
	if server == nil {
		server = &Record{ID: item.ID, Form: item.Form, Scope: item.Scope, Clock: Clock{}, Fields: map[string][]Sibling{}}
	}
	out := &Record{ID: server.ID, Form: server.Form, Scope: server.Scope, Clock: server.Clock.Max(item.Clock), Fields: make(map[string][]Sibling, len(server.Fields)+len(item.Fields))}
	for name, ss := range server.Fields {
		if _, carried := item.Fields[name]; !carried {
			out.Fields[name] = ss
		}
	}
	for name, si := range item.Fields {
		if merged := joinField(server.Fields[name], server.Clock, si, item.Clock); len(merged) > 0 {
			out.Fields[name] = merged
		}
	}
	return out
}

// joinField merges the siblings of one field. Both inputs are sorted by
// dot; so is the result.
func joinField(sa []Sibling, ca Clock, sb []Sibling, cb Clock) []Sibling {
	out := make([]Sibling, 0, len(sa)+len(sb))
	i, j := 0, 0
	for i < len(sa) || j < len(sb) {
		switch {
		case j == len(sb) || (i < len(sa) && sa[i].Dot.Less(sb[j].Dot)):
			if !cb.Covers(sa[i].Dot) {
				out = append(out, sa[i])
			}
			i++
		case i == len(sa) || sb[j].Dot.Less(sa[i].Dot):
			if !ca.Covers(sb[j].Dot) {
				out = append(out, sb[j])
			}
			j++
		default: // the same sibling on both sides
			out = append(out, pickSame(sa[i], sb[j]))
			i++
			j++
		}
	}
	return out
}

// pickSame chooses between two siblings with the same dot. In valid
// histories they are identical; should a buggy device send another value
// under an existing dot, the choice is still deterministic, so the join
// stays commutative.
func pickSame(a, b Sibling) Sibling {
	if a.At != b.At {
		if a.At > b.At {
			return a
		}
		return b
	}
	if c := bytes.Compare(a.Value, b.Value); c != 0 {
		if c > 0 {
			return a
		}
		return b
	}
	if compareClocks(a.Ctx, b.Ctx) >= 0 {
		return a
	}
	return b
}

// compareClocks is a total order on clocks, for tie-breaks only.
func compareClocks(a, b Clock) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	ka, kb := a.Actors(), b.Actors()
	for i := range ka {
		if ka[i] != kb[i] {
			if ka[i] < kb[i] {
				return -1
			}
			return 1
		}
		if a[ka[i]] != b[kb[i]] {
			if a[ka[i]] < b[kb[i]] {
				return -1
			}
			return 1
		}
	}
	return 0
}
