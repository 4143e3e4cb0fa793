package devicecli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/devicecli"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	"github.com/fieldsync/fieldsync/server"
)

const scope = "guelmim-oued-noun"

// testServer is a real server over loopback with a real store.
type testServer struct {
	url      string
	accounts *auth.Service
	ts       *httptest.Server
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accounts := auth.NewService(st, nil)
	ts := httptest.NewServer(server.New(server.Options{Records: records.NewService(st, records.Options{}), Auth: accounts}).Handler())
	t.Cleanup(func() {
		ts.Close()
		st.Close()
	})
	return &testServer{url: ts.URL, accounts: accounts, ts: ts}
}

// account creates an account as the admin would and returns its id and token.
func (s *testServer) account(t *testing.T, role auth.Role, name string, scopes ...string) (string, string) {
	t.Helper()
	a, tok, err := s.accounts.Create(context.Background(), role, name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID, tok
}

// tablet is one device's CLI in its own directory.
type tablet struct {
	t     *testing.T
	dir   string
	token string
	// out collects everything the CLI printed, to check the token never shows.
	out *bytes.Buffer
}

// run runs `fieldsync device ARGS --dir DIR` and returns stdout, stderr, err.
func (tb *tablet) run(args ...string) (string, string, error) {
	tb.t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--dir", tb.dir)
	err := devicecli.Run(context.Background(), args, &stdout, &stderr)
	tb.out.Write(stdout.Bytes())
	tb.out.Write(stderr.Bytes())
	if err != nil {
		tb.out.WriteString(err.Error())
	}
	return stdout.String(), stderr.String(), err
}

// ok runs a command that must succeed and returns its stdout.
func (tb *tablet) ok(args ...string) string {
	tb.t.Helper()
	out, errOut, err := tb.run(args...)
	if err != nil {
		tb.t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", args, err, out, errOut)
	}
	return out
}

// fail runs a command that must fail and returns its error message.
func (tb *tablet) fail(args ...string) string {
	tb.t.Helper()
	out, _, err := tb.run(args...)
	if err == nil {
		tb.t.Fatalf("%v succeeded, want an error; stdout: %s", args, out)
	}
	return err.Error()
}

func (tb *tablet) showJSON(id string) record {
	tb.t.Helper()
	var r record
	if err := json.Unmarshal([]byte(tb.ok("show", id, "--json")), &r); err != nil {
		tb.t.Fatalf("show --json: %v", err)
	}
	return r
}

func (tb *tablet) listJSON(args ...string) []record {
	tb.t.Helper()
	var out []record
	if err := json.Unmarshal([]byte(tb.ok(append([]string{"list", "--json"}, args...)...)), &out); err != nil {
		tb.t.Fatalf("list --json: %v", err)
	}
	return out
}

// enrolled makes a device account and enrolls a tablet for it.
func enrolled(t *testing.T, s *testServer, label string) *tablet {
	t.Helper()
	id, tok := s.account(t, auth.RoleDevice, label, scope)
	tb := &tablet{t: t, dir: filepath.Join(t.TempDir(), "tablet"), token: tok, out: &bytes.Buffer{}}
	out := tb.ok("enroll", "--server", s.url+"/", "--device", id, "--token", tok, "--app-version", "test-1")
	for _, want := range []string{id, label, scope} {
		if !strings.Contains(out, want) {
			t.Errorf("enroll printed %q, want it to name %q", out, want)
		}
	}
	t.Cleanup(func() {
		if strings.Contains(tb.out.String(), tok) {
			t.Errorf("the CLI printed the token")
		}
	})
	return tb
}

type sibling struct {
	V  json.RawMessage `json:"v"`
	By string          `json:"by"`
	N  uint64          `json:"n"`
	At int64           `json:"at"`
}

type record struct {
	ID        string                     `json:"id"`
	Form      string                     `json:"form"`
	Scope     string                     `json:"scope"`
	Values    map[string]json.RawMessage `json:"values"`
	Conflicts json.RawMessage            `json:"conflicts"`
	Deleted   bool                       `json:"deleted"`
	Dirty     []string                   `json:"dirty"`
	Review    *struct{ State string }    `json:"review"`
	Flags     []string                   `json:"flags"`
}

func (r record) conflicts(t *testing.T) map[string][]sibling {
	t.Helper()
	out := map[string][]sibling{}
	if len(r.Conflicts) == 0 {
		return out
	}
	// list --json gives field names, show --json the siblings.
	if r.Conflicts[0] == '[' {
		var names []string
		if err := json.Unmarshal(r.Conflicts, &names); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			out[n] = nil
		}
		return out
	}
	if err := json.Unmarshal(r.Conflicts, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func value(t *testing.T, r record, field string) any {
	t.Helper()
	raw, ok := r.Values[field]
	if !ok {
		t.Fatalf("record %s has no field %s: %v", r.ID, field, r.Values)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTwoTablets drives the CLI as two investigators would: enroll, capture
// offline with Arabic values and numbers, edit, sync; the second tablet
// pulls the record; concurrent edits give a conflict both tablets list; a
// later edit that has seen both values resolves it; a delete syncs.
func TestTwoTablets(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := enrolled(t, srv, "tablet of Aicha")
	b := enrolled(t, srv, "tablet of Youssef")

	// Offline capture on A. --scope defaults to the device's only scope;
	// flags may come after the fields.
	id := strings.TrimSpace(a.ok("new", "head_name=فاطمة الزهراء", "household_size=5", "monthly_income_mad=1200.5",
		"has_water:=true", `members:=[{"age":34},{"age":7}]`, "phone=0612345678", `code="42"`, "--form", "assessment"))
	if rec := a.showJSON(id); rec.Form != "assessment" || rec.Scope != scope || len(rec.Dirty) != 7 {
		t.Fatalf("new record = %+v", rec)
	}
	a.ok("set", id[:13], "household_size=6", "notes=first visit: يحتاج متابعة")
	rec := a.showJSON(id)
	for field, want := range map[string]any{
		"head_name": "فاطمة الزهراء", "household_size": 6.0, "monthly_income_mad": 1200.5, "has_water": true,
		"phone": "0612345678", "code": "42", "notes": "first visit: يحتاج متابعة",
	} {
		if got := value(t, rec, field); got != want {
			t.Errorf("%s = %#v, want %#v", field, got, want)
		}
	}
	var members bytes.Buffer
	if err := json.Compact(&members, rec.Values["members"]); err != nil || members.String() != `[{"age":34},{"age":7}]` {
		t.Errorf("members = %s", rec.Values["members"])
	}
	if st := a.ok("status"); !strings.Contains(st, "dirty      1 record") || !strings.Contains(st, "records    1 (0 deleted)") {
		t.Errorf("status before sync:\n%s", st)
	}

	out := a.ok("sync")
	if !strings.Contains(out, "pushed     1 record in 1 batch: 1 applied") || !strings.Contains(out, "dirty      0 records") || !strings.HasSuffix(out, "ok\n") {
		t.Errorf("sync on A:\n%s", out)
	}
	if rec := a.showJSON(id); len(rec.Dirty) != 0 {
		t.Errorf("dirty after sync: %v", rec.Dirty)
	}

	// B pulls it.
	var rep struct {
		OK     bool `json:"ok"`
		Pulled int  `json:"pulled"`
	}
	if err := json.Unmarshal([]byte(b.ok("sync", "--json")), &rep); err != nil || !rep.OK || rep.Pulled != 1 {
		t.Fatalf("sync --json on B: %+v %v", rep, err)
	}
	list := b.ok("list")
	if !strings.Contains(list, id) || !strings.Contains(list, "assessment") || !strings.Contains(list, `head_name="فاطمة الزهراء"`) {
		t.Errorf("list on B:\n%s", list)
	}
	if got := value(t, b.showJSON(id), "head_name"); got != "فاطمة الزهراء" {
		t.Errorf("B sees head_name = %v", got)
	}

	// Concurrent edits of one field, then sync both (A again to pull B's).
	a.ok("set", id, "monthly_income_mad=1500")
	b.ok("set", id, "monthly_income_mad=1800", "household_size=7")
	a.ok("sync")
	if out := b.ok("sync"); !strings.Contains(out, "conflict   "+id+"  monthly_income_mad") {
		t.Errorf("sync on B does not report the conflict:\n%s", out)
	}
	a.ok("sync")
	for name, tb := range map[string]*tablet{"A": a, "B": b} {
		if out := tb.ok("list", "--conflicts"); !strings.Contains(out, id) || !strings.Contains(out, "conflict") {
			t.Errorf("list --conflicts on %s:\n%s", name, out)
		}
		got := tb.listJSON("--conflicts")
		if len(got) != 1 || got[0].ID != id {
			t.Fatalf("list --conflicts --json on %s = %+v", name, got)
		}
		rec := tb.showJSON(id)
		sibs := rec.conflicts(t)["monthly_income_mad"]
		if len(sibs) != 2 || len(rec.conflicts(t)) != 1 {
			t.Fatalf("show --json on %s: conflicts %s", name, rec.Conflicts)
		}
		vals := map[string]bool{string(sibs[0].V): true, string(sibs[1].V): true}
		if !vals["1500"] || !vals["1800"] || sibs[0].By == sibs[1].By || sibs[0].At == 0 {
			t.Errorf("siblings on %s = %+v", name, sibs)
		}
		if !strings.Contains(tb.ok("show", id), "(this device)") {
			t.Errorf("show on %s does not mark the device's own sibling", name)
		}
		if got := value(t, rec, "household_size"); got != 7.0 {
			t.Errorf("household_size on %s = %v (a concurrent edit of another field merges)", name, got)
		}
	}

	// A has seen both values: its edit resolves the conflict everywhere.
	a.ok("set", id, "monthly_income_mad=1650")
	a.ok("sync")
	b.ok("sync")
	for name, tb := range map[string]*tablet{"A": a, "B": b} {
		if got := tb.listJSON("--conflicts"); len(got) != 0 {
			t.Errorf("%s still lists conflicts: %+v", name, got)
		}
		if got := value(t, tb.showJSON(id), "monthly_income_mad"); got != 1650.0 {
			t.Errorf("%s: monthly_income_mad = %v", name, got)
		}
	}

	// Delete on B; A sees the tombstone; an edit on A undeletes.
	if out := b.ok("delete", id); out != "deleted "+id+"\n" {
		t.Errorf("delete printed %q", out)
	}
	b.ok("sync")
	a.ok("sync")
	rec = a.showJSON(id)
	if !rec.Deleted {
		t.Fatalf("A does not see the delete: %+v", rec)
	}
	if l := a.listJSON(); len(l) != 1 || !strings.Contains(strings.Join(l[0].Flags, ","), "deleted") {
		t.Errorf("list on A after the delete: %+v", l)
	}
	if out := a.ok("set", id, "notes=revisited"); !strings.Contains(out, "(undeleted)") {
		t.Errorf("set of a deleted record printed %q", out)
	}
	a.ok("sync")
	b.ok("sync")
	if rec := b.showJSON(id); rec.Deleted || value(t, rec, "notes") != "revisited" {
		t.Errorf("B after the undelete: %+v", rec)
	}
	if st := b.ok("status", "--json"); !strings.Contains(st, `"records": 1`) || !strings.Contains(st, `"dirty_records": 0`) {
		t.Errorf("status --json on B: %s", st)
	}
}

// TestEnrollRefusals: a bad token, another account's token, a mismatched
// device id and an unreachable server fail with clear errors and save
// nothing; the config is mode 0600 and never shows the token.
func TestEnrollRefusals(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	devID, devTok := srv.account(t, auth.RoleDevice, "tablet", scope)
	otherID, _ := srv.account(t, auth.RoleDevice, "other tablet", scope)
	_, supTok := srv.account(t, auth.RoleSupervisor, "Khadija", scope)
	tb := &tablet{t: t, dir: filepath.Join(t.TempDir(), "tablet"), out: &bytes.Buffer{}}

	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad token", []string{"--device", devID, "--token", "not-a-real-token"}, []string{"refused the token", "401", "unauthorized"}},
		{"supervisor token", []string{"--token", supTok}, []string{"supervisor account", "not to a device"}},
		{"other device", []string{"--device", otherID, "--token", devTok}, []string{"the token is device " + devID}},
		{"bad device id", []string{"--device", "tablet-7", "--token", devTok}, []string{"not a device id"}},
		{"no token", []string{"--device", devID}, []string{"--token is required"}},
	} {
		msg := tb.fail(append([]string{"enroll", "--server", srv.url}, c.args...)...)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not say %q", c.name, msg, w)
			}
		}
		if strings.Contains(msg, "not-a-real-token") || strings.Contains(msg, devTok) || strings.Contains(msg, supTok) {
			t.Errorf("%s: the error shows the token: %s", c.name, msg)
		}
		if _, err := os.Stat(filepath.Join(tb.dir, "device.json")); !os.IsNotExist(err) {
			t.Fatalf("%s: a config was saved (%v)", c.name, err)
		}
	}
	if msg := tb.fail("enroll", "--server", "ftp://x", "--token", devTok); !strings.Contains(msg, "not an http(s) URL") {
		t.Errorf("bad URL: %s", msg)
	}
	if msg := tb.fail("new", "--form", "f", "a=1"); !strings.Contains(msg, "not enrolled") || !strings.Contains(msg, "enroll") {
		t.Errorf("new before enroll: %s", msg)
	}

	// A good enrollment, then the server goes away: the error is clear.
	out := tb.ok("enroll", "--server", srv.url, "--token", devTok) // --device from whoami
	if !strings.Contains(out, devID) || strings.Contains(out, devTok) {
		t.Errorf("enroll printed %q", out)
	}
	fi, err := os.Stat(filepath.Join(tb.dir, "device.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config: %v %v", fi, err)
	}
	if msg := tb.fail("enroll", "--server", srv.url, "--device", otherID, "--token", devTok); !strings.Contains(msg, "enrolled as device "+devID) {
		t.Errorf("re-enroll as another device: %s", msg)
	}
	tb.ok("new", "--form", "assessment", "household_size=3")
	srv.ts.Close()
	msg := tb.fail("sync", "--retries", "0")
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, "unsent changes stay on this device") {
		t.Errorf("sync with the server down: %s", msg)
	}
	if st := tb.ok("status"); !strings.Contains(st, "dirty      1 record") {
		t.Errorf("status after the failed sync:\n%s", st)
	}
	if strings.Contains(tb.out.String(), devTok) || strings.Contains(tb.out.String(), supTok) {
		t.Error("the CLI printed a token")
	}
}

