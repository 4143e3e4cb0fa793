package e2e

// The bad-input corpus (testdata/bad/cases.jsonl, format in its README):
// every case against one real server, then the server must still be
// healthy, the fixture's records unchanged, and every rejected item in the
// quarantine.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// badCase is one line of testdata/bad/cases.jsonl.
type badCase struct {
	Name             string            `json:"name"`
	Method           string            `json:"method"`
	Path             string            `json:"path"`
	Headers          map[string]string `json:"headers"`
	Body             *string           `json:"body"`
	BodyB64          string            `json:"body_b64"`
	Generate         string            `json:"generate"`
	Encode           string            `json:"encode"`
	Token            string            `json:"token"`
	ExpectStatus     int               `json:"expect_status"`
	ExpectCode       string            `json:"expect_code"`
	ExpectItemCode   string            `json:"expect_item_code"`
	ExpectItemStatus string            `json:"expect_item_status"`
	Note             string            `json:"note"`
}

// loadBadCases reads the corpus and checks each case's shape.
func loadBadCases(t *testing.T) []badCase {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "testdata", "bad", "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []badCase
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c badCase
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("cases.jsonl:%d: %v", line, err)
		}
		bodies := 0
		for _, set := range []bool{c.Body != nil, c.BodyB64 != "", c.Generate != ""} {
			if set {
				bodies++
			}
		}
		switch {
		case c.Name == "" || names[c.Name]:
			t.Fatalf("cases.jsonl:%d: missing or repeated name %q", line, c.Name)
		case c.Method == "" || !strings.HasPrefix(c.Path, "/"):
			t.Fatalf("cases.jsonl:%d (%s): method and path are required", line, c.Name)
		case bodies > 1:
			t.Fatalf("cases.jsonl:%d (%s): at most one of body, body_b64, generate", line, c.Name)
		case c.ExpectStatus == 0:
			t.Fatalf("cases.jsonl:%d (%s): expect_status is required", line, c.Name)
		case (c.ExpectItemCode != "" || c.ExpectItemStatus != "") && (c.ExpectStatus != http.StatusOK || c.ExpectCode != ""):
			t.Fatalf("cases.jsonl:%d (%s): item expectations go with a 200 and no expect_code", line, c.Name)
		}
		names[c.Name] = true
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// badFixture is what the cases' placeholders point at.
type badFixture struct {
	s      *Server
	dev    *Device // in scope and extra scope
	dev2   *Device // in scope
	other  *Device // in other scope
	vars   map[string]string
	tokens map[string]string
	// kept: the fixture's records as pulled before the cases, by id, with
	// the token that pulls them.
	kept map[string]syncproto.PulledRecord
	// secrets: values of the fixture's records, which no answer to a bad
	// request may hold.
	secrets []string
}

const (
	badScope      = "bad-north"
	badExtraScope = "bad-extra"
	badOtherScope = "bad-south"
	badForm       = "bad-form"
)

