package e2e

// The access matrix: every role of PROTOCOL.md §6 against every /v1
// endpoint of server/server.go (and /metrics), for a target in the
// caller's scope and in another scope. Expected statuses follow §6 and
// docs/protocol-notes.md: devices push and pull in their scopes and never
// read records, conflicts or exports; supervisors read, pull, list,
// resolve and review in their scopes; HQ reads, pulls and exports
// everywhere and never writes; admins do everything. A 200 whose body
// holds an id or a value of a scope the caller lacks is a leak.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

const (
	accS1 = "acc-one"
	accS2 = "acc-two"
)

// accForm is the form of the fixture's records in each scope, so a pull
// can be narrowed to one scope's records.
var accForm = map[string]string{accS1: "acc-form-one", accS2: "acc-form-two"}

func accOtherScope(s string) string {
	if s == accS1 {
		return accS2
	}
	return accS1
}

// accRole is one caller of the matrix.
type accRole struct {
	name   string
	token  string
	home   string          // the scope its "in scope" target is in
	sees   map[string]bool // the scopes whose data it may be shown
	device *Device         // for device roles
}

// accWant is the expected status for a target in the caller's scope and
// in another one; other is 0 for endpoints without a target.
type accWant struct{ in, other int }

// accFixture holds the matrix's accounts and records.
type accFixture struct {
	s       *Server
	roles   map[string]*accRole
	devs    map[string][2]*Device // two devices a scope, to make conflicts
	rec     map[string]string     // a plain record a scope
	conf    map[string]string     // a conflicted record a scope, never resolved
	victim  map[string]*Device    // a device a scope whose revocation is refused
	quar    map[string]string     // a quarantine entry a scope
	secrets map[string][]string   // ids and values of each scope
	adminID string
	supIDs  map[string]string
}

func (f *accFixture) secret(scope, what string) string {
	v := "SECRET-" + strings.ToUpper(scope) + "-" + what + "-" + randomHex(5)
	f.secrets[scope] = append(f.secrets[scope], v)
	return v
}

func (f *accFixture) addSecret(scope, v string) { f.secrets[scope] = append(f.secrets[scope], v) }

// conflict makes a record of scope holding a hard conflict on "income".
func (f *accFixture) conflict(t *testing.T, scope string) string {
	t.Helper()
	a, b := f.devs[scope][0], f.devs[scope][1]
	id := a.Create(t, accForm[scope], map[string]any{"income": 1000, "notes": f.secret(scope, "conflict-notes")})
	f.addSecret(scope, id)
	a.PushChanges(t)
	b.PullMerge(t)
	a.Edit(t, id, map[string]any{"income": f.secret(scope, "income-a")})
	b.Edit(t, id, map[string]any{"income": f.secret(scope, "income-b")})
	a.PushChanges(t)
	if r := resultFor(t, b.PushChanges(t), id); r.Status != syncproto.StatusConflict {
		t.Fatalf("fixture: conflict in %s: %s", scope, r.Status)
	}
	return id
}

func (f *accFixture) clockOf(t *testing.T, id string) syncproto.Clock {
	t.Helper()
	st, v := f.s.GetRecord(t, f.s.AdminToken, id)
	if st != http.StatusOK {
		t.Fatalf("get %s as admin: %d", id, st)
	}
	return v.Record.Clock
}

