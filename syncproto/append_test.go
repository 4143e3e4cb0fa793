package syncproto_test

import (
	"bytes"
	"encoding/json"
	"testing"

	sp "github.com/fieldsync/fieldsync/syncproto"
	"pgregory.net/rapid"
)

// AppendJSON writes what encoding/json writes for any valid state.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genAnySim.Draw(t, "history").joinAll().State()
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := s.AppendJSON(nil)
		if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("AppendJSON\n got  %s\n want %s", got, want.Bytes())
		}
	})
}

// PushResponse.AppendJSON writes what json.Marshal writes for any answer,
// whatever its strings hold.
func TestPushResponseAppendJSONMatchesMarshal(t *testing.T) {
	anyString := rapid.OneOf(rapid.String(), rapid.SampledFrom([]string{"", "a<b>&c", "\u2028", "\"\\", "\x00\x1f\x7f", "\xff"}))
	rapid.Check(t, func(t *rapid.T) {
		r := sp.PushResponse{Batch: anyString.Draw(t, "batch")}
		if !rapid.Bool().Draw(t, "nil results") {
			r.Results = []sp.PushResult{}
		}
		for range rapid.IntRange(0, 4).Draw(t, "results") {
			res := sp.PushResult{ID: anyString.Draw(t, "id"), Status: anyString.Draw(t, "status"), Seq: rapid.Uint64().Draw(t, "seq")}
			res.Clock = rapid.MapOfN(anyString, rapid.Uint64(), 0, 3).Draw(t, "clock")
			if rapid.Bool().Draw(t, "conflicts") {
				res.Conflicts = rapid.SliceOfN(anyString, 0, 3).Draw(t, "conflict fields")
			}
			if rapid.Bool().Draw(t, "error") {
				res.Error = &sp.Error{Code: sp.Code(anyString.Draw(t, "code")), Message: anyString.Draw(t, "message")}
			}
			r.Results = append(r.Results, res)
		}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("AppendJSON\n got  %s\n want %s", got, want)
		}
	})
}
