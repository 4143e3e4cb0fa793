package syncproto

// The one-pass readers (jsonscan.go, itemscan.go) must answer exactly as
// encoding/json does whenever they answer at all. These targets hold them
// to it; run one with e.g.
//
//	go test -run='^$' -fuzz=FuzzItemScan -fuzztime=20s ./syncproto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanSeeds are push items from the shared vectors, and values and items
// at the edges of what the readers take.
func scanSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	f, err := os.Open("../testdata/vectors/merge.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			tb.Fatal(err)
		}
		for _, k := range []string{"a", "b", "state", "item"} {
			if s, ok := v[k]; ok {
				out = append(out, s)
			}
		}
	}
	const id, dev = `"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00"`, `"0193a6f4-7c1e-7b55-9a10-00000000000a"`
	for _, s := range []string{
		`{"id":` + id + `,"form":"f","scope":"s","clock":{` + dev + `:1},"writes":[{"by":` + dev + `,"n":1,"at":-5,"fields":{"a":{"x":[1,2.5e3,"\u00e9"]},"b":null}}]}`,
		`{"id":` + id + `,"id":` + id + `}`,
		`{"ID":` + id + `}`,
		`{"id":` + id + `,"clock":null}`,
		`{"id":` + id + `,"clock":{` + dev + `:1.0}}`,
		`{"id":` + id + `,"clock":{` + dev + `:18446744073709551615}}`,
		`{"id":` + id + `,"clock":{` + dev + `:1,` + dev + `:2}}`,
		`{"id":` + id + `,"writes":[{"n":01}]}`,
		`{"id":` + id + `,"writes":[{"at":-0,"fields":{"a":1,"a":2}}]}`,
		`{"id":"\u0030"}`,
		` { "id" : "x" , "extra" : 1 } `,
		`{"writes":[{"fields":{"v":[[[[[[]]]]]]}}]}`,
		`{"writes":[{"fields":{"v":"<&>"}}]}`,
		`[1, {"a": "b"}, -0.0e+7, true, false, null, "\ud800"]`,
		`{"device":` + dev + `,"batch":` + id + `,"records":[{"id":` + id + `}, {"id":1}]}`,
		`{"device":` + dev + `,"batch":` + id + `,"records":null}`,
		`{"device":` + dev + `,"records":[],"records":[]}`,
		`"\x7f\xff"`, `01`, `1.`, `-`, `1e`, `[1,]`, `{"a":1,}`, `tru`, `"\u12"`, "\"\t\"",
	} {
		out = append(out, []byte(s))
	}
	return out
}

func FuzzScanValue(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		d, res := scanValue(v)
		switch res {
		case scanOK:
			if !json.Valid(v) {
				t.Fatalf("scanValue(%q) accepts what json.Valid refuses", v)
			}
			if want := depth(v); d != want {
				t.Fatalf("scanValue(%q): depth %d, Depth says %d", v, d, want)
			}
		case scanInvalid:
			if json.Valid(v) {
				t.Fatalf("scanValue(%q) refuses what json.Valid accepts", v)
			}
		case scanTooDeep:
			if depth(v) <= scanMaxDepth {
				t.Fatalf("scanValue(%q): too deep at depth %d", v, depth(v))
			}
		}
	})
}

func FuzzItemScan(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, _, ok := scanItem(raw)
		if !ok {
			return
		}
		var want State
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("scanItem(%q) reads what encoding/json refuses: %v", raw, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanItem(%q):\n got %#v\nwant %#v", raw, got, want)
		}
	})
}

func FuzzPushScan(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanPush(body)
		if !ok {
			return
		}
		var want PushRequest
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("scanPush(%q) reads what encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanPush(%q):\n got %#v\nwant %#v", body, got, want)
		}
	})
}

// TestScanReadsTheUsualShape makes sure the fast paths are taken for the
// items tablets send: a reader that declined everything would pass the
// fuzz targets and gain nothing.
func TestScanReadsTheUsualShape(t *testing.T) {
	items := 0
	for _, s := range scanSeeds(t) {
		if _, _, ok := scanItem(s); ok {
			items++
		}
	}
	if items < 100 {
		t.Fatalf("scanItem read %d seed items; the vectors alone hold over 100", items)
	}
	body := []byte(`{"device":"0193a6f4-7c1e-7b55-9a10-00000000000a","batch":"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00","records":[{"id":"x"},{"id":"y"}]}`)
	req, ok := scanPush(body)
	if !ok || len(req.Records) != 2 {
		t.Fatalf("scanPush did not read a plain body: %v %#v", ok, req)
	}
}