func newAccFixture(t *testing.T, s *Server) *accFixture {
	t.Helper()
	f := &accFixture{s: s, roles: map[string]*accRole{}, devs: map[string][2]*Device{}, rec: map[string]string{},
		conf: map[string]string{}, victim: map[string]*Device{}, quar: map[string]string{}, secrets: map[string][]string{},
		supIDs: map[string]string{}}
	for _, sc := range []string{accS1, accS2} {
		a := s.NewDevice(t, "acc tablet "+sc, sc)
		b := s.NewDevice(t, "acc tablet 2 "+sc, sc)
		f.devs[sc] = [2]*Device{a, b}
		f.addSecret(sc, a.ID)
		f.addSecret(sc, b.ID)
		f.rec[sc] = a.Create(t, accForm[sc], map[string]any{"head_name": f.secret(sc, "head-name") + "-فاطمة", "household_size": 4})
		f.addSecret(sc, f.rec[sc])
		a.PushChanges(t)
		f.conf[sc] = f.conflict(t, sc)
		v := s.NewDevice(t, "acc victim "+sc, sc)
		f.victim[sc] = v
		f.addSecret(sc, v.ID)
		supID, supToken := s.CreateUser(t, "acc supervisor "+sc, "supervisor", sc)
		f.supIDs[sc] = supID
		f.addSecret(sc, supID)
		name := map[string]string{accS1: "sup_in", accS2: "sup_other"}[sc]
		f.roles[name] = &accRole{name: name, token: supToken, home: sc, sees: map[string]bool{sc: true}}
		dname := map[string]string{accS1: "device_in", accS2: "device_other"}[sc]
		f.roles[dname] = &accRole{name: dname, token: a.Token, home: sc, sees: map[string]bool{sc: true}, device: a}

		// A quarantined item of this scope.
		bad := syncproto.State{ID: newID(), Form: accForm[sc], Scope: sc, Clock: syncproto.Clock{b.ID: 1},
			Writes: []syncproto.Write{{By: b.ID, N: 1, At: time.Now().UnixMilli(), Fields: map[string]json.RawMessage{"Bad Name!": raw(f.secret(sc, "quarantined"))}}}}
		f.addSecret(sc, bad.ID)
		st, pr, e := s.Push(t, b.Token, map[string]any{"device": b.ID, "batch": newID(), "records": []syncproto.State{bad}})
		if st != http.StatusOK || len(pr.Results) != 1 || pr.Results[0].Status != syncproto.StatusRejected {
			t.Fatalf("fixture: quarantined item: %d %+v %+v", st, pr, e)
		}
		for _, q := range s.Quarantine(t) {
			if q.Record == bad.ID {
				f.quar[sc] = q.ID
			}
		}
		if f.quar[sc] == "" {
			t.Fatalf("fixture: the rejected item of %s is not in the quarantine", sc)
		}
	}
	_, hqToken := s.CreateUser(t, "acc hq", "hq")
	revoked := s.NewDevice(t, "acc revoked", accS1)
	if resp, b := s.Do(t, http.MethodDelete, "/v1/admin/tokens/"+revoked.ID, s.AdminToken, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("fixture: revoke: %d %s", resp.StatusCode, cut(b))
	}
	all := map[string]bool{accS1: true, accS2: true}
	f.roles["hq"] = &accRole{name: "hq", token: hqToken, home: accS1, sees: all}
	f.roles["admin"] = &accRole{name: "admin", token: s.AdminToken, home: accS1, sees: all}
	f.roles["revoked"] = &accRole{name: "revoked", token: revoked.Token, home: accS1, sees: map[string]bool{}, device: revoked}
	f.roles["none"] = &accRole{name: "none", token: "", home: accS1, sees: map[string]bool{}}

	resp, b := s.Do(t, http.MethodGet, "/v1/admin/accounts", s.AdminToken, nil, nil)
	var accts struct {
		Accounts []struct{ ID, Role string } `json:"accounts"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &accts) != nil {
		t.Fatalf("fixture: accounts: %d %s", resp.StatusCode, cut(b))
	}
	for _, a := range accts.Accounts {
		if a.Role == "admin" {
			f.adminID = a.ID
		}
	}
	return f
}

var accRoleOrder = []string{"device_in", "device_other", "sup_in", "sup_other", "hq", "admin", "revoked", "none"}

// accRequest is one cell's request; after, if set, checks a 2xx answer
// further and updates the fixture.
type accRequest struct {
	method, path string
	body         []byte
	after        func(t *testing.T, status int, body []byte)
}

// accEndpoint is one row of the matrix.
type accEndpoint struct {
	name     string
	targeted bool // false: one cell a role (no in/other target)
	want     map[string]accWant
	request  func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest
}

// accTable is a row's expectations, role by role; revoked and missing
// tokens are always 401.
func accTable(deviceIn, deviceOther, supIn, supOther, hq, admin accWant) map[string]accWant {
	return map[string]accWant{"device_in": deviceIn, "device_other": deviceOther, "sup_in": supIn, "sup_other": supOther,
		"hq": hq, "admin": admin, "revoked": {401, 401}, "none": {401, 401}}
}

func accEndpoints() []accEndpoint {
	var (
		both200  = accWant{200, 200}
		both403  = accWant{403, 403}
		inOnly   = accWant{200, 403}
		one200   = accWant{200, 0}
		one403   = accWant{403, 0}
		both201  = accWant{201, 201}
		both204  = accWant{204, 204}
		get      = func(path string) accRequest { return accRequest{method: http.MethodGet, path: path} }
		readRec  = accTable(both403, both403, inOnly, inOnly, both200, both200)
		adminOne = accTable(one403, one403, one403, one403, one403, one200)
	)
	for _, r := range []string{"revoked", "none"} {
		adminOne[r] = accWant{401, 0}
	}
	single := func(m map[string]accWant) map[string]accWant {
		for k, v := range m {
			if v.other == 401 {
				m[k] = accWant{401, 0}
			}
		}
		return m
	}
	return []accEndpoint{
		{name: "POST /v1/sync/push", targeted: true,
			// A device's item in another scope is rejected inside a 200
			// (checked in the request's after).
			want: accTable(both200, both200, both403, both403, both403, both403),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				d := r.device
				if d == nil {
					d = f.roles["device_in"].device
				}
				if r.name == "device_in" || r.name == "device_other" {
					if scope == r.home {
						d.Edit(t, f.rec[scope], map[string]any{"acc_push": f.secret(scope, "pushed")})
						body, _ := d.PushBody()
						return accRequest{method: http.MethodPost, path: "/v1/sync/push", body: mustJSON(t, body),
							after: func(t *testing.T, status int, rb []byte) {
								var pr syncproto.PushResponse
								if err := json.Unmarshal(rb, &pr); err != nil {
									t.Errorf("push answer: %v", err)
									return
								}
								if err := d.Ack(body, pr); err != nil {
									t.Errorf("push in scope: %v", err)
								}
							}}
					}
				}
				item := syncproto.State{ID: f.rec[scope], Form: accForm[scope], Scope: scope, Clock: syncproto.Clock{d.ID: 1},
					Writes: []syncproto.Write{{By: d.ID, N: 1, At: time.Now().UnixMilli(), Fields: map[string]json.RawMessage{"acc_push": raw("foreign write")}}}}
				body := mustJSON(t, map[string]any{"device": d.ID, "batch": newID(), "records": []syncproto.State{item}})
				return accRequest{method: http.MethodPost, path: "/v1/sync/push", body: body,
					after: func(t *testing.T, status int, rb []byte) {
						var pr syncproto.PushResponse
						if json.Unmarshal(rb, &pr) != nil || len(pr.Results) != 1 || pr.Results[0].Status != syncproto.StatusRejected ||
							pr.Results[0].Error == nil || pr.Results[0].Error.Code != syncproto.CodeForbidden || pr.Results[0].Clock != nil {
							t.Errorf("a device's item in a scope it lacks: %s, want rejected forbidden, without the record's clock", cut(rb))
						}
					}}
			}},
		{name: "GET /v1/sync/pull?form=", targeted: true,
			want: accTable(both200, both200, both200, both200, both200, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/sync/pull?limit=1000&form=" + accForm[scope])
			}},
		{name: "GET /v1/records/{id}", targeted: true, want: readRec,
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/records/" + f.rec[scope])
			}},
		{name: "GET /v1/records/{id}/history", targeted: true, want: readRec,
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/records/" + f.rec[scope] + "/history")
			}},
		{name: "POST /v1/records/{id}/review", targeted: true,
			want: accTable(both403, both403, inOnly, inOnly, both403, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				body := mustJSON(t, map[string]any{"state": "has_issues", "note": f.secret(scope, "review-note")})
				return accRequest{method: http.MethodPost, path: "/v1/records/" + f.rec[scope] + "/review", body: body}
			}},
		{name: "GET /v1/records?scope=", targeted: true,
			want: accTable(both403, both403, both200, both200, both200, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/records?scope=" + scope)
			}},
		{name: "GET /v1/conflicts?scope=", targeted: true,
			want: accTable(both403, both403, both200, both200, both200, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/conflicts?scope=" + scope)
			}},
		{name: "POST /v1/conflicts/{id}/resolve", targeted: true,
			want: accTable(both403, both403, inOnly, inOnly, both403, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				// Allowed: a fresh conflict to resolve. Refused: the shared
				// one, with its real clock, so that a wrongly allowed
				// resolution would succeed.
				id := f.conf[scope]
				if want == http.StatusOK {
					id = f.conflict(t, scope)
				}
				body := mustJSON(t, map[string]any{"clock": f.clockOf(t, id), "values": map[string]any{"income": 1300},
					"note": f.secret(scope, "resolve-note")})
				return accRequest{method: http.MethodPost, path: "/v1/conflicts/" + id + "/resolve", body: body}
			}},
		{name: "GET /v1/export?format=jsonl&scope=", targeted: true,
			want: accTable(both403, both403, both403, both403, both200, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/export?format=jsonl&scope=" + scope)
			}},
		{name: "GET /v1/export?format=csv&scope=", targeted: true,
			want: accTable(both403, both403, both403, both403, both200, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/export?format=csv&scope=" + scope)
			}},
		{name: "POST /v1/admin/devices", targeted: true,
			want: accTable(both403, both403, both403, both403, both403, both201),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				body := mustJSON(t, map[string]any{"label": "acc enrolled by " + r.name, "scopes": []string{scope}})
				return accRequest{method: http.MethodPost, path: "/v1/admin/devices", body: body,
					after: func(t *testing.T, status int, rb []byte) {
						var out struct{ Device string }
						if json.Unmarshal(rb, &out) == nil && out.Device != "" {
							f.addSecret(scope, out.Device)
						}
					}}
			}},
		{name: "POST /v1/admin/users", targeted: true,
			want: accTable(both403, both403, both403, both403, both403, both201),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				body := mustJSON(t, map[string]any{"name": "acc made by " + r.name, "role": "supervisor", "scopes": []string{scope}})
				return accRequest{method: http.MethodPost, path: "/v1/admin/users", body: body}
			}},
		{name: "GET /v1/admin/accounts", want: adminOne,
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/admin/accounts")
			}},
		{name: "DELETE /v1/admin/tokens/{id}", targeted: true,
			want: accTable(both403, both403, both403, both403, both403, both204),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				victim := f.victim[scope]
				if want == http.StatusNoContent {
					victim = f.s.NewDevice(t, "acc victim to revoke", scope)
					f.addSecret(scope, victim.ID)
				}
				return accRequest{method: http.MethodDelete, path: "/v1/admin/tokens/" + victim.ID,
					after: func(t *testing.T, status int, rb []byte) {
						if resp, _ := f.s.Do(t, http.MethodGet, "/v1/sync/pull", victim.Token, nil, nil); resp.StatusCode != http.StatusUnauthorized {
							t.Errorf("the revoked token still pulls: %d", resp.StatusCode)
						}
					}}
			}},
		{name: "GET /v1/admin/quarantine", want: adminOne,
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/admin/quarantine")
			}},
		{name: "POST /v1/admin/quarantine/{id}/apply", targeted: true,
			want: accTable(both403, both403, both403, both403, both403, both200),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return accRequest{method: http.MethodPost, path: "/v1/admin/quarantine/" + f.quar[scope] + "/apply"}
			}},
		{name: "GET /v1/admin/backup", want: adminOne,
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/admin/backup")
			}},
		{name: "GET /v1/admin/devices (fleet)", want: single(accTable(one403, one403, one200, one200, one200, one200)),
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/v1/admin/devices")
			}},
		{name: "GET /metrics", want: adminOne,
			request: func(t *testing.T, f *accFixture, r *accRole, scope string, want int) accRequest {
				return get("/metrics")
			}},
	}
}

// accLeaks returns the secrets of scopes r may not see that body holds,
// leaving out those the request itself carried.
func (f *accFixture) accLeaks(r *accRole, req accRequest, body []byte) []string {
	var out []string
	for _, sc := range []string{accS1, accS2} {
		if r.sees[sc] {
			continue
		}
		for _, v := range f.secrets[sc] {
			if strings.Contains(req.path, v) || strings.Contains(string(req.body), v) {
				continue
			}
			if strings.Contains(string(body), v) {
				out = append(out, sc+":"+v)
			}
		}
	}
	return out
}

func TestAccessMatrix(t *testing.T) {
	s := StartServer(t, filepath.Join(t.TempDir(), "data"))
	f := newAccFixture(t, s)

	type cellKey struct{ endpoint, role, target string }
	got := map[cellKey]int{}
	cells, leaks, wrong := 0, 0, 0
	endpoints := accEndpoints()
	for _, ep := range endpoints {
		for _, rn := range accRoleOrder {
			r := f.roles[rn]
			want := ep.want[rn]
			targets := []string{"in"}
			if ep.targeted {
				targets = append(targets, "other")
			}
			for _, target := range targets {
				scope, status := r.home, want.in
				if target == "other" {
					scope, status = accOtherScope(r.home), want.other
				}
				if status == 0 {
					t.Fatalf("%s × %s: no expected status for %s", ep.name, rn, target)
				}
				cells++
				name := fmt.Sprintf("%s/%s/%s", ep.name, rn, target)
				req := ep.request(t, f, r, scope, status)
				resp, body, err := s.do(req.method, req.path, r.token, req.body, nil)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got[cellKey{ep.name, rn, target}] = resp.StatusCode
				if resp.StatusCode != status {
					wrong++
					t.Errorf("%s: status %d, want %d; body %s", name, resp.StatusCode, status, cut(body))
				} else if status >= 400 {
					if e := errorOf(body); e == nil || e.Message == "" {
						t.Errorf("%s: %d without an error body: %s", name, status, cut(body))
					}
				} else if req.after != nil {
					req.after(t, resp.StatusCode, body)
				}
				if l := f.accLeaks(r, req, body); len(l) > 0 {
					leaks++
					t.Errorf("LEAK %s: status %d, the answer holds %d item(s) of a scope the caller lacks: %v", name, resp.StatusCode, len(l), l)
				}
			}
		}
	}

	// Refused writes left nothing behind.
	for _, sc := range []string{accS1, accS2} {
		if resp, _ := s.Do(t, http.MethodGet, "/v1/sync/pull", f.victim[sc].Token, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("the victim of refused revocations in %s no longer pulls: %d", sc, resp.StatusCode)
		}
		if _, v := s.GetRecord(t, s.AdminToken, f.conf[sc]); len(v.Conflicts) == 0 {
			t.Errorf("the conflict of %s that only refused callers tried to resolve is resolved", sc)
		}
		allowed := map[string]bool{f.adminID: true, f.supIDs[sc]: true, f.devs[sc][0].ID: true, f.devs[sc][1].ID: true}
		for _, id := range []string{f.rec[sc], f.conf[sc]} {
			for a := range f.clockOf(t, id) {
				if !allowed[a] {
					t.Errorf("record %s of %s holds a write by %s, who may not write there", id, sc, a)
				}
			}
		}
	}

	// The matrix as got.
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-40s", "endpoint (in/other)")
	for _, rn := range accRoleOrder {
		fmt.Fprintf(&sb, " %-13s", rn)
	}
	sb.WriteString("\n")
	for _, ep := range endpoints {
		fmt.Fprintf(&sb, "%-40s", ep.name)
		for _, rn := range accRoleOrder {
			c := fmt.Sprint(got[cellKey{ep.name, rn, "in"}])
			if ep.targeted {
				c += "/" + fmt.Sprint(got[cellKey{ep.name, rn, "other"}])
			}
			fmt.Fprintf(&sb, " %-13s", c)
		}
		sb.WriteString("\n")
	}
	t.Logf("access matrix: %d roles × %d endpoints, %d cells, %d wrong statuses, %d leaks\n%s",
		len(accRoleOrder), len(endpoints), cells, wrong, leaks, sb.String())
	if leaks != 0 {
		t.Errorf("%d leaking cells", leaks)
	}
}