func newBadFixture(t *testing.T, s *Server) *badFixture {
	t.Helper()
	f := &badFixture{s: s, kept: map[string]syncproto.PulledRecord{}}
	f.dev = s.NewDevice(t, "bad-input tablet", badScope, badExtraScope)
	f.dev2 = s.NewDevice(t, "bad-input tablet 2", badScope)
	f.other = s.NewDevice(t, "bad-input other tablet", badOtherScope)
	other2 := s.NewDevice(t, "bad-input other tablet 2", badOtherScope)
	supID, supToken := s.CreateUser(t, "bad-input supervisor", "supervisor", badScope)
	_, hqToken := s.CreateUser(t, "bad-input hq", "hq")
	revoked := s.NewDevice(t, "bad-input revoked tablet", badScope)
	if resp, b := s.Do(t, http.MethodDelete, "/v1/admin/tokens/"+revoked.ID, s.AdminToken, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("fixture: revoke: status %d; %s", resp.StatusCode, cut(b))
	}

	secret := func(what string) string {
		v := "BI-SECRET-" + what + "-" + randomHex(6)
		f.secrets = append(f.secrets, v)
		return v
	}
	// The existing record, clock {dev: 2}, pushed in a batch whose id the
	// cases reuse.
	existing := f.dev.Create(t, badForm, map[string]any{"household_size": 4, "head_name": secret("head-name") + "-فاطمة"})
	f.dev.Edit(t, existing, map[string]any{"household_size": 5})
	body, _ := f.dev.PushBody()
	st, pr, e := s.Push(t, f.dev.Token, body)
	if st != http.StatusOK {
		t.Fatalf("fixture: push: status %d, %+v", st, e)
	}
	if err := f.dev.Ack(body, pr); err != nil {
		t.Fatal(err)
	}
	if c := f.dev.Recs[existing].Clock; len(c) != 1 || c[f.dev.ID] != 2 {
		t.Fatalf("fixture: existing record's clock %v, want {dev: 2}", c)
	}

	// A hard conflict in each scope.
	conflict := func(a, b *Device) string {
		id := a.Create(t, badForm, map[string]any{"income": 1000, "notes": secret("notes")})
		a.PushChanges(t)
		b.PullMerge(t)
		a.Edit(t, id, map[string]any{"income": 1200})
		b.Edit(t, id, map[string]any{"income": 1500})
		a.PushChanges(t)
		if r := resultFor(t, b.PushChanges(t), id); r.Status != syncproto.StatusConflict {
			t.Fatalf("fixture: the second edit is %s, want conflict", r.Status)
		}
		return id
	}
	conflictRec := conflict(f.dev, f.dev2)
	otherConflict := conflict(f.other, other2)
	otherRec := f.other.Create(t, badForm, map[string]any{"household_size": 9, "head_name": secret("other-head-name")})
	f.other.PushChanges(t)

	clockOf := func(id string) string {
		st, v := s.GetRecord(t, s.AdminToken, id)
		if st != http.StatusOK {
			t.Fatalf("fixture: get %s: status %d", id, st)
		}
		return string(mustJSON(t, v.Record.Clock))
	}

	// Cursors: a real one, and variants.
	_, cursor := s.PullAll(t, f.dev.Token)
	cb, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(cb) != 33 {
		t.Fatalf("fixture: the cursor %q is not the 33 bytes of protocol-notes (%v)", cursor, err)
	}
	variant := func(change func(b []byte) []byte) []byte {
		return change(append([]byte(nil), cb...))
	}
	enc := base64.RawURLEncoding.EncodeToString
	foreign := variant(func(b []byte) []byte {
		copy(b[1:17], []byte(randomHex(8)))
		binary.BigEndian.PutUint64(b[17:25], 1)
		return b
	})
	future := variant(func(b []byte) []byte {
		binary.BigEndian.PutUint64(b[17:25], 1<<40)
		binary.BigEndian.PutUint64(b[25:33], 0)
		return b
	})
	wrongNonce := variant(func(b []byte) []byte { b[32] ^= 1; return b })
	v2 := variant(func(b []byte) []byte { b[0] = 2; return b })
	std := variant(func(b []byte) []byte { b[30], b[31], b[32] = 0xff, 0xff, 0xff; return b })

	f.vars = map[string]string{
		"device":                f.dev.ID,
		"upper_device":          strings.ToUpper(f.dev.ID),
		"device_token":          url.QueryEscape(f.dev.Token),
		"device2":               f.dev2.ID,
		"other_device":          f.other.ID,
		"revoked_device":        revoked.ID,
		"supervisor":            supID,
		"scope":                 badScope,
		"extra_scope":           badExtraScope,
		"other_scope":           badOtherScope,
		"form":                  badForm,
		"existing_record":       existing,
		"conflict_record":       conflictRec,
		"conflict_clock":        clockOf(conflictRec),
		"other_record":          otherRec,
		"other_conflict_record": otherConflict,
		"other_conflict_clock":  clockOf(otherConflict),
		"used_batch":            body["batch"].(string),
		"cursor_v2":             enc(v2),
		"cursor_short":          enc(cb[:32]),
		"cursor_padded":         url.QueryEscape(cursor + "="),
		"cursor_newline":        cursor[:20] + "%0A" + cursor[20:],
		"cursor_std_b64":        url.QueryEscape(base64.RawStdEncoding.EncodeToString(std)),
		"foreign_cursor":        enc(foreign),
		"future_cursor":         enc(future),
		"wrong_nonce_cursor":    enc(wrongNonce),
	}
	f.tokens = map[string]string{
		"device":       f.dev.Token,
		"other_device": f.other.Token,
		"supervisor":   supToken,
		"hq":           hqToken,
		"admin":        s.AdminToken,
		"revoked":      revoked.Token,
		"bogus":        "fst_" + randomHex(24),
		"none":         "",
	}

	// What the devices pull now must be what they pull after the cases.
	for _, d := range []*Device{f.dev, f.other} {
		all, _ := s.PullAll(t, d.Token)
		for _, r := range all {
			f.kept[r.ID] = r
		}
	}
	for _, id := range []string{existing, conflictRec, otherRec, otherConflict} {
		if _, ok := f.kept[id]; !ok {
			t.Fatalf("fixture: record %s was not pulled", id)
		}
	}
	return f
}