func FuzzCanonicalScan(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{`{"b":1,"a":{"d":[1.50,"فاطمة"],"c":1e2}}`, `{"a":1,"a!":2}`, `{"a":1,"a":2}`, `{"é":1}`, `" \u2028"`, `[ 1 , 2 ]`,
		`"فاطمة الزهراء بنت محمد"`, "\"12345678\u2028\"", "\"1234567\x7f\"", `"12345678<"`, `"abc&defghijk"`, `"abc<defghijk"`, `"abc>defghijk"`, "\"abc\x01defghijk\"", `"abc\\ndefghijk"`, `-120`, `-0`, `105`, `0`, `007`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		// Canonical, with its shortcuts for scalars, answers as
		// encoding/json does.
		c, err := Canonical(v)
		if err == nil {
			if want, err := canonicalDecode(v); err != nil || !bytes.Equal(c, want) {
				t.Fatalf("Canonical(%q) = %q, encoding/json gives %q (%v)", v, c, want, err)
			}
		}
		// and so does CanonicalUTF8 for valid UTF-8.
		if utf8.Valid(v) {
			if cu, errU := CanonicalUTF8(v); !bytes.Equal(cu, c) || (errU == nil) != (err == nil) {
				t.Fatalf("CanonicalUTF8(%q) = %q, %v; Canonical: %q, %v", v, cu, errU, c, err)
			}
		}
		got, ok := canonicalScan(v)
		if !ok {
			return
		}
		want, err := canonicalDecode(v)
		if err != nil {
			t.Fatalf("canonicalScan(%q) reads what encoding/json refuses: %v", v, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("canonicalScan(%q) = %q, encoding/json gives %q", v, got, want)
		}
	})
}

// FuzzReadItem holds ReadItem, which reads and checks usual items in one
// pass, to ParseItem through encoding/json then ValidateItem: the same
// state, the same error.
func FuzzReadItem(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	deep := `{"id":"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00","form":"f","scope":"s","clock":{"0193a6f4-7c1e-7b55-9a10-00000000000a":1},"writes":[{"by":"0193a6f4-7c1e-7b55-9a10-00000000000a","n":1,"at":1,"fields":{"a":`
	for _, d := range []int{MaxValueDepth, MaxValueDepth + 1, scanMaxDepth + 1} {
		v := strings.Repeat("[", d) + strings.Repeat("]", d)
		f.Add([]byte(deep + v + `}}]}`))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, parsed, err := ReadItem(raw)
		want, werr := parseItemJSON(raw)
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
			want, werr = State{}, Errorf(CodeInvalidRecord, "an item must be a JSON object")
		}
		if parsed != (werr == nil) {
			t.Fatalf("ReadItem(%q): parsed %v, encoding/json: %v", raw, parsed, werr)
		}
		if werr == nil {
			werr = ValidateItem(want)
		}
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("ReadItem(%q): error %v, want %v", raw, err, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ReadItem(%q):\n got %#v\nwant %#v", raw, got, want)
		}
	})
}

// strByByte is jsonScanner.str as it was before it read eight bytes at a
// time: one byte after the other, by strClass. (FuzzStr is about the word
// skipping; both read an escape with escapeEnd.)
func strByByte(b []byte) (end int, plain, ok bool) {
	plain = true
	for i := 1; i < len(b); i++ {
		switch strClass[b[i]] {
		case strPlain:
			continue
		case strOther:
			plain = false
			continue
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, plain, true
		case c < 0x20:
			return 0, false, false
		default: // a backslash; escapes are read as str reads them
			plain = false
			if i = escapeEnd(b, i); i < 0 {
				return 0, false, false
			}
		}
	}
	return 0, false, false
}

