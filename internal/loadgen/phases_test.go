package loadgen

import (
	"encoding/json"
	"math/rand/v2"
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

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzParsePage holds the byte scans to encoding/json: whenever
// encoding/json reads a body as a pull answer, parsePage gives the same
// count, cursor and more, and pageTail, when it reads the body, the same
// cursor and more.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{
		`{"records":[],"cursor":"c0","more":false}`,
		`{"records":[{"id":"a","writes":[{"fields":{"notes":"a } ] { [ \" \\ \\\" quoted"}}],"seq":1}],"cursor":"c1","more":true}`,
		`{"records":[{"s":"\\\\"},{"s":"\\\""}],"cursor":"c\\\"2","more":true}`,
		`{"more":true,"cursor":"x","records":[{"id":"a"},{"id":"b"}]}`,
		"{\"records\":[ {\"id\":\"a\"} ] , \"cursor\" : \"y\" , \"more\" : false }",
		`{"records":[{"a":[1],"cursor":"in","more":true}],"cursor":"out","more":false}`,
		`{"records":[{"a":[1],"cursor":"in","more":true,"b":1}],"x":1,"cursor":"out","more":false}`,
		`{"records":[{"w":{"a":[1],"cursor":"in","more":true}}],"more":false,"cursor":"out"}`,
		`{"records":[],"cursor":"a\"],\"cursor\":\"b","more":true}`,
		`{"records":[],"cursor":"a","more":true,"cursor":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var full struct {
			Records []json.RawMessage `json:"records"`
			Cursor  string            `json:"cursor"`
			More    bool              `json:"more"`
		}
		if json.Unmarshal(body, &full) != nil {
			return
		}
		got, err := parsePage(body)
		if err != nil {
			t.Fatalf("parsePage(%q): %v, encoding/json read it", body, err)
		}
		if want := (page{len(full.Records), full.Cursor, full.More}); got != want {
			t.Fatalf("parsePage(%q) = %+v, encoding/json: %+v", body, got, want)
		}
		if tail, ok := pageTail(body); ok && (tail.Cursor != full.Cursor || tail.More != full.More) {
			t.Fatalf("pageTail(%q) = %+v, encoding/json: %+v", body, tail, full)
		}
	})
}

// BenchmarkParsePage reads a page of 1,000 generated assessments.
func BenchmarkParsePage(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]json.RawMessage, 1000)
	for i := range recs {
		st, err := Assessment(rng, "dev-1", int64(1_700_000_000_000+i))
		if err != nil {
			b.Fatal(err)
		}
		if recs[i], err = json.Marshal(st); err != nil {
			b.Fatal(err)
		}
	}
	body := []byte(`{"records":` + mustJSON(b, recs) + `,"cursor":"c","more":true}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if pg, err := parsePage(body); err != nil || pg.Records != len(recs) {
			b.Fatalf("parsePage: %+v, %v", pg, err)
		}
	}
}