// fill replaces the placeholders of b with the fixture's values and the
// case's fresh ids.
func (f *badFixture) fill(b []byte, fresh map[string]string) []byte {
	for _, m := range []map[string]string{fresh, f.vars} {
		for k, v := range m {
			b = bytes.ReplaceAll(b, []byte("{{"+k+"}}"), []byte(v))
		}
	}
	return b
}

func freshBadVars() map[string]string {
	id, id2, batch := newID(), newID(), newID()
	return map[string]string{
		"new_id":           id,
		"new_id2":          id2,
		"batch":            batch,
		"upper_new_id":     strings.ToUpper(id),
		"new_id_nohyphens": strings.ReplaceAll(id, "-", ""),
		"upper_batch":      strings.ToUpper(batch),
	}
}

// generate builds a body named by a case's "generate".
func (f *badFixture) generate(name string, fresh map[string]string) ([]byte, error) {
	dev := f.dev.ID
	head := `{"device":"` + dev + `","batch":"` + fresh["batch"] + `","records":[`
	item := func(id string, clock string, fields string) string {
		return `{"id":"` + id + `","form":"` + badForm + `","scope":"` + badScope + `","clock":` + clock +
			`,"writes":[{"by":"` + dev + `","n":1,"at":1730628900123,"fields":` + fields + `}]}`
	}
	own := `{"` + dev + `":1}`
	one := func(fields string) []byte {
		return []byte(head + item(fresh["new_id"], own, fields) + `]}`)
	}
	spaces := func(n int) []byte {
		var b bytes.Buffer
		b.Grow(len(head) + n + 2)
		b.WriteString(head)
		b.Write(bytes.Repeat([]byte(" "), n))
		b.WriteString(`]}`)
		return b.Bytes()
	}
	items := func(n int) []byte {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = item(newID(), own, fmt.Sprintf(`{"i":%d}`, i))
		}
		return []byte(head + strings.Join(parts, ",") + `]}`)
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	switch name {
	case "body_33MiB":
		return spaces(33 << 20), nil
	case "body_32MiB_exact":
		return spaces(syncproto.MaxBodyBytes - len(head) - len(`]}`)), nil
	case "gzip_bomb_40MiB":
		return compressBody("gzip", spaces(40<<20))
	case "zstd_bomb_40MiB":
		return compressBody("zstd", spaces(40<<20))
	case "batch_2001_items":
		return items(2001), nil
	case "batch_2000_items":
		return items(2000), nil
	case "value_65KiB":
		return one(`{"notes":"` + strings.Repeat("a", 65<<10) + `"}`), nil
	case "value_64KiB":
		return one(`{"notes":"` + strings.Repeat("a", 64<<10-2) + `"}`), nil
	case "fields_512", "fields_513":
		fs := make([]string, map[string]int{"fields_512": 512, "fields_513": 513}[name])
		for i := range fs {
			fs[i] = fmt.Sprintf(`"f%d":%d`, i, i)
		}
		return one("{" + strings.Join(fs, ",") + "}"), nil
	case "actors_257":
		cl := []string{`"` + dev + `":1`}
		for range 256 {
			cl = append(cl, `"`+newID()+`":1`)
		}
		return []byte(head + item(fresh["new_id"], "{"+strings.Join(cl, ",")+"}", `{"x":1}`) + `]}`), nil
	case "deep_value_64":
		return one(`{"notes":` + deep(64) + `}`), nil
	case "deep_value_65":
		return one(`{"notes":` + deep(65) + `}`), nil
	case "deep_value_1000":
		return one(`{"notes":` + deep(1000) + `}`), nil
	case "deep_nesting_10000":
		return one(`{"notes":` + deep(10000) + `}`), nil
	case "deep_records_item_5000":
		return []byte(head + deep(5000) + `]}`), nil
	case "deep_body_unclosed_100000":
		return []byte(head + strings.Repeat("[", 100000)), nil
	case "resolve_value_65KiB":
		return []byte(`{"clock":` + f.vars["conflict_clock"] + `,"values":{"income":"` + strings.Repeat("a", 65<<10) + `"},"note":"x"}`), nil
	}
	return nil, fmt.Errorf("unknown generator %q", name)
}

