package syncproto_test

// Fuzz targets of the decoder, the join and the canonical encoding. The
// seed corpora are inline; run one with e.g.
//
//	go test -run='^$' -fuzz=FuzzDecodePush -fuzztime=20s ./syncproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

const (
	devA  = "0193a6f4-7c1e-7b55-9a10-00000000000a"
	devB  = "0193a6f4-7c1e-7b55-9a10-00000000000b"
	batch = "5b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
)

// seedStates are wire states of one record, valid and not, as JSON.
var seedStates = []string{
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{},"writes":[]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":1},"writes":[{"by":"` + devA + `","n":1,"at":1730628900123,"fields":{"household_size":5,"head_name":"فاطمة"}}]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":4,"` + devB + `":2},"writes":[` +
		`{"by":"` + devA + `","n":3,"at":1730628900123,"fields":{"household_size":5,"head_name":"فاطمة"}},` +
		`{"by":"` + devA + `","n":4,"at":1730629000000,"fields":{"monthly_income_mad":1200}},` +
		`{"by":"` + devB + `","n":2,"at":1730628999000,"fields":{"monthly_income_mad":1500.0}}]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":2,"` + devB + `":1},"writes":[` +
		`{"by":"` + devA + `","n":2,"at":4000,"fields":{"_deleted":true},"ctx":{"` + devA + `":1}},` +
		`{"by":"` + devB + `","n":1,"at":3000,"fields":{"notes":{"b":[1,2],"a":null}, "sector": "crafts"}}]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devB + `":3},"writes":[` +
		`{"by":"` + devB + `","n":3,"at":5000,"fields":{"_deleted":false,"notes":"x","_review":{"state":"approved","note":"","by":"K"}}}]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":1},"writes":[{"by":"` + devA + `","n":1,"at":1,"fields":{"Age!":1}}]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":1},"writes":[{"by":"` + devA + `","n":2,"at":1,"fields":{"a":1}}]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":1},"writes":[{"by":"` + devA + `","n":"1","at":1,"fields":{"a":1}}]}`,
	`{"id":"0193A6F4-7C1E-7B55-9A10-5E2D3C4B1A00","form":"assessment","scope":"x","clock":{},"writes":[]}`,
	`{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":3},"writes":[` +
		`{"by":"` + devA + `","n":2,"at":7,"fields":{"_deleted":false,"notes":"a"},"ctx":{"` + devA + `":1}},` +
		`{"by":"` + devA + `","n":3,"at":7,"fields":{"notes":"b"},"ctx":{"` + devA + `":2}}]}`,
	`{"id":"` + recID + `"}`,
	`[]`,
	`null`,
}

func FuzzDecodePush(f *testing.F) {
	for _, s := range seedStates {
		f.Add([]byte(`{"device":"` + devA + `","batch":"` + batch + `","records":[` + s + `]}`))
	}
	f.Add([]byte(`{"device":"` + devA + `","batch":"` + batch + `","records":[` + seedStates[1] + `,` + seedStates[2] + `,` + seedStates[3] + `]}`))
	f.Add([]byte(`{"device":"` + devA + `","batch":"` + batch + `","records":[]}`))
	f.Add([]byte(`{"device":"` + devA + `","batch":"` + batch + `"}`))
	f.Add([]byte(`{"device":"not-a-uuid","batch":"` + batch + `","records":[]}`))
	f.Add([]byte(`{"device":"` + devA + `","batch":"` + batch + `","records":{}}`))
	f.Add([]byte(`{"device":"` + devA + `","batch":"` + batch + `","records":[` + seedStates[1]))
	f.Add([]byte("{\"device\":\"\xff\"}"))
	f.Add([]byte(``))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := sp.DecodePush(body)
		if err != nil {
			if c := sp.ErrorCode(err); c != sp.CodeBadJSON && c != sp.CodeBadRequest && c != sp.CodeTooLarge {
				t.Fatalf("DecodePush: unexpected code %s: %v", c, err)
			}
			return
		}
		for _, raw := range req.Records {
			s, err := sp.DecodeItem(raw)
			if err != nil {
				if c := sp.ErrorCode(err); c != sp.CodeInvalidRecord && c != sp.CodeTooLarge {
					t.Fatalf("DecodeItem: unexpected code %s: %v", c, err)
				}
				continue
			}
			if err := sp.Validate(s); err != nil {
				t.Fatalf("DecodeItem accepted an item Validate refuses: %v", err)
			}
			r := sp.FromState(s)
			st := r.State()
			if err := sp.Validate(st); err != nil {
				t.Fatalf("Validate(FromState(item).State()): %v\nitem %s", err, raw)
			}
			if !sp.FromState(st).Equal(r) {
				t.Fatalf("FromState(State()) differs\nitem %s", raw)
			}
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			var back sp.State
			if err := json.Unmarshal(b, &back); err != nil || !sp.FromState(back).Equal(r) {
				t.Fatalf("JSON round trip differs (%v)\nitem %s\nwire %s", err, raw, b)
			}
			if !sp.Join(r, r).Equal(r) || !sp.ApplyPush(r, r).Equal(r) {
				t.Fatalf("joining or pushing an item onto itself changes it\nitem %s", raw)
			}
			_ = sp.Analyze(r).ConflictFields()
			for _, w := range st.Writes {
				if w.Ctx != nil && string(w.Fields[sp.FieldDeleted]) != "true" {
					t.Fatalf("ctx kept on a write whose _deleted is not true: %+v\nitem %s", w, raw)
				}
			}
			if err := sp.CheckItem(s, nil, req.Device, false); err == nil {
				if !sp.ApplyPush(nil, r).Equal(r) {
					t.Fatalf("push of a new record is not the item\nitem %s", raw)
				}
			} else if c := sp.ErrorCode(err); c != sp.CodeForgedClock && c != sp.CodeInvalidRecord {
				t.Fatalf("CheckItem: unexpected code %s", c)
			}
		}
	})
}

