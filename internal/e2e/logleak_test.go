package e2e

// The server's log never holds a field value, a supervisor's note or a
// token (STYLE.md: field values are personal data of vulnerable people),
// even at --log-level debug, over a realistic session with bad requests.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// llSecrets collects what must never reach the log. Each secret carries a
// random tag of plain ASCII, so that it is found however the log escapes
// the rest (Arabic as \u escapes, quoting).
type llSecrets struct {
	items []llSecret
}

type llSecret struct {
	what  string
	value string   // as sent
	find  []string // what to look for in the log
}

// value makes a distinctive field value or note.
func (l *llSecrets) value(what string) string {
	tag := randomHex(6)
	v := "SECRET-VALUE-فاطمة-12345-" + tag
	l.items = append(l.items, llSecret{what: what, value: v, find: []string{v, tag}})
	return v
}

// number makes a distinctive numeric value.
func (l *llSecrets) number(what string) int64 {
	n := int64(7_000_000_000_000) + time.Now().UnixNano()%1_000_000_000_000
	l.items = append(l.items, llSecret{what: what, value: strconv.FormatInt(n, 10), find: []string{strconv.FormatInt(n, 10)}})
	return n
}

// token registers a bearer token: neither it nor a 16-character piece of it
// may appear.
func (l *llSecrets) token(what, tok string) {
	find := []string{tok}
	if len(tok) >= 32 {
		find = append(find, tok[len(tok)/2-8:len(tok)/2+8], tok[len(tok)-16:])
	}
	l.items = append(l.items, llSecret{what: what, value: tok, find: find})
}

func TestLogLeak(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) { testLogLeak(t, format) })
	}
}

