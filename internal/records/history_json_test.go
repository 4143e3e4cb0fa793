package records_test

import (
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"pgregory.net/rapid"
)

// AppendJSON must read back as encoding/json reads the entry, whatever the
// strings (notes are free text) and values.
func TestHistoryAppendJSONRoundTrips(t *testing.T) {
	values := []string{`1`, `"فاطمة"`, `null`, `{"a":[1,2]}`, `"a\"b<c>&"`, `-0.25`, `true`}
	rapid.Check(t, func(t *rapid.T) {
		h := records.HistoryEntry{
			Seq: rapid.Uint64().Draw(t, "seq"), ReceivedAt: "2026-11-28T20:00:00.000Z",
			Actor: rapid.String().Draw(t, "actor"), Batch: rapid.StringMatching(`[0-9a-f-]{0,36}`).Draw(t, "batch"),
			Kind:   rapid.SampledFrom([]string{"push", "resolve", "review"}).Draw(t, "kind"),
			Fields: rapid.SliceOf(rapid.StringMatching(`[a-z_.]{1,8}`)).Draw(t, "fields"), Values: map[string]json.RawMessage{},
			MergedConcurrent: rapid.Bool().Draw(t, "concurrent"), Note: rapid.String().Draw(t, "note"),
			ActorName: rapid.String().Draw(t, "name"),
		}
		if h.Fields == nil {
			h.Fields = []string{}
		}
		for _, f := range h.Fields {
			h.Values[f] = json.RawMessage(rapid.SampledFrom(values).Draw(t, "value"))
		}
		if rapid.Bool().Draw(t, "siblings") {
			h.Siblings = map[string][]sp.SiblingView{"x": {{V: json.RawMessage(`1`), By: "a", N: 1, At: 5}}}
		}
		var got, want records.HistoryEntry
		if err := json.Unmarshal(h.AppendJSON(nil), &got); err != nil {
			t.Fatalf("AppendJSON wrote invalid JSON: %v\n%s", err, h.AppendJSON(nil))
		}
		std, _ := json.Marshal(h)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Fatalf("round trip differs:\n got  %s\n want %s", gb, wb)
		}
	})
}