// FuzzStr holds the string reader, which skips eight bytes at a time, to
// the byte-by-byte reading: the same end, plainness and validity, for any
// text after an opening quote.
func FuzzStr(f *testing.F) {
	for _, s := range []string{
		`"plain ascii text of some length"`, `"فاطمة الزهراء بنت محمد"`, `"a<b"`, `"12345678&"`, "\"1234567\x7f\"",
		`"escapes \" \\ \/ \u00e9 and more"`, "\"control \x01 byte\"", `"unterminated`, `"1234567\`, `"ends at 8"`,
		"\"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\"", `"\u12"`, `"x"trailing`,
		`"abcdefg\n12345678"`, `"abcdefg\x12345678"`, "\"abcdefg\x1f12345678\"",
		`"a&cdefghijk"`, `"a<cdefghijk"`, `"a>cdefghijk"`, `"a=c;e?g:ijk"`, "\"a\x7fcdefghijk\"",
		`"é123456\x123456789"`, `"é123456\n1234567\"89"`, "\"é123456\x011234567\"", `"é123456ab"cdefgh"`,
	} {
		f.Add([]byte(strings.TrimPrefix(s, `"`))) // the target adds the opening quote
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		b := append([]byte{'"'}, text...)
		wantEnd, wantPlain, wantOK := strByByte(b)
		s := jsonScanner{b: b}
		plain, ok := s.str()
		if ok != wantOK || ok && (plain != wantPlain || s.i != wantEnd) {
			t.Fatalf("str(%q) = plain %v, ok %v, end %d; byte by byte: plain %v, ok %v, end %d", b, plain, ok, s.i, wantPlain, wantOK, wantEnd)
		}
	})
}

// FuzzNewFresh holds NewFresh, which skips the values of an item it takes
// as text, to what it must give: for any item ReadItem reads without
// error, the state's JSON as AppendJSON writes it, its values object and
// its sorted names, whether the text was taken as it is or written anew.
func FuzzNewFresh(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	const id, dev = `"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00"`, `"0193a6f4-7c1e-7b55-9a10-00000000000a"`
	head := `{"id":` + id + `,"form":"f","scope":"s","clock":{` + dev + `:1},"writes":[{"by":` + dev + `,"n":1,"at":5,"fields":`
	for _, fields := range []string{
		`{"a":1,"b":"x"}`, `{"a":{"lat":28.9,"lon":-10.1},"b":[1,"\"]",{"c":null}]}`, `{"a":"\\","b":"\\\"}"}`,
		`{"a":[ 1 ],"b":2}`, `{"a":{"x" :1}}`, `{"a":true,"b":false,"c":null,"d":-0.5e3}`, `{"a":"فاطمة","b":"\u00e9 <&>"}`,
		`{"b":1,"a":2}`, `{"a":1e5}`, `{}`,
	} {
		f.Add([]byte(head + fields + `}]}`))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, parsed, err := ReadItem(raw)
		if !parsed || err != nil {
			return
		}
		fr, ok := NewFresh(raw, st)
		want, a, wantOK := FreshState(st)
		if ok != wantOK {
			t.Fatalf("NewFresh(%q) ok %v, FreshState ok %v", raw, ok, wantOK)
		}
		if !ok {
			return
		}
		if j := want.AppendJSON(nil); !bytes.Equal(fr.JSON, j) {
			t.Fatalf("NewFresh(%q).JSON = %s, AppendJSON writes %s", raw, fr.JSON, j)
		}
		names := make([]string, 0, len(a.Visible))
		for n := range a.Visible {
			names = append(names, n)
		}
		sort.Strings(names)
		if !reflect.DeepEqual(fr.Names, names) {
			t.Fatalf("NewFresh(%q).Names = %q, want %q", raw, fr.Names, names)
		}
		if v := appendObject(nil, names, a.Visible); !bytes.Equal(fr.Values, v) {
			t.Fatalf("NewFresh(%q).Values = %s, want %s", raw, fr.Values, v)
		}
	})
}

// FuzzCanonicalNumber holds appendCanonicalNumber, which spells a number
// without allocating, to canonicalNumber, the rule written plainly, for
// every JSON number literal.
func FuzzCanonicalNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "-0.0", "0.050", "10.00", "100", "1e2", "1E+2", "-1.50e-3", "0.0e5", "120e-1",
		"9007199254740993", "1e99999999999999999999", "1e1152921504606846977", "-00", "5", "-5", "123.456", "0.000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		s := jsonScanner{b: []byte(lit)}
		if lit == "" || !s.number() || s.i != len(lit) {
			return // not a JSON number literal
		}
		prefix := []byte("x")
		if got, want := appendCanonicalNumber(prefix, []byte(lit)), "x"+canonicalNumber(lit); string(got) != want {
			t.Fatalf("appendCanonicalNumber(%q) = %q, canonicalNumber gives %q", lit, got[1:], want[1:])
		}
	})
}