func testLogLeak(t *testing.T, format string) {
	s := StartServerArgs(t, filepath.Join(t.TempDir(), "data"), "--log-level", "debug", "--log-format", format)
	var sec llSecrets
	sec.token("the admin's token", s.AdminToken)
	const scope, frm = "ll-scope", "ll-form"

	a := s.NewDevice(t, "ll tablet A", scope)
	b := s.NewDevice(t, "ll tablet B", scope)
	sec.token("device A's token", a.Token)
	sec.token("device B's token", b.Token)
	_, supToken := s.CreateUser(t, "ll supervisor", "supervisor", scope)
	_, hqToken := s.CreateUser(t, "ll hq", "hq")
	sec.token("the supervisor's token", supToken)
	sec.token("hq's token", hqToken)

	// Records, plain, gzip and zstd.
	id := a.Create(t, frm, map[string]any{
		"head_name":      sec.value("a name"),
		"household_size": sec.number("a number"),
		"notes":          map[string]any{"health": sec.value("a nested value"), "list": []any{sec.value("a value in a list")}},
	})
	a.PushChanges(t)
	for _, enc := range []string{"gzip", "zstd"} {
		a.Create(t, frm, map[string]any{"head_name": sec.value("a value pushed with " + enc), "pad": strings.Repeat("p", 2000)})
		body, _ := a.PushBody()
		plain := mustJSON(t, body)
		var zb bytes.Buffer
		if enc == "gzip" {
			zw := gzip.NewWriter(&zb)
			zw.Write(plain)
			zw.Close()
		} else {
			zw, _ := zstd.NewWriter(&zb)
			zw.Write(plain)
			zw.Close()
		}
		resp, rb := s.Do(t, http.MethodPost, "/v1/sync/push", a.Token, zb.Bytes(), map[string]string{"Content-Encoding": enc})
		var pr syncproto.PushResponse
		if resp.StatusCode != http.StatusOK || json.Unmarshal(rb, &pr) != nil || a.Ack(body, pr) != nil {
			t.Fatalf("%s push: %d %s", enc, resp.StatusCode, cut(rb))
		}
	}

	// A conflict, pulled with compression, then resolved and reviewed.
	b.PullMerge(t)
	s.Do(t, http.MethodGet, "/v1/sync/pull?limit=10", b.Token, nil, map[string]string{"Accept-Encoding": "zstd, gzip"})
	a.Edit(t, id, map[string]any{"head_name": sec.value("device A's side of a conflict")})
	b.Edit(t, id, map[string]any{"head_name": sec.value("device B's side of a conflict")})
	a.PushChanges(t)
	b.PushChanges(t)
	resp, rb := s.Do(t, http.MethodGet, "/v1/conflicts", supToken, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(rb, []byte(id)) {
		t.Fatalf("conflicts: %d %s", resp.StatusCode, cut(rb))
	}
	_, view := s.GetRecord(t, supToken, id)
	resolution := map[string]any{"clock": view.Record.Clock, "values": map[string]any{"head_name": sec.value("the resolved value")},
		"note": sec.value("a resolution note")}
	if resp, rb := s.Do(t, http.MethodPost, "/v1/conflicts/"+id+"/resolve", supToken, mustJSON(t, resolution), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve: %d %s", resp.StatusCode, cut(rb))
	}
	review := map[string]any{"state": "has_issues", "note": sec.value("a review comment")}
	if resp, rb := s.Do(t, http.MethodPost, "/v1/records/"+id+"/review", supToken, mustJSON(t, review), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("review: %d %s", resp.StatusCode, cut(rb))
	}
	a.PullMerge(t)
	s.History(t, supToken, id)
	s.Do(t, http.MethodGet, "/v1/records?scope="+scope, supToken, nil, nil)
	s.Do(t, http.MethodGet, "/v1/admin/devices", supToken, nil, nil)
	// A delete.
	a.Edit(t, id, map[string]any{"_deleted": true, "notes": sec.value("a value written with the delete")})
	a.PushChanges(t)

	// Exports.
	for _, f := range []string{"jsonl", "csv"} {
		resp, rb := s.Do(t, http.MethodGet, "/v1/export?format="+f+"&deleted=true", hqToken, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(rb, []byte("SECRET-VALUE")) {
			t.Fatalf("export %s: %d %s", f, resp.StatusCode, cut(rb))
		}
	}

	// Bad requests carrying secrets.
	now := time.Now().UnixMilli()
	bad := func(fields map[string]any) syncproto.State {
		f := map[string]json.RawMessage{}
		for k, v := range fields {
			f[k] = raw(v)
		}
		return syncproto.State{ID: newID(), Form: frm, Scope: scope, Clock: syncproto.Clock{a.ID: 1},
			Writes: []syncproto.Write{{By: a.ID, N: 1, At: now, Fields: f}}}
	}
	pushItems := func(token, device string, items ...syncproto.State) {
		s.Do(t, http.MethodPost, "/v1/sync/push", token, mustJSON(t, map[string]any{"device": device, "batch": newID(), "records": items}), nil)
	}
	pushItems(a.Token, a.ID,
		bad(map[string]any{"Bad Name!": sec.value("a value under a bad name")}),
		bad(map[string]any{"big": sec.value("an oversized value") + strings.Repeat("x", 70<<10)}),
		bad(map[string]any{"_secret": sec.value("a value under a reserved name")}),
		bad(map[string]any{"_review": map[string]any{"state": "approved", "note": sec.value("a device's forged review")}}),
	)
	forged := bad(map[string]any{"head_name": sec.value("a value with a forged clock")})
	forged.Clock[b.ID] = 3
	pushItems(a.Token, a.ID, forged)
	foreign := bad(map[string]any{"head_name": sec.value("a value in a foreign scope")})
	foreign.Scope = "ll-elsewhere"
	pushItems(a.Token, a.ID, foreign)
	pushItems(b.Token, a.ID, bad(map[string]any{"head_name": sec.value("a value pushed for another device")}))
	pushItems(supToken, a.ID, bad(map[string]any{"head_name": sec.value("a value pushed by a supervisor")}))
	badBodies := [][]byte{
		[]byte(`{"device":"` + a.ID + `","batch":"` + newID() + `","records":[{"id":"` + sec.value("a truncated body")),
		[]byte(`{"device":"` + a.ID + `","batch":"` + newID() + `","records":[],"x":"` + sec.value("invalid UTF-8") + "\xff\"}"),
		[]byte(`{"device":"` + sec.value("a bad device id") + `","batch":"` + newID() + `","records":[]}`),
	}
	for _, body := range badBodies {
		s.Do(t, http.MethodPost, "/v1/sync/push", a.Token, body, nil)
	}
	s.Do(t, http.MethodPost, "/v1/sync/push", a.Token, []byte(`{"x":"`+sec.value("a body in an unknown encoding")+`"}`), map[string]string{"Content-Encoding": "br"})
	s.Do(t, http.MethodPost, "/v1/sync/push", a.Token, []byte(`{"x":"`+sec.value("a body that is not gzip")+`"}`), map[string]string{"Content-Encoding": "gzip"})
	s.Do(t, http.MethodPost, "/v1/records/"+id+"/review", supToken, mustJSON(t, map[string]any{"state": "done", "note": sec.value("a note with a bad state")}), nil)
	s.Do(t, http.MethodPost, "/v1/records/"+id+"/review", hqToken, mustJSON(t, map[string]any{"state": "approved", "note": sec.value("a note by hq")}), nil)
	s.Do(t, http.MethodPost, "/v1/conflicts/"+id+"/resolve", supToken, mustJSON(t, map[string]any{"clock": map[string]int{a.ID: 1},
		"values": map[string]any{"head_name": sec.value("a stale resolution's value")}, "note": sec.value("a stale resolution's note")}), nil)
	s.Do(t, http.MethodGet, "/v1/sync/pull?since="+sec.value("a cursor"), a.Token, nil, nil)
	s.Do(t, http.MethodGet, "/v1/records/"+sec.value("a record id in the path"), supToken, nil, nil)
	s.Do(t, http.MethodGet, "/v1/"+sec.value("an unknown route"), a.Token, nil, nil)
	s.Do(t, http.MethodGet, "/v1/sync/pull", "", nil, map[string]string{"Authorization": "Basic " + sec.value("basic credentials")})
	bogus := "fst_" + randomHex(24)
	sec.token("a token the server never issued", bogus)
	s.Do(t, http.MethodGet, "/v1/sync/pull", bogus, nil, nil)
	s.Do(t, http.MethodGet, "/v1/sync/pull", a.Token, nil, map[string]string{"X-App-Version": "1.0", "Cookie": "session=" + sec.value("a cookie")})
	s.Do(t, http.MethodPost, "/v1/admin/devices", s.AdminToken, []byte(`{"label":"`+sec.value("a broken enrolment")), nil)
	// The quarantine, and an item applied from it.
	for _, q := range s.Quarantine(t) {
		s.Do(t, http.MethodPost, "/v1/admin/quarantine/"+q.ID+"/apply", s.AdminToken, nil, nil)
	}
	// A revoked token.
	if resp, _ := s.Do(t, http.MethodDelete, "/v1/admin/tokens/"+b.ID, s.AdminToken, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	s.Do(t, http.MethodGet, "/v1/sync/pull", b.Token, nil, nil)
	s.Do(t, http.MethodGet, "/metrics", s.AdminToken, nil, nil)
	s.Stop(t)

	log := s.Log()
	lines := strings.Split(log, "\n")
	if !strings.Contains(log, "/v1/sync/push") || len(lines) < 50 {
		t.Fatalf("the log has %d lines and no request lines; is it captured?\n%s", len(lines), tail(log, 2000))
	}
	found := 0
	for _, sc := range sec.items {
		for _, needle := range sc.find {
			for i, line := range lines {
				if strings.Contains(line, needle) {
					found++
					t.Errorf("the log holds %s (%q) at line %d: %s", sc.what, needle, i+1, cutLine(line))
					break
				}
			}
		}
	}
	t.Logf("%s log at debug level: %d lines, %d bytes; %d secrets (values, notes, tokens) sent, %d found in the log",
		format, len(lines), len(log), len(sec.items), found)

}

func cutLine(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
