package loadgen

import (
	"encoding/json"
	"testing"
)

// parsePage counts records and reads the cursor as encoding/json does,
// strings holding quotes, brackets and escapes included.
func TestParsePage(t *testing.T) {
	tricky := []json.RawMessage{
		json.RawMessage(`{"id":"a","writes":[{"fields":{"notes":"a } ] { [ \" \\ \\\" quoted"}}],"seq":1}`),
		json.RawMessage(`{"id":"b","writes":[{"fields":{"list":[{"x":[1,{"y":2}]}],"s":"\\"}}],"seq":2}`),
		json.RawMessage(`{"id":"c","seq":3}`),
	}
	for _, tc := range []struct {
		name string
		body string
		want page
	}{
		{"empty", `{"records":[],"cursor":"c0","more":false}` + "\n", page{0, "c0", false}},
		{"tricky", mustJSON(t, map[string]any{"records": tricky, "cursor": "c3", "more": true}), page{3, "c3", true}},
		{"ordered", `{"records":` + mustJSON(t, tricky) + `,"cursor":"c3","more":true}` + "\n", page{3, "c3", true}},
		{"other order", `{"more":true,"cursor":"x","records":[{"id":"a"},{"id":"b"}]}`, page{2, "x", true}},
		{"spaces", "{\"records\":[ {\"id\":\"a\"} ] , \"cursor\" : \"y\" , \"more\" : false }", page{1, "y", false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePage([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parsePage(%s) = %+v, want %+v", tc.body, got, tc.want)
			}
		})
	}
	if _, err := parsePage([]byte(`{"records":[{"id":`)); err == nil {
		t.Error("a cut answer parsed")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
