package syncproto_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"pgregory.net/rapid"
)

// TestPropFreshStateIsTheMerge holds FreshState to the general path: for
// any valid item, either it declines or it gives what merging the item into
// nothing gives.
func TestPropFreshStateIsTheMerge(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dev := rapid.SampledFrom([]string{devA, devB}).Draw(t, "by")
		n := rapid.Uint64Range(1, 5).Draw(t, "n")
		clock := sp.Clock{dev: n + rapid.Uint64Range(0, 2).Draw(t, "ahead")}
		writes := []sp.Write{{By: dev, N: n, At: rapid.Int64Range(-5, 5).Draw(t, "at"), Fields: drawFields(t, 1, 6)}}
		for i := range writes[0].Fields {
			if rapid.Bool().Draw(t, "spaced") {
				writes[0].Fields[i] = json.RawMessage(" " + string(writes[0].Fields[i]) + " ")
			}
		}
		if rapid.Bool().Draw(t, "two writes") {
			writes = append(writes, sp.Write{By: dev, N: n + 1, At: 9, Fields: drawFields(t, 1, 3)})
			clock[dev] = n + 1
		}
		if rapid.Bool().Draw(t, "reserved") {
			writes[0].Fields[sp.FieldDeleted] = json.RawMessage(`false`)
		}
		item := sp.State{ID: recID, Form: recForm, Scope: recScope, Clock: clock, Writes: writes}
		if err := sp.ValidateItem(item); err != nil {
			t.Skip(err)
		}
		st, a, ok := sp.FreshState(item)
		if !ok {
			if len(writes) == 1 && writes[0].Fields[sp.FieldDeleted] == nil {
				t.Fatalf("FreshState declined an item of one write without reserved fields")
			}
			return
		}
		merged := sp.ApplyPush(nil, sp.FromState(item))
		if want := merged.State(); !reflect.DeepEqual(st, want) {
			t.Fatalf("state:\n got %+v\nwant %+v", st, want)
		}
		if want := sp.Analyze(merged); !reflect.DeepEqual(a, want) {
			t.Fatalf("analysis:\n got %+v\nwant %+v", a, want)
		}
	})
}

// TestPropNewFreshIsAppendJSON holds NewFresh to FreshState and
// AppendJSON: whether the item's text is taken as it is or written anew,
// the JSON, the values object and the names are the same.
func TestPropNewFreshIsAppendJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dev := rapid.SampledFrom([]string{devA, devB}).Draw(t, "by")
		clock := sp.Clock{dev: 1}
		if rapid.Bool().Draw(t, "two actors") {
			clock[devA], clock[devB] = 1, 1
		}
		item := sp.State{ID: recID, Form: recForm, Scope: recScope, Clock: clock,
			Writes: []sp.Write{{By: dev, N: 1, At: rapid.Int64Range(-3, 3).Draw(t, "at"), Fields: drawFields(t, 1, 6)}}}
		raw, err := json.Marshal(item)
		if err != nil {
			t.Fatal(err)
		}
		switch rapid.IntRange(0, 3).Draw(t, "spelling") {
		case 1:
			var b bytes.Buffer
			json.Indent(&b, raw, "", " ")
			raw = b.Bytes()
		case 2:
			raw = bytes.Replace(raw, []byte(`"id"`), []byte(`"ID"`), 1)
		case 3:
			raw = bytes.Replace(raw, []byte(`:`), []byte(`: `), 1)
		}
		got, parsed, err := sp.ReadItem(raw)
		if !parsed || err != nil {
			t.Skip(err)
		}
		f, ok := sp.NewFresh(raw, got)
		if !ok {
			t.Fatalf("NewFresh declined a valid item of one write")
		}
		st, a, _ := sp.FreshState(got)
		if want := st.AppendJSON(nil); !bytes.Equal(f.JSON, want) {
			t.Fatalf("JSON:\n got %s\nwant %s", f.JSON, want)
		}
		names := make([]string, 0, len(a.Visible))
		for n := range a.Visible {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(f.Names, names) {
			t.Fatalf("names %q, want %q", f.Names, names)
		}
		var values map[string]json.RawMessage
		if err := json.Unmarshal(f.Values, &values); err != nil || !reflect.DeepEqual(values, map[string]json.RawMessage(a.Visible)) {
			t.Fatalf("values %s (%v), want %v", f.Values, err, a.Visible)
		}
	})
}

// TestNewFreshTakesTheText checks that an item as encoding/json writes it
// is taken as it is, not encoded again: a NewFresh that always re-encoded
// would pass the property above and gain nothing.
func TestNewFreshTakesTheText(t *testing.T) {
	item := sp.State{ID: recID, Form: recForm, Scope: recScope, Clock: sp.Clock{devA: 2, devB: 1},
		Writes: []sp.Write{{By: devA, N: 2, At: 1730628900123, Fields: map[string]json.RawMessage{
			"head_name": json.RawMessage(`"فاطمة"`), "gps": json.RawMessage(`{"lat":28.9,"lon":-10.1}`), "household_size": json.RawMessage(`5`),
			"notes": json.RawMessage(`"a \"quoted\" word, a \\ and \\\"}]"`)}}}}
	raw, err := json.Marshal(item)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := sp.ReadItem(raw)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := sp.NewFresh(raw, st)
	if !ok || &f.JSON[0] != &raw[0] || len(f.JSON) != len(raw) {
		t.Fatalf("NewFresh encoded the item again (ok %v)", ok)
	}
	if want := `{"gps":{"lat":28.9,"lon":-10.1},"head_name":"فاطمة","household_size":5,"notes":"a \"quoted\" word, a \\ and \\\"}]"}`; string(f.Values) != want {
		t.Errorf("values %s, want %s", f.Values, want)
	}
}
