package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// pushLog records, through a transport, the pulls' cursors and the items
// of every push.
type pushLog struct {
	mu     sync.Mutex
	pulls  []string          // the since of each pull ("" from the start)
	pushes [][]sp.State      // the items of each push
	steps  []string          // "push" or "pull", in order
	status map[string][]int  // answers by path
	next   http.RoundTripper // nil: http.DefaultTransport
}

func (l *pushLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	switch req.URL.Path {
	case routePull:
		l.pulls = append(l.pulls, req.URL.Query().Get("since"))
		l.steps = append(l.steps, "pull")
	case routePush:
		_, body, err := readRequestBody(req)
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		var pr sp.PushRequest
		_ = json.Unmarshal(body, &pr)
		var items []sp.State
		for _, raw := range pr.Records {
			var st sp.State
			_ = json.Unmarshal(raw, &st)
			items = append(items, st)
		}
		l.pushes = append(l.pushes, items)
		l.steps = append(l.steps, "push")
	}
	l.mu.Unlock()
	next := l.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err == nil {
		l.mu.Lock()
		if l.status == nil {
			l.status = map[string][]int{}
		}
		l.status[req.URL.Path] = append(l.status[req.URL.Path], resp.StatusCode)
		l.mu.Unlock()
	}
	return resp, err
}

// fieldNames returns the sorted names of the fields a state's writes hold.
func fieldNames(st sp.State) []string {
	var out []string
	for _, w := range st.Writes {
		for f := range w.Fields {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// A device's stored cursor comes from another database: the server answers
// 410 resync_required. Sync pulls from the start, merges, pushes the full
// state of every record (keeping the device's unsynced change), and ends
// equal to the server.
func TestResyncOnForeignCursor(t *testing.T) {
	srv := MustStartServer(t)
	devD, tokD := srv.NewDevice(t, "tablet D")
	devE, tokE := srv.NewDevice(t, "tablet E")
	log := &pushLog{}
	d := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tokD, Device: devD, Encoding: EncodingGzip, BatchSize: 2, PullLimit: 2, HTTPClient: &http.Client{Transport: log}})
	e := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tokE, Device: devE})

	ids := []string{NewID(), NewID(), NewID()}
	for i, id := range ids {
		mustSave(t, d, id, "assessment", testScope, map[string]any{"household_size": i + 1, "village": "Asrir"})
	}
	mustSync(t, d)
	mustSync(t, e)
	mustSave(t, e, ids[0], "", "", map[string]any{"water_source": "well"}) // D has not seen it
	eOwn := NewID()
	mustSave(t, e, eOwn, "assessment", testScope, map[string]any{"household_size": 9})
	mustSync(t, e)
	mustSave(t, d, ids[1], "", "", map[string]any{"village": "Tighmert"}) // unsynced on D
	if err := d.Delete(context.Background(), ids[2]); err != nil {        // unsynced too
		t.Fatal(err)
	}

	// A cursor from another server's database.
	other := MustStartServer(t)
	devO, tokO := other.NewDevice(t, "elsewhere")
	o := MustOpenClient(t, "", Options{ServerURL: other.URL, Token: tokO, Device: devO})
	mustSave(t, o, NewID(), "assessment", testScope, map[string]any{"household_size": 1})
	mustSync(t, o)
	_, foreign := other.PullAll(t)
	if err := d.st.setCursor(foreign); err != nil {
		t.Fatal(err)
	}

	log.mu.Lock()
	log.pulls, log.pushes, log.steps, log.status = nil, nil, nil, nil
	log.mu.Unlock()
	rep := mustSync(t, d)
	if !rep.Resynced {
		t.Errorf("report %+v: want Resynced", rep)
	}
	if got := log.status[routePull]; len(got) == 0 || got[0] != http.StatusGone {
		t.Errorf("pull answers %v: want 410 first", got)
	}
	if len(log.pulls) < 2 || log.pulls[0] != foreign || log.pulls[1] != "" {
		t.Errorf("pull cursors %q: want the foreign one, then from the start", log.pulls)
	}

	// After the 410 and the pull from the start, every record went out in
	// full: each item carries every field the device holds.
	local := map[string]sp.State{}
	for _, id := range append(slices.Clone(ids), eOwn) {
		r, _ := d.Get(id)
		if r == nil {
			t.Fatalf("device lacks %s after the resync", id)
		}
		local[id] = r.State()
	}
	answered410 := slices.Index(log.steps, "pull") // the pushes before it sent the dirty records
	full := map[string][]string{}
	pushIdx := 0
	for i, step := range log.steps {
		if step != "push" {
			continue
		}
		if i > answered410 {
			for _, it := range log.pushes[pushIdx] {
				full[it.ID] = fieldNames(it)
			}
		}
		pushIdx++
	}
	for id, st := range local {
		if want := fieldNames(st); !slices.Equal(full[id], want) {
			t.Errorf("resync push of %s carried %v, want every field %v", id, full[id], want)
		}
	}

	server, _ := srv.PullAll(t)
	assertEqualsServer(t, d, server)
	if _, a := d.Get(ids[0]); string(a.Visible["water_source"]) != `"well"` {
		t.Errorf("E's edit is missing on D: %s", mustJSON(a.Visible))
	}
	if _, a := d.Get(ids[1]); string(a.Visible["village"]) != `"Tighmert"` {
		t.Errorf("D's own unsynced edit was lost: %s", mustJSON(a.Visible))
	}
	if _, a := d.Get(ids[2]); !a.Deleted {
		t.Errorf("D's unsynced delete was lost")
	}

	// The next Sync is an ordinary one.
	rep = mustSync(t, d)
	if rep.Resynced || rep.Batches != 0 {
		t.Errorf("the Sync after the resync: %+v", rep)
	}
}

