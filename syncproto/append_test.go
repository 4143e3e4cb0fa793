package syncproto_test

import (
	"bytes"
	"encoding/json"
	"testing"

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
