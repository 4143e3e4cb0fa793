package syncproto_test

// One row per rule of Validate, DecodeItem, CheckItem and DecodePush
// (PROTOCOL.md §1, §2, §7), with the code it must give, and rows that must
// pass: the limits themselves are allowed.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// A value that must never appear in an error message (values are personal data).
const secret = "SECRET-فاطمة"

func baseState() sp.State {
	return sp.State{ID: recID, Form: recForm, Scope: recScope, Clock: sp.Clock{devA: 2}, Writes: []sp.Write{
		{By: devA, N: 1, At: 1000, Fields: map[string]json.RawMessage{"head_name": json.RawMessage(`"` + secret + `"`), "household_size": json.RawMessage(`5`)}},
		{By: devA, N: 2, At: 2000, Fields: map[string]json.RawMessage{"monthly_income_mad": json.RawMessage(`1200`)}},
	}}
}

func with(edit func(s *sp.State)) sp.State {
	s := baseState()
	edit(&s)
	return s
}

func setField(name, value string) func(s *sp.State) {
	return func(s *sp.State) { s.Writes[1].Fields[name] = json.RawMessage(value) }
}

func actorN(i int) string { return fmt.Sprintf("0193a6f4-7c1e-7b55-9a10-%012x", 0x1000+i) }

// bigClock is a clock with n actors, devA's count 2 among them.
func bigClock(n int) sp.Clock {
	c := sp.Clock{devA: 2}
	for i := 0; len(c) < n; i++ {
		c[actorN(i)] = 1
	}
	return c
}

func manyFields(n int) func(s *sp.State) {
	return func(s *sp.State) {
		s.Writes = s.Writes[1:]
		s.Writes[0].Fields = map[string]json.RawMessage{}
		for i := 0; i < n; i++ {
			s.Writes[0].Fields[fmt.Sprintf("f%d", i)] = json.RawMessage(`1`)
		}
	}
}

// twoWritesOfFields gives the two writes n fields each (f0, f1, ...), the
// second's shifted by shift: n + shift distinct names in all.
func twoWritesOfFields(n, shift int) func(s *sp.State) {
	return func(s *sp.State) {
		for w := range s.Writes {
			s.Writes[w].Fields = map[string]json.RawMessage{}
			for i := 0; i < n; i++ {
				s.Writes[w].Fields[fmt.Sprintf("f%d", i+w*shift)] = json.RawMessage(`1`)
			}
		}
	}
}

func nested(d int) string {
	return strings.Repeat("[", d) + `"` + secret + `"` + strings.Repeat("]", d)
}

// sized is a JSON string of exactly n bytes.
func sized(n int) string { return `"` + secret + strings.Repeat("x", n-2-len(secret)) + `"` }

func itemJSON(s sp.State) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func validate(s sp.State) func() error { return func() error { return sp.Validate(s) } }

func decodeItem(raw string) func() error {
	return func() error { _, err := sp.DecodeItem(json.RawMessage(raw)); return err }
}

func check(item sp.State, server *sp.State, device string, skipForged bool) func() error {
	return func() error {
		var r *sp.Record
		if server != nil {
			r = sp.FromState(*server)
		}
		if err := sp.Validate(item); err != nil {
			return fmt.Errorf("item not valid on its own: %w", err)
		}
		return sp.CheckItem(item, r, device, skipForged)
	}
}

func decodePush(body string) func() error {
	return func() error { _, err := sp.DecodePush([]byte(body)); return err }
}

func ptr(s sp.State) *sp.State { return &s }

// server holds devA:2 and devB:1.
var serverState = with(func(s *sp.State) {
	s.Clock[devB] = 1
	s.Writes = append(s.Writes, sp.Write{By: devB, N: 1, At: 1500, Fields: map[string]json.RawMessage{"notes": json.RawMessage(`"ok"`)}})
})

