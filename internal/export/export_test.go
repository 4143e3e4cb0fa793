package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/export"
	"github.com/fieldsync/fieldsync/internal/records"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenDir holds the expected encodings (testdata/golden at the module root).
var goldenDir = filepath.Join("..", "..", "testdata", "golden")

// snapshot is the fixed snapshot the golden files were made from. Fields
// come sorted, as records.Service.Export gives them.
var snapshot = records.ExportSnapshot{
	Seq:    4711,
	Cursor: "AQ-snapshot-cursor",
	Fields: []string{"big_id", "comment", "head_name", "household_size", "income", "is_head", "location", "members", "monthly_income_mad", "notes", "village"},
}

// rows are the fixed records of the golden files: Arabic text, null and
// absent fields, numbers (ints, 1.5, a big int), lists, objects, strings
// with commas, double quotes and line breaks, booleans.
func rows() []records.ExportRow {
	v := func(s string) json.RawMessage { return json.RawMessage(s) }
	return []records.ExportRow{
		{
			ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00", Form: "assessment", Scope: "guelmim-oued-noun", Seq: 4702,
			UpdatedAt: "2025-03-01T09:15:00.123Z", Conflict: false, Review: "received",
			Values: object(map[string]json.RawMessage{
				"head_name":          v(`"فاطمة الزهراء"`),
				"village":            v(`"أسا-الزاك"`),
				"household_size":     v(`5`),
				"monthly_income_mad": v(`1200`),
				"income":             v(`1.5`),
				"big_id":             v(`123456789012345678901234567890`),
				"is_head":            v(`true`),
				"members":            v(`["أحمد","مريم",3,null]`),
				"location":           v(`{"lat":28.98,"lon":-10.05,"name":"قصر"}`),
			}),
		},
		{
			ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a01", Form: "assessment", Scope: "guelmim-oued-noun", Seq: 4711,
			UpdatedAt: "2025-03-01T10:00:00.000Z", Conflict: true, Review: "has_issues",
			Values: object(map[string]json.RawMessage{
				"head_name": v(`null`), // cleared
				"comment":   v(`"He said \"yes\", then: \"no, later\""`),
				"notes":     v(`"line one\nline two, with a comma"`),
				"is_head":   v(`false`),
				"members":   v(`[]`),
				"location":  v(`{}`),
				"income":    v(`-0.25`),
			}),
		},
		{
			ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a02", Form: "assessment", Scope: "souss-massa", Seq: 12,
			UpdatedAt: "2025-02-28T23:59:59.999Z", Conflict: false, Deleted: true, Review: "approved",
			Values: object(map[string]json.RawMessage{
				"comment":        v(`"windows line\r\nbreak"`),
				"notes":          v(`" leading space, \"quoted\" "`),
				"village":        v(`""`),
				"household_size": v(`0`),
				"big_id":         v(`-9007199254740993`),
			}),
		},
		{
			ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a03", Form: "visit", Scope: "souss-massa", Seq: 13,
			UpdatedAt: "2025-03-01T00:00:00.000Z", Review: "received",
			Values: object(map[string]json.RawMessage{}), // every field absent
		},
	}
}