// The server is restored from a backup that predates everything: the
// device's cursor is foreign to it. The resync pushes every record back;
// a record holding another device's writes (which the restored server
// lost) is refused as forged_clock and kept in the quarantine, reported,
// not pushed again, and not lost on the device; once an admin re-applies
// it, the device equals the server again.
func TestResyncAfterRestore(t *testing.T) {
	srv := MustStartServer(t)
	devD, tokD := srv.NewDevice(t, "tablet D")
	devE, tokE := srv.NewDevice(t, "tablet E")
	path := filepath.Join(t.TempDir(), "d.db")
	d := MustOpenClient(t, path, Options{ServerURL: srv.URL, Token: tokD, Device: devD})
	e := MustOpenClient(t, "", Options{ServerURL: srv.URL, Token: tokE, Device: devE})
	own, shared := NewID(), NewID()
	mustSave(t, d, own, "assessment", testScope, map[string]any{"household_size": 4})
	mustSave(t, d, shared, "assessment", testScope, map[string]any{"household_size": 2, "village": "Asrir"})
	mustSync(t, d)
	mustSync(t, e)
	mustSave(t, e, shared, "", "", map[string]any{"village": "Tighmert"})
	mustSync(t, e)
	mustSync(t, d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// The restored server: an empty database that knows device D.
	restored := MustStartServer(t)
	acct, _, err := restored.Auth.NewAccount(auth.RoleDevice, "tablet D", []string{testScope}, tokD)
	if err != nil {
		t.Fatal(err)
	}
	acct.ID = devD
	if err := restored.Store.CreateAccount(context.Background(), acct); err != nil {
		t.Fatal(err)
	}
	d = MustOpenClient(t, path, Options{ServerURL: restored.URL, Token: tokD, Device: devD})
	rep, err := d.Sync(context.Background())
	if err != nil {
		t.Fatalf("resync: %v", err)
	}
	if !rep.Resynced || len(rep.Rejected) != 1 || rep.Rejected[0].ID != shared || rep.Rejected[0].Code != sp.CodeForgedClock {
		t.Fatalf("report %+v: want a resync with %s rejected as forged_clock", rep, shared)
	}
	var q struct {
		Items []struct {
			ID     string    `json:"id"`
			Record string    `json:"record"`
			Device string    `json:"device"`
			Error  *sp.Error `json:"error"`
		} `json:"items"`
	}
	if st := restored.call(t, "", http.MethodGet, "/v1/admin/quarantine", nil, &q); st != http.StatusOK || len(q.Items) != 1 || q.Items[0].Record != shared || q.Items[0].Device != devD {
		t.Fatalf("quarantine: status %d, %+v", st, q.Items)
	}
	if r, a := d.Get(shared); r == nil || string(a.Visible["village"]) != `"Tighmert"` {
		t.Errorf("the device lost the refused record")
	}
	server, _ := restored.PullAll(t)
	if got, _ := d.Get(own); server[own] == nil || !got.Equal(server[own]) {
		t.Errorf("record %s was not restored from the device", own)
	}

	// The refused item is not pushed again.
	rep = mustSync(t, d)
	if rep.Batches != 0 || len(rep.Rejected) != 0 {
		t.Errorf("the Sync after the resync: %+v, want nothing pushed", rep)
	}

	// An admin re-applies it; the device then equals the restored server.
	var res sp.PushResult
	if st := restored.call(t, "", http.MethodPost, "/v1/admin/quarantine/"+q.Items[0].ID+"/apply", nil, &res); st != http.StatusOK || res.Status != sp.StatusApplied {
		t.Fatalf("re-apply: status %d, %+v", st, res)
	}
	mustSync(t, d)
	server, _ = restored.PullAll(t)
	assertEqualsServer(t, d, server)
}

// A resync interrupted before it could pull from the start (the network
// fails, the process dies) goes on at the next Sync: pull, mark, push.
func TestResyncSurvivesInterruption(t *testing.T) {
	srv := MustStartServer(t)
	dev, tok := srv.NewDevice(t, "tablet")
	path := filepath.Join(t.TempDir(), "d.db")
	var breakPulls atomic.Bool
	broken := transportFunc(func(req *http.Request) (*http.Response, error) {
		if breakPulls.Load() && req.URL.Path == routePull && req.URL.Query().Get("since") == "" {
			return nil, errDropped
		}
		return http.DefaultTransport.RoundTrip(req)
	})
	d := MustOpenClient(t, path, Options{ServerURL: srv.URL, Token: tok, Device: dev, MaxRetries: -1, HTTPClient: &http.Client{Transport: broken}})
	ids := []string{NewID(), NewID()}
	for _, id := range ids {
		mustSave(t, d, id, "assessment", testScope, map[string]any{"household_size": 3})
	}
	mustSync(t, d)
	other := MustStartServer(t)
	_, foreign := other.PullAll(t)
	if err := d.st.setCursor(foreign); err != nil {
		t.Fatal(err)
	}
	breakPulls.Store(true)
	if _, err := d.Sync(context.Background()); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("sync on a broken network: %v, want ErrGaveUp", err)
	}
	if on, err := d.st.resyncing(); err != nil || !on {
		t.Fatalf("resync flag after the interruption: %v %v", on, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	log := &pushLog{}
	d = MustOpenClient(t, path, Options{ServerURL: srv.URL, Token: tok, Device: dev, HTTPClient: &http.Client{Transport: log}})
	rep := mustSync(t, d)
	if !rep.Resynced || len(log.pulls) == 0 || log.pulls[0] != "" {
		t.Errorf("report %+v, pulls %q: want the resync to go on from the start", rep, log.pulls)
	}
	var pushed []string
	for _, items := range log.pushes {
		for _, it := range items {
			pushed = append(pushed, it.ID)
		}
	}
	sort.Strings(pushed)
	if want := slices.Sorted(slices.Values(ids)); !slices.Equal(pushed, want) {
		t.Errorf("pushed %v after the interruption, want every record %v", pushed, want)
	}
	server, _ := srv.PullAll(t)
	assertEqualsServer(t, d, server)
}