// decodeState reads a state that Validate accepts: JSON when b looks like
// an object, else a state derived from the bytes, so that most of what the
// fuzzer makes is a valid state (of the pools of gen_test.go), and two of
// them may disagree on a dot as a buggy device could.
func decodeState(b string) (*sp.Record, bool) {
	if strings.HasPrefix(b, "{") {
		var s sp.State
		if json.Unmarshal([]byte(b), &s) != nil || sp.Validate(s) != nil {
			return nil, false
		}
		return sp.FromState(s), true
	}
	next := func() int {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return int(c)
	}
	s := sp.State{ID: recID, Form: recForm, Scope: recScope, Clock: sp.Clock{}}
	seen := map[sp.Dot]bool{}
	for len(b) > 0 && len(s.Writes) < 12 {
		w := sp.Write{By: actors[next()%len(actors)], N: uint64(next()%5 + 1), At: int64(next() % 6), Fields: map[string]json.RawMessage{}}
		for k := next()%3 + 1; k > 0; k-- {
			switch c := next(); {
			case c%8 == 7:
				w.Fields[sp.FieldDeleted] = json.RawMessage(strconv.FormatBool(c&16 == 0))
			default:
				w.Fields[fieldNames[c%len(fieldNames)]] = json.RawMessage(allValues[next()%len(allValues)])
			}
		}
		if string(w.Fields[sp.FieldDeleted]) == "true" {
			w.Ctx = sp.Clock{}
			for _, a := range actors {
				if c := next() % 4; c > 0 {
					w.Ctx[a] = uint64(c)
				}
			}
		}
		if seen[w.Dot()] {
			continue
		}
		seen[w.Dot()] = true
		s.Writes = append(s.Writes, w)
		s.Clock[w.By] = max(s.Clock[w.By], w.N+uint64(next()%2))
	}
	if sp.Validate(s) != nil {
		panic(fmt.Sprintf("derived state refused: %v", sp.Validate(s)))
	}
	return sp.FromState(s), true
}