func TestRejections(t *testing.T) {
	del := func(v string, ctx sp.Clock) func(s *sp.State) {
		return func(s *sp.State) {
			s.Writes[1].Fields = map[string]json.RawMessage{sp.FieldDeleted: json.RawMessage(v)}
			s.Writes[1].Ctx = ctx
		}
	}
	push := func(records string) string {
		return `{"device":"` + devA + `","batch":"` + batch + `","records":` + records + `}`
	}
	valid := itemJSON(baseState())
	rows := []struct {
		name string
		run  func() error
		want sp.Code // "" when it must pass
	}{
		{"valid state", validate(baseState()), ""},
		{"empty state", validate(sp.State{ID: recID, Form: recForm, Scope: recScope}), ""},
		{"bad id", validate(with(func(s *sp.State) { s.ID = "record-1" })), sp.CodeInvalidRecord},
		{"uppercase UUID id", validate(with(func(s *sp.State) { s.ID = strings.ToUpper(recID) })), sp.CodeInvalidRecord},
		{"bad form", validate(with(func(s *sp.State) { s.Form = "Assessment" })), sp.CodeInvalidRecord},
		{"form of 65", validate(with(func(s *sp.State) { s.Form = strings.Repeat("a", 65) })), sp.CodeInvalidRecord},
		{"form of 64", validate(with(func(s *sp.State) { s.Form = strings.Repeat("a", 64) })), ""},
		{"bad scope", validate(with(func(s *sp.State) { s.Scope = "guelmim oued noun" })), sp.CodeInvalidRecord},
		{"empty scope", validate(with(func(s *sp.State) { s.Scope = "" })), sp.CodeInvalidRecord},
		{"bad field name Age!", validate(with(setField("Age!", `1`))), sp.CodeInvalidRecord},
		{"field name starting with a digit", validate(with(setField("1st", `1`))), sp.CodeInvalidRecord},
		{"field name of 129", validate(with(setField("a"+strings.Repeat("b", 128), `1`))), sp.CodeInvalidRecord},
		{"field name of 128 with . and _", validate(with(setField("gps.lat_"+strings.Repeat("b", 120), `1`))), ""},
		{"reserved _x", validate(with(setField("_x", `1`))), sp.CodeInvalidRecord},
		{"_deleted not a bool", validate(with(del(`1`, nil))), sp.CodeInvalidRecord},
		{"_deleted a string", validate(with(del(`"`+secret+`"`, nil))), sp.CodeInvalidRecord},
		{"_deleted true with ctx", validate(with(del(`true`, sp.Clock{devA: 1}))), ""},
		{"_deleted true without ctx", validate(with(del(`true`, nil))), ""},
		{"_deleted ctx with a bad actor", validate(with(del(`true`, sp.Clock{"A": 1}))), sp.CodeInvalidRecord},
		{"_deleted ctx with 257 actors", validate(with(del(`true`, bigClock(257)))), sp.CodeTooLarge},
		{"_review not an object", validate(with(setField(sp.FieldReview, `"`+secret+`"`))), sp.CodeInvalidRecord},
		{"_review object", validate(with(setField(sp.FieldReview, `{"state":"approved","note":"","by":"K"}`))), ""},
		{"value over 64 KiB", validate(with(setField("notes", sized(64<<10+1)))), sp.CodeTooLarge},
		{"value of 64 KiB", validate(with(setField("notes", sized(64<<10)))), ""},
		{"value not JSON", validate(with(setField("notes", `{"`+secret))), sp.CodeInvalidRecord},
		{"nesting of 65", validate(with(setField("notes", nested(65)))), sp.CodeInvalidRecord},
		{"nesting of 64", validate(with(setField("notes", nested(64)))), ""},
		{"513 fields", validate(with(manyFields(513))), sp.CodeTooLarge},
		{"512 fields", validate(with(manyFields(512))), ""},
		{"513 fields over two writes", validate(with(twoWritesOfFields(300, 213))), sp.CodeTooLarge},
		{"512 fields over two writes", validate(with(twoWritesOfFields(300, 212))), ""},
		{"clock with 257 actors", validate(with(func(s *sp.State) { s.Clock = bigClock(257) })), sp.CodeTooLarge},
		{"clock with 256 actors", validate(with(func(s *sp.State) { s.Clock = bigClock(256) })), ""},
		{"clock with a bad actor", validate(with(func(s *sp.State) { s.Clock["device-a"] = 1 })), sp.CodeInvalidRecord},
		{"clock count 0", validate(with(func(s *sp.State) { s.Clock[devB] = 0 })), sp.CodeInvalidRecord},
		{"write n 0", validate(with(func(s *sp.State) { s.Writes[0].N = 0 })), sp.CodeInvalidRecord},
		{"write by a bad actor", validate(with(func(s *sp.State) { s.Writes[0].By = strings.ToUpper(devA) })), sp.CodeInvalidRecord},
		{"dot not covered", validate(with(func(s *sp.State) { s.Clock[devA] = 1 })), sp.CodeInvalidRecord},
		{"dot of an actor not in the clock", validate(with(func(s *sp.State) { s.Writes[0].By = devB })), sp.CodeInvalidRecord},
		{"dot twice", validate(with(func(s *sp.State) { s.Writes[1].N = 1 })), sp.CodeInvalidRecord},
		{"write with no field", validate(with(func(s *sp.State) { s.Writes[1].Fields = map[string]json.RawMessage{} })), sp.CodeInvalidRecord},

		{"item valid", decodeItem(valid), ""},
		{"item with spaces and keys in any order", decodeItem(`{ "writes": [ {"fields": {"notes": [ 1 , 2 ]}, "at": 1, "n": 1, "by": "` + devA + `"} ], "clock": {"` + devA + `": 1}, "scope": "s", "form": "f", "id": "` + recID + `" }`), ""},
		{"item with no writes", decodeItem(itemJSON(with(func(s *sp.State) { s.Writes = nil }))), sp.CodeInvalidRecord},
		{"item with empty writes", decodeItem(strings.Replace(itemJSON(with(func(s *sp.State) { s.Writes = nil })), `null`, `[]`, 1)), sp.CodeInvalidRecord},
		{"item with n as a string", decodeItem(strings.Replace(valid, `"n":2`, `"n":"2"`, 1)), sp.CodeInvalidRecord},
		{"item with n negative", decodeItem(strings.Replace(valid, `"n":2`, `"n":-2`, 1)), sp.CodeInvalidRecord},
		{"item with at as a string", decodeItem(strings.Replace(valid, `"at":2000`, `"at":"2000"`, 1)), sp.CodeInvalidRecord},
		{"item with a count as a float", decodeItem(strings.Replace(valid, `":2}`, `":2.5}`, 1)), sp.CodeInvalidRecord},
		{"item with clock as a list", decodeItem(strings.Replace(valid, `"clock":{"`+devA+`":2}`, `"clock":["`+devA+`"]`, 1)), sp.CodeInvalidRecord},
		{"item not an object", decodeItem(`[` + valid + `]`), sp.CodeInvalidRecord},
		{"item not JSON", decodeItem(`{"id":"` + recID + `",`), sp.CodeInvalidRecord},
		{"item with a bad field", decodeItem(itemJSON(with(setField("Age!", `1`)))), sp.CodeInvalidRecord},
		{"item with a value over 64 KiB", decodeItem(itemJSON(with(setField("notes", sized(64<<10+1))))), sp.CodeTooLarge},

		{"new record, own entry only", check(baseState(), nil, devA, false), ""},
		{"new record with another actor's entry", check(with(func(s *sp.State) { s.Clock[devB] = 1 }), nil, devA, false), sp.CodeForgedClock},
		{"new record, pushed by another device", check(baseState(), nil, devB, false), sp.CodeForgedClock},
		{"existing record, another entry above the server's", check(with(func(s *sp.State) { s.Clock[devB] = 2 }), ptr(serverState), devA, false), sp.CodeForgedClock},
		{"existing record, another entry above the server's, admin re-apply", check(with(func(s *sp.State) { s.Clock[devB] = 2 }), ptr(serverState), devA, true), ""},
		{"existing record, another entry equal to the server's", check(with(func(s *sp.State) { s.Clock[devB] = 1; s.Clock[devA] = 3; s.Writes[1].N = 3 }), ptr(serverState), devA, false), ""},
		{"existing record, scope changed", check(with(func(s *sp.State) { s.Scope = "tiznit" }), ptr(serverState), devA, false), sp.CodeScopeMismatch},
		{"existing record, form changed", check(with(func(s *sp.State) { s.Form = "household" }), ptr(serverState), devA, false), sp.CodeScopeMismatch},
		{"new record, clock claims uncarried own writes", check(with(func(s *sp.State) { s.Clock[devA] = 3 }), nil, devA, false), sp.CodeInvalidRecord},
		{"existing record, clock claims uncarried own writes", check(with(func(s *sp.State) { s.Clock[devA] = 3; s.Writes = s.Writes[:1] }), ptr(serverState), devA, false), sp.CodeInvalidRecord},
		{"own count above carried writes but not above the server's", check(with(func(s *sp.State) { s.Writes = s.Writes[:1] }), ptr(serverState), devA, false), ""},

		{"push valid", decodePush(push(`[` + valid + `]`)), ""},
		{"push with an uppercase batch id", decodePush(strings.Replace(push(`[]`), batch, strings.ToUpper(batch), 1)), ""},
		{"push not UTF-8", decodePush("{\"device\":\"\xff\xfe\"}"), sp.CodeBadJSON},
		{"push not JSON", decodePush(push(`[`)), sp.CodeBadJSON},
		{"push with trailing data", decodePush(push(`[]`) + `{}`), sp.CodeBadJSON},
		{"push without records", decodePush(`{"device":"` + devA + `","batch":"` + batch + `"}`), sp.CodeBadRequest},
		{"push with records an object", decodePush(push(`{}`)), sp.CodeBadRequest},
		{"push without device", decodePush(`{"batch":"` + batch + `","records":[]}`), sp.CodeBadRequest},
		{"push with an uppercase device", decodePush(strings.Replace(push(`[]`), devA, strings.ToUpper(devA), 1)), sp.CodeBadRequest},
		{"push with a bad batch", decodePush(strings.Replace(push(`[]`), batch, "batch-1", 1)), sp.CodeBadRequest},
		{"push of 2001 items", decodePush(push(`[` + strings.Repeat(`{},`, 2000) + `{}]`)), sp.CodeTooLarge},
		{"push of 2000 items", decodePush(push(`[` + strings.Repeat(`{},`, 1999) + `{}]`)), ""},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			err := row.run()
			if row.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %s", row.want)
			}
			if got := sp.ErrorCode(err); got != row.want {
				t.Fatalf("code %s, want %s (%v)", got, row.want, err)
			}
			if msg := sp.ErrorMessage(err); msg == "" || strings.Contains(msg, "SECRET") {
				t.Fatalf("message %q is empty or holds a value", msg)
			}
		})
	}
}