// encode runs rows through an encoder as records.Service.Export does.
func encode(t *testing.T, w interface {
	records.ExportWriter
	Close() error
}, rs []records.ExportRow) {
	t.Helper()
	if err := w.Start(snapshot); err != nil {
		t.Fatalf("start: %v", err)
	}
	row := &records.ExportRow{} // the service reuses one row
	for _, r := range rs {
		*row = r
		if err := w.Row(row); err != nil {
			t.Fatalf("row: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func csvBytes(t *testing.T, opt export.Options, rs []records.ExportRow) []byte {
	t.Helper()
	var b bytes.Buffer
	encode(t, export.NewCSV(&b, opt), rs)
	return b.Bytes()
}

func jsonlBytes(t *testing.T, rs []records.ExportRow) []byte {
	t.Helper()
	var b bytes.Buffer
	encode(t, export.NewJSONL(&b, export.Options{}), rs)
	return b.Bytes()
}

// golden compares got with the golden file name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	// Say where, byte for byte.
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-40)
	t.Errorf("%s differs from the golden file at byte %d:\n got: %q\nwant: %q", name, i, got[from:min(len(got), i+40)], want[from:min(len(want), i+40)])
}

func TestGoldenCSV(t *testing.T)   { golden(t, "export.csv", csvBytes(t, export.Options{}, rows())) }
func TestGoldenJSONL(t *testing.T) { golden(t, "export.jsonl", jsonlBytes(t, rows())) }
func TestGoldenCSVBOM(t *testing.T) {
	got := csvBytes(t, export.Options{BOM: true}, rows())
	if !bytes.HasPrefix(got, []byte{0xEF, 0xBB, 0xBF}) {
		t.Fatalf("BOM variant starts with % x, want EF BB BF", got[:min(3, len(got))])
	}
	if plain := csvBytes(t, export.Options{}, rows()); !bytes.Equal(got[3:], plain) {
		t.Errorf("BOM variant after the BOM differs from the plain CSV")
	}
	golden(t, "export_bom.csv", got)
}

func TestCSVNoBOMByDefault(t *testing.T) {
	got := csvBytes(t, export.Options{}, rows())
	if !bytes.HasPrefix(got, []byte("id,form,scope,seq,updated_at,conflict,big_id,comment,")) {
		t.Errorf("CSV starts with %q, want the header row and no BOM", got[:min(60, len(got))])
	}
	if !bytes.HasSuffix(got, []byte("\r\n")) {
		t.Errorf("CSV does not end with CRLF")
	}
}

// wantCells is what PROTOCOL.md §5 says each row's cells hold: a string as
// it is, null or absent empty, any other value as its JSON.
func wantCells(t *testing.T, rs []records.ExportRow) [][]string {
	t.Helper()
	out := [][]string{append([]string{"id", "form", "scope", "seq", "updated_at", "conflict"}, snapshot.Fields...)}
	for _, r := range rs {
		cells := []string{r.ID, r.Form, r.Scope, jsonText(r.Seq), r.UpdatedAt, jsonText(r.Conflict)}
		for _, f := range snapshot.Fields {
			v, ok := valuesOf(t, r)[f]
			var s string
			switch {
			case !ok || string(v) == "null":
			case v[0] == '"':
				if err := json.Unmarshal(v, &s); err != nil {
					t.Fatal(err)
				}
			default:
				s = string(v)
			}
			cells = append(cells, s)
		}
		out = append(out, cells)
	}
	return out
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCSVParsesBack reads the CSV with encoding/csv and finds the same
// cells. (encoding/csv's reader turns a CRLF inside a quoted cell into LF,
// so no value here holds CRLF; a lone CR and a lone LF it keeps.)
func TestCSVParsesBack(t *testing.T) {
	rs := rows()
	vals := valuesOf(t, rs[2])
	vals["comment"] = json.RawMessage(`"no windows line break here"`)
	rs[2].Values = object(vals)
	rs = append(rs, records.ExportRow{
		ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a04", Form: "visit", Scope: "souss-massa", Seq: 14, UpdatedAt: "2025-03-01T00:00:01.000Z",
		Values: object(map[string]json.RawMessage{
			"notes":   json.RawMessage(`"old Mac line\rbreak"`),
			"comment": json.RawMessage(`"two\n\nlines, \"a\" and \"\""`),
		}),
	})
	got, err := csv.NewReader(bytes.NewReader(csvBytes(t, export.Options{}, rs))).ReadAll()
	if err != nil {
		t.Fatalf("encoding/csv cannot read the export: %v", err)
	}
	want := wantCells(t, rs)
	if len(got) != len(want) {
		t.Fatalf("%d records read back, want %d", len(got), len(want))
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			for j := range want[i] {
				if j >= len(got[i]) || got[i][j] != want[i][j] {
					t.Errorf("row %d, column %s: read back %q, want %q", i, want[0][j], at(got[i], j), want[i][j])
				}
			}
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<missing>"
}

// TestCSVStringsAsTheyAre checks the bytes of a quoted cell holding line
// breaks: PROTOCOL.md §5 says a string goes in "as it is", and RFC 4180
// allows CR and LF inside a quoted field.
func TestCSVStringsAsTheyAre(t *testing.T) {
	for _, s := range []string{"a\nb", "a\r\nb", "a\rb", "a,b", `a"b`} {
		r := records.ExportRow{ID: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00", Form: "f", Scope: "s", Seq: 1, UpdatedAt: "2025-03-01T00:00:00.000Z",
			Values: object(map[string]json.RawMessage{"notes": json.RawMessage(jsonText(s))})}
		var b bytes.Buffer
		c := export.NewCSV(&b, export.Options{})
		if err := c.Start(records.ExportSnapshot{Fields: []string{"notes"}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Row(&r); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		want := "id,form,scope,seq,updated_at,conflict,notes\r\n" +
			"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00,f,s,1,2025-03-01T00:00:00.000Z,false," + `"` + strings.ReplaceAll(s, `"`, `""`) + `"` + "\r\n"
		if b.String() != want {
			t.Errorf("string %q: CSV %q, want %q", s, b.String(), want)
		}
	}
}

func TestJSONLLines(t *testing.T) {
	out := jsonlBytes(t, rows())
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(rows()) || !strings.HasSuffix(string(out), "\n") {
		t.Fatalf("%d lines, want %d, each ending in a newline", len(lines), len(rows()))
	}
	for i, line := range lines {
		var got struct {
			ID        string                     `json:"id"`
			Form      string                     `json:"form"`
			Scope     string                     `json:"scope"`
			Seq       uint64                     `json:"seq"`
			UpdatedAt string                     `json:"updated_at"`
			Conflict  *bool                      `json:"conflict"`
			Values    map[string]json.RawMessage `json:"values"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		r := rows()[i]
		if got.ID != r.ID || got.Form != r.Form || got.Scope != r.Scope || got.Seq != r.Seq || got.UpdatedAt != r.UpdatedAt || got.Conflict == nil || *got.Conflict != r.Conflict {
			t.Errorf("line %d = %s", i, line)
		}
		want := valuesOf(t, r)
		if got.Values == nil || len(got.Values) != len(want) {
			t.Errorf("line %d values = %v, want %d values", i, got.Values, len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got.Values[k], v) {
				t.Errorf("line %d value %s = %s, want %s byte for byte", i, k, got.Values[k], v)
			}
		}
	}
}

func TestOnStartAndReviewColumn(t *testing.T) {
	var b bytes.Buffer
	var seen []records.ExportSnapshot
	c := export.NewCSV(&b, export.Options{ReviewColumn: true, OnStart: func(s records.ExportSnapshot) {
		if b.Len() != 0 {
			t.Errorf("OnStart called after %d bytes were written", b.Len())
		}
		seen = append(seen, s)
	}})
	encode(t, c, rows()[:1])
	if len(seen) != 1 || seen[0].Seq != snapshot.Seq || seen[0].Cursor != snapshot.Cursor {
		t.Errorf("OnStart saw %+v, want the snapshot once", seen)
	}
	if !strings.HasPrefix(b.String(), "id,form,scope,seq,updated_at,conflict,_review,big_id,") {
		t.Errorf("header with the review column = %q", strings.SplitN(b.String(), "\r\n", 2)[0])
	}
	if !strings.Contains(b.String(), ",false,received,") {
		t.Errorf("row lacks the review state: %q", b.String())
	}
}

// object encodes values as the store keeps them: one JSON object, keys
// sorted, values byte for byte.
func object(m map[string]json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// valuesOf decodes a row's values object.
func valuesOf(t *testing.T, r records.ExportRow) map[string]json.RawMessage {
	t.Helper()
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(r.Values, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