func FuzzJoin(f *testing.F) {
	for _, a := range seedStates {
		for _, b := range seedStates[:5] {
			f.Add(a, b)
		}
	}
	// Same dot, other values: what a buggy device could send.
	f.Add(`{"id":"`+recID+`","form":"assessment","scope":"guelmim-oued-noun","clock":{"`+devA+`":1},"writes":[{"by":"`+devA+`","n":1,"at":5,"fields":{"a":1,"b":1}}]}`,
		`{"id":"`+recID+`","form":"assessment","scope":"guelmim-oued-noun","clock":{"`+devA+`":1},"writes":[{"by":"`+devA+`","n":1,"at":6,"fields":{"a":2}}]}`)
	// Same dot, same at, other ctx; and two saves of one actor in one ms.
	del := func(ctx string) string {
		return `{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":2,"` + devB + `":1},"writes":[` +
			`{"by":"` + devA + `","n":2,"at":9,"fields":{"_deleted":true},"ctx":` + ctx + `}]}`
	}
	f.Add(del(`{"`+devA+`":1}`), del(`{"`+devB+`":1}`))
	f.Add(del(`{"`+devA+`":1,"`+devB+`":1}`), del(`{}`))
	sameMs := `{"id":"` + recID + `","form":"assessment","scope":"guelmim-oued-noun","clock":{"` + devA + `":2},"writes":[` +
		`{"by":"` + devA + `","n":1,"at":5,"fields":{"notes":"x"}},{"by":"` + devA + `","n":2,"at":5,"fields":{"notes":"y"}}]}`
	f.Add(sameMs, seedStates[0])
	f.Add("\x00\x01\x02\x00\x03\x01\x05\x01\x02\x03\x07\x01\x01", "\x01\x01\x04\x00\x02\x02\x03\x07\x02\x01")
	f.Add("\x03\x02\x05\x01\x17\x02\x03\x00\x01\x03\x01\x04\x00", "\x03\x02\x04\x01\x07\x01\x02\x01\x01\x00\x02\x06\x01")
	f.Fuzz(func(t *testing.T, sa, sb string) {
		a, okA := decodeState(sa)
		b, okB := decodeState(sb)
		// Form and scope never change (§1): two states of one record share them.
		if !okA || !okB || a.ID != b.ID || a.Form != b.Form || a.Scope != b.Scope {
			return
		}
		ab := sp.Join(a, b)
		if !sp.Join(b, a).Equal(ab) {
			t.Fatalf("not commutative:\n a %s\n b %s\n ab %s\n ba %s", sa, sb, stateJSON(ab), stateJSON(sp.Join(b, a)))
		}
		if !sp.Join(a, a).Equal(a) || !sp.Join(b, b).Equal(b) {
			t.Fatalf("not idempotent:\n a %s\n b %s", sa, sb)
		}
		if !sp.Join(ab, a).Equal(ab) || !sp.Join(ab, b).Equal(ab) {
			t.Fatalf("not absorbing:\n a %s\n b %s", sa, sb)
		}
		if err := sp.Validate(ab.State()); err != nil && sp.ErrorCode(err) != sp.CodeTooLarge {
			// too_large: two valid states may merge past a limit (§7), which
			// the server reports when it applies the push.
			t.Fatalf("Validate(Join(a, b).State()): %v\n a %s\n b %s", err, sa, sb)
		}
		for name, v := range sp.Analyze(ab).Visible {
			if want := lwwOracle(ab.Fields[name]).Value; string(v) != string(want) {
				t.Fatalf("visible %s = %s, want %s (greatest at, by, n)\n a %s\n b %s", name, v, want, sa, sb)
			}
		}
		if !sp.FromState(ab.State()).Equal(ab) {
			t.Fatalf("join does not round-trip:\n a %s\n b %s", sa, sb)
		}
	})
}

func FuzzCanonical(f *testing.F) {
	for _, c := range valueClasses {
		for _, v := range c {
			f.Add([]byte(v))
		}
	}
	for _, v := range []string{`1e400`, `-0.0e-5`, `12345678901234567890`, `9007199254740993`, `1.5e300`, `"\ud800"`,
		`"a\u2028b<>&"`, `{"a":1,"a":2}`, `[[[[{}]]]]`, ` 1 `, `1 2`, `{`, `"\xff"`, `tru`, `0.1`, `1E+2`, `-1e-7`} {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := sp.Canonical(v)
		if !json.Valid(v) {
			return
		}
		if err != nil {
			t.Fatalf("Canonical(%q): %v", v, err)
		}
		if !json.Valid(c) {
			t.Fatalf("Canonical(%q) = %q: not JSON", v, c)
		}
		cc, err := sp.Canonical(c)
		if err != nil || !bytes.Equal(cc, c) {
			t.Fatalf("not idempotent: Canonical(%q) = %q, Canonical of that = %q (%v)", v, c, cc, err)
		}
		if !sp.EqualValues(v, c) || !sp.EqualValues(c, v) {
			t.Fatalf("EqualValues(%q, Canonical = %q) is false", v, c)
		}
		var compact bytes.Buffer
		if json.Compact(&compact, c) != nil || !bytes.Equal(compact.Bytes(), c) {
			t.Fatalf("Canonical(%q) = %q holds white space", v, c)
		}
	})
}
