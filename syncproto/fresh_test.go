package syncproto_test

import (
	"encoding/json"
	"reflect"
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