// compressBody encodes b as a case's "encode" says.
func compressBody(how string, b []byte) ([]byte, error) {
	var out bytes.Buffer
	switch how {
	case "gzip", "gzip_truncated", "gzip_bad_crc":
		zw := gzip.NewWriter(&out)
		if _, err := zw.Write(b); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		z := out.Bytes()
		switch how {
		case "gzip_truncated":
			return z[:len(z)/2], nil
		case "gzip_bad_crc":
			z[len(z)-8] ^= 0xff // the CRC-32 trailer
		}
		return z, nil
	case "zstd", "zstd_truncated":
		zw, err := zstd.NewWriter(&out, zstd.WithWindowSize(1<<20))
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(b); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		z := out.Bytes()
		if how == "zstd_truncated" {
			return z[:len(z)/2], nil
		}
		return z, nil
	}
	return nil, fmt.Errorf("unknown encoding %q", how)
}

// rejectedItem is an item a case expects in the quarantine.
type rejectedItem struct {
	caseName string
	device   string
	code     string
	record   string // the item's id, when it has one
	item     []byte // compacted as sent; nil when it could not be read
}

// pushedItems returns the items of a push body as sent (nil when the body
// does not parse here).
func pushedItems(body []byte) []json.RawMessage {
	var req struct {
		Records []json.RawMessage `json:"records"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	return req.Records
}

func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return nil
	}
	return out.Bytes()
}

func TestBadInputCorpus(t *testing.T) {
	cases := loadBadCases(t)
	if len(cases) < 60 {
		t.Fatalf("the corpus holds %d cases, want at least 60", len(cases))
	}
	s := StartServer(t, filepath.Join(t.TempDir(), "data"))
	f := newBadFixture(t, s)

	var rejected []rejectedItem
	failed := 0
	for _, c := range cases {
		ok := t.Run(c.Name, func(t *testing.T) {
			fresh := freshBadVars()
			var body []byte
			var err error
			switch {
			case c.Body != nil:
				body = f.fill([]byte(*c.Body), fresh)
			case c.BodyB64 != "":
				raw, err := base64.StdEncoding.DecodeString(c.BodyB64)
				if err != nil {
					t.Fatalf("body_b64: %v", err)
				}
				body = f.fill(raw, fresh)
			case c.Generate != "":
				if body, err = f.generate(c.Generate, fresh); err != nil {
					t.Fatal(err)
				}
			}
			plain := body
			if c.Encode != "" {
				if body, err = compressBody(c.Encode, body); err != nil {
					t.Fatal(err)
				}
			}
			token, known := f.tokens[c.Token]
			if !known {
				t.Fatalf("unknown token kind %q", c.Token)
			}
			headers := map[string]string{}
			for k, v := range c.Headers {
				headers[k] = string(f.fill([]byte(v), fresh))
			}
			path := string(f.fill([]byte(c.Path), fresh))
			resp, rb, err := s.do(c.Method, path, token, body, headers)
			if err != nil {
				t.Fatalf("%s %s: %v", c.Method, c.Path, err)
			}
			for _, v := range f.secrets {
				if bytes.Contains(rb, []byte(v)) {
					t.Errorf("the answer holds a value of the fixture's records: %s", cut(rb))
				}
			}
			if resp.StatusCode != c.ExpectStatus {
				t.Fatalf("status %d, want %d (%s); body %s", resp.StatusCode, c.ExpectStatus, c.ExpectCode+c.ExpectItemCode, cut(rb))
			}
			if c.ExpectCode != "" {
				e := errorOf(rb)
				if e == nil || string(e.Code) != c.ExpectCode || e.Message == "" {
					t.Fatalf("body %s, want {\"error\": {\"code\": %q, \"message\": ...}}", cut(rb), c.ExpectCode)
				}
			}
			if c.ExpectItemCode == "" && c.ExpectItemStatus == "" {
				return
			}
			var pr syncproto.PushResponse
			if err := json.Unmarshal(rb, &pr); err != nil {
				t.Fatalf("push answer: %v; body %s", err, cut(rb))
			}
			items := pushedItems(plain)
			if len(pr.Results) == 0 || (items != nil && len(pr.Results) != len(items)) {
				t.Fatalf("push of %d items: %d results", len(items), len(pr.Results))
			}
			for i, r := range pr.Results {
				if c.ExpectItemStatus != "" {
					if r.Status != c.ExpectItemStatus {
						t.Fatalf("item %d: %s %+v, want %s", i, r.Status, r.Error, c.ExpectItemStatus)
					}
					continue
				}
				if r.Status != syncproto.StatusRejected || r.Error == nil || string(r.Error.Code) != c.ExpectItemCode || r.Error.Message == "" {
					t.Fatalf("item %d: %s %+v, want rejected %s", i, r.Status, r.Error, c.ExpectItemCode)
				}
				ri := rejectedItem{caseName: c.Name, device: f.dev.ID, code: c.ExpectItemCode, record: r.ID}
				if items != nil {
					ri.item = compactJSON(items[i])
				}
				rejected = append(rejected, ri)
			}
		})
		if !ok {
			failed++
		}
	}
	t.Logf("bad-input corpus: %d cases, %d failed, %d items expected in the quarantine", len(cases), failed, len(rejected))

	// The server is healthy.
	if resp, b := s.Do(t, http.MethodGet, "/healthz", "", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the corpus: /healthz %d; %s", resp.StatusCode, cut(b))
	}

	// The fixture's records are as they were.
	for _, d := range []*Device{f.dev, f.other} {
		all, _ := s.PullAll(t, d.Token)
		got := pulledByID(all)
		for id, want := range f.kept {
			if (want.Scope == badOtherScope) != (d == f.other) {
				continue
			}
			r, ok := got[id]
			if !ok {
				t.Errorf("record %s is no longer pulled by its device", id)
				continue
			}
			if r.Seq != want.Seq || !stateEqual(r.State, want.State) {
				t.Errorf("record %s changed: seq %d→%d, state %s → %s", id, want.Seq, r.Seq, showState(want.State), showState(r.State))
			}
		}
	}

	// Every rejected item is in the quarantine, as sent.
	resp, qb := s.Do(t, http.MethodGet, "/v1/admin/quarantine?limit=10000", s.AdminToken, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("quarantine: status %d; %s", resp.StatusCode, cut(qb))
	}
	var q struct {
		Items []QuarantineItem `json:"items"`
	}
	if err := json.Unmarshal(qb, &q); err != nil {
		t.Fatalf("quarantine: %v", err)
	}
	used := make([]bool, len(q.Items))
	for _, want := range rejected {
		found := false
		for i, got := range q.Items {
			if used[i] || got.Device != want.device || got.Error == nil || string(got.Error.Code) != want.code {
				continue
			}
			if want.item != nil && !bytes.Equal(compactJSON(got.Sent()), want.item) {
				continue
			}
			if want.item == nil && got.Record != want.record {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			t.Errorf("case %q: the rejected item (%s) is not in the quarantine", want.caseName, want.code)
		}
	}
}