// TestRevokedToken: a sync with a revoked token fails with a clear error.
func TestRevokedToken(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := enrolled(t, srv, "tablet")
	a.ok("new", "--form", "assessment", "x=1")
	var cfg struct{ Device string }
	b, _ := os.ReadFile(filepath.Join(a.dir, "device.json"))
	_ = json.Unmarshal(b, &cfg)
	if err := srv.accounts.Revoke(context.Background(), cfg.Device); err != nil {
		t.Fatal(err)
	}
	out, _, err := a.run("sync", "--json")
	if err == nil || !strings.Contains(err.Error(), "refused the device's token") || !strings.Contains(err.Error(), "enroll again") {
		t.Fatalf("sync with a revoked token: %v", err)
	}
	var rep struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(out), &rep) != nil || rep.OK || rep.Error == "" {
		t.Errorf("sync --json on failure: %s", out)
	}
}

// TestBadInput: bad field names, bad JSON and bad arguments fail with a
// clear error, and nothing is saved.
func TestBadInput(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	a := enrolled(t, srv, "tablet")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"new", "--form", "assessment", "household_size=5", "Age!=34"}, `field "Age!": bad name`},
		{[]string{"new", "--form", "assessment", "_deleted=true"}, "reserved"},
		{[]string{"new", "--form", "assessment", "9lives=1"}, "bad name"},
		{[]string{"new", "--form", "assessment", "members:=[1,2"}, "not valid JSON"},
		{[]string{"new", "--form", "assessment", "household_size"}, "want FIELD=VALUE"},
		{[]string{"new", "--form", "assessment", "a=1", "a=2"}, "given twice"},
		{[]string{"new", "--form", "assessment"}, "no fields given"},
		{[]string{"new", "a=1"}, "--form is required"},
		{[]string{"new", "--form", "Assessment", "a=1"}, "--form"},
		{[]string{"new", "--form", "assessment", "--scope", "souss-massa", "a=1"}, "not one of the device's scopes"},
		{[]string{"new", "--form", "assessment", "--bogus", "a=1"}, "flag provided but not defined"},
		{[]string{"new", "--form", "assessment", "big=" + strings.Repeat("x", 70_000)}, "too_large"},
		{[]string{"set", "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00", "a=1"}, "no record"},
		{[]string{"show", "zz"}, "not a record id"},
		{[]string{"delete"}, "usage: delete ID"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		msg := a.fail(c.args...)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%v: error %q does not say %q", c.args, msg, c.want)
		}
	}
	if got := a.listJSON(); len(got) != 0 {
		t.Fatalf("bad input saved records: %+v", got)
	}
	id := strings.TrimSpace(a.ok("new", "--form", "assessment", "household_size=5"))
	if msg := a.fail("set", id, "household_size=6", "Bad-Name=1"); !strings.Contains(msg, "Bad-Name") {
		t.Errorf("set with a bad name: %s", msg)
	}
	if got := value(t, a.showJSON(id), "household_size"); got != 5.0 {
		t.Errorf("a refused set changed the record: household_size = %v", got)
	}
	if msg := a.fail("set", id, "x:=nope"); !strings.Contains(msg, "not valid JSON") {
		t.Errorf("set with bad JSON: %s", msg)
	}
}

// TestHelp: help and per-command help print usage and succeed; no
// command is an error.
func TestHelp(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if err := devicecli.Run(context.Background(), []string{"help"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"enroll", "new", "set", "delete", "show", "list", "sync", "status"} {
		if !strings.Contains(out.String(), "  "+c+" ") {
			t.Errorf("help does not list %s", c)
		}
		var o bytes.Buffer
		if err := devicecli.Run(context.Background(), []string{"help", c}, &o, &o); err != nil || !strings.Contains(o.String(), "-dir") {
			t.Errorf("help %s: %v\n%s", c, err, o.String())
		}
		o.Reset()
		if err := devicecli.Run(context.Background(), []string{c, "--help"}, &o, &o); err != nil || !strings.Contains(o.String(), "usage: fieldsync device "+c) {
			t.Errorf("%s --help: %v\n%s", c, err, o.String())
		}
	}
	out.Reset()
	errOut.Reset()
	if err := devicecli.Run(context.Background(), nil, &out, &errOut); err == nil || !strings.Contains(errOut.String(), "usage:") {
		t.Errorf("no command: %v, stderr %q", err, errOut.String())
	}
}
