package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const (
	scopeGON = "guelmim-oued-noun"
	scopeSM  = "souss-massa"
	form     = "assessment"
)

func newServer(t *testing.T) *Server {
	t.Helper()
	return StartServer(t, filepath.Join(t.TempDir(), "data"))
}

// resultFor returns the push result for record id.
func resultFor(t testing.TB, resp syncproto.PushResponse, id string) syncproto.PushResult {
	t.Helper()
	for _, r := range resp.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", id, resp)
	return syncproto.PushResult{}
}

// pulledByID indexes pulled records by id (the last one wins).
func pulledByID(recs []syncproto.PulledRecord) map[string]syncproto.PulledRecord {
	out := map[string]syncproto.PulledRecord{}
	for _, r := range recs {
		out[r.ID] = r
	}
	return out
}

// Two devices edit the same record offline: the same field differently (a
// hard conflict) and a different field each (merged). Every device ends up
// with the same state; supervisors see the siblings and the history says the
// second push was concurrent.
func TestConcurrentEditsConflictAndConverge(t *testing.T) {
	s := newServer(t)
	a := s.NewDevice(t, "tablet A", scopeGON)
	b := s.NewDevice(t, "tablet B", scopeGON)
	c := s.NewDevice(t, "tablet C", scopeGON)
	_, supTok := s.CreateUser(t, "supervisor GON", "supervisor", scopeGON)

	id := a.Create(t, form, map[string]any{
		"head_name": "فاطمة", "household_size": 5, "monthly_income_mad": 1000, "commune": "Tan-Tan",
	})
	created := a.PushChanges(t)
	if r := resultFor(t, created, id); r.Status != syncproto.StatusApplied {
		t.Fatalf("creating push: %+v, want applied", r)
	}
	b.PullMerge(t)
	if _, ok := b.Recs[id]; !ok {
		t.Fatalf("B did not pull the new record")
	}

	// Offline edits.
	aIncome := a.Edit(t, id, map[string]any{"monthly_income_mad": 1200})
	a.Edit(t, id, map[string]any{"household_size": 6})
	bIncome := b.Edit(t, id, map[string]any{"monthly_income_mad": 1500, "notes": "pension not counted"})

	first := a.PushChanges(t)
	if r := resultFor(t, first, id); r.Status != syncproto.StatusApplied || len(r.Conflicts) != 0 {
		t.Errorf("A's push: %+v, want applied without conflicts", r)
	}
	second := b.PushChanges(t)
	r := resultFor(t, second, id)
	if r.Status != syncproto.StatusConflict || !slices.Equal(r.Conflicts, []string{"monthly_income_mad"}) {
		t.Errorf("B's push: status %q conflicts %v, want conflict [monthly_income_mad]", r.Status, r.Conflicts)
	}
	wantClock := syncproto.Clock{a.ID: 3, b.ID: 1}
	if !r.Clock.Equal(wantClock) {
		t.Errorf("B's push: clock %v, want %v", r.Clock, wantClock)
	}

	c.PullMerge(t)
	a.PullMerge(t)
	b.PullMerge(t)
	cr, ok := c.Recs[id]
	if !ok {
		t.Fatalf("C did not pull the record")
	}
	if !cr.Equal(a.Recs[id]) || !cr.Equal(b.Recs[id]) {
		t.Errorf("states differ after pulls:\nC %s\nA %s\nB %s", showState(cr.State()), showState(a.Recs[id].State()), showState(b.Recs[id].State()))
	}

	an := syncproto.Analyze(cr)
	if !slices.Equal(an.Conflicts, []string{"monthly_income_mad"}) {
		t.Errorf("conflicts %v, want [monthly_income_mad]", an.Conflicts)
	}
	sibs := cr.Fields["monthly_income_mad"]
	if len(sibs) != 2 || sibs[0].Dot == sibs[1].Dot {
		t.Fatalf("monthly_income_mad siblings %s, want two", showSibs(sibs))
	}
	byDot := map[syncproto.Dot]json.RawMessage{}
	for _, sb := range sibs {
		byDot[sb.Dot] = sb.Value
	}
	if !syncproto.EqualValues(byDot[aIncome], raw(1200)) || !syncproto.EqualValues(byDot[bIncome], raw(1500)) {
		t.Errorf("monthly_income_mad siblings %s, want 1200 by %v and 1500 by %v", showSibs(sibs), aIncome, bIncome)
	}
	if !syncproto.EqualValues(an.Visible["household_size"], raw(6)) {
		t.Errorf("household_size = %s, want 6", an.Visible["household_size"])
	}
	if !syncproto.EqualValues(an.Visible["notes"], raw("pension not counted")) {
		t.Errorf("notes = %s, want B's", an.Visible["notes"])
	}
	if !syncproto.EqualValues(an.Visible["head_name"], raw("فاطمة")) {
		t.Errorf("head_name = %s, want the creation's", an.Visible["head_name"])
	}
	for _, f := range []string{"household_size", "notes", "head_name"} {
		if n := len(cr.Fields[f]); n != 1 {
			t.Errorf("%s has %d siblings, want 1", f, n)
		}
	}

	// The supervisor's view.
	st, view := s.GetRecord(t, supTok, id)
	if st != http.StatusOK {
		t.Fatalf("GET record as supervisor: status %d", st)
	}
	if !stateEqual(view.Record, cr.State()) {
		t.Errorf("view's record %s, want %s", showState(view.Record), showState(cr.State()))
	}
	if len(view.Conflicts) != 1 || len(view.Conflicts["monthly_income_mad"]) != 2 {
		t.Errorf("view conflicts %s, want monthly_income_mad with two siblings", js(view.Conflicts))
	}
	for _, sv := range view.Conflicts["monthly_income_mad"] {
		want, ok := byDot[syncproto.Dot{By: sv.By, N: sv.N}]
		if !ok || !syncproto.EqualValues(sv.V, want) || sv.At == 0 {
			t.Errorf("view sibling %s is not one of the record's", js(sv))
		}
	}
	for f, want := range map[string]json.RawMessage{
		"household_size": raw(6), "notes": raw("pension not counted"), "monthly_income_mad": an.Visible["monthly_income_mad"],
	} {
		if !syncproto.EqualValues(view.Values[f], want) {
			t.Errorf("view values[%s] = %s, want %s", f, view.Values[f], want)
		}
	}
	if view.Deleted || view.Seq != r.Seq {
		t.Errorf("view deleted %v seq %d, want false and %d", view.Deleted, view.Seq, r.Seq)
	}

	st, hist := s.History(t, supTok, id)
	if st != http.StatusOK {
		t.Fatalf("history: status %d", st)
	}
	if len(hist) != 3 {
		t.Fatalf("history has %d entries, want 3 (create, A, B): %v", len(hist), hist)
	}
	for i, h := range hist {
		if h.MergedConcurrent == nil {
			t.Errorf("history[%d] lacks merged_concurrent", i)
			continue
		}
		if h.Kind != "push" {
			t.Errorf("history[%d].kind = %q, want push", i, h.Kind)
		}
		if i > 0 && h.Seq <= hist[i-1].Seq {
			t.Errorf("history not oldest first: %d after %d", h.Seq, hist[i-1].Seq)
		}
	}
	if hist[0].Actor != a.ID || *hist[0].MergedConcurrent || hist[1].Actor != a.ID || *hist[1].MergedConcurrent {
		t.Errorf("A's entries %v %v: want actor A, merged_concurrent false", hist[0], hist[1])
	}
	h := hist[2]
	if h.Actor != b.ID || !*h.MergedConcurrent || h.Seq != r.Seq || h.Batch != second.Batch {
		t.Errorf("B's entry %v: want actor B, merged_concurrent true, seq %d, batch %s", h, r.Seq, second.Batch)
	}
	if !slices.Contains(h.Fields, "monthly_income_mad") || !slices.Contains(h.Fields, "notes") || slices.Contains(h.Fields, "household_size") {
		t.Errorf("B's entry fields %v, want monthly_income_mad and notes only", h.Fields)
	}
	if !syncproto.EqualValues(h.Values["monthly_income_mad"], raw(1500)) || !syncproto.EqualValues(h.Values["notes"], raw("pension not counted")) {
		t.Errorf("B's entry values %v", h.Values)
	}
}

// The same batch twice gets byte-identical answers and changes nothing; the
// same batch id with other records is 409 batch_reused.
func TestRetriedBatch(t *testing.T) {
	s := newServer(t)
	d := s.NewDevice(t, "tablet", scopeGON)
	other := s.NewDevice(t, "tablet 2", scopeGON)
	r1 := d.Create(t, form, map[string]any{"household_size": 4})
	d.Edit(t, r1, map[string]any{"notes": "second save"}) // two writes in the item
	r2 := d.Create(t, form, map[string]any{"household_size": 7})
	body, _ := d.PushBody()
	items := body["records"].([]syncproto.State)
	raw1 := mustJSON(t, body)

	resp1, ans1 := s.Do(t, http.MethodPost, "/v1/sync/push", d.Token, raw1, nil)
	if resp1.StatusCode != http.StatusOK {
		t.Fatalf("first push: status %d; %s", resp1.StatusCode, ans1)
	}
	var pr syncproto.PushResponse
	if err := json.Unmarshal(ans1, &pr); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(body, pr); err != nil {
		t.Fatal(err)
	}
	_, h1 := s.History(t, s.AdminToken, r1)
	_, v2 := s.GetRecord(t, s.AdminToken, r2)

	// Another device changes r1 after the first push.
	other.PullMerge(t)
	other.Edit(t, r1, map[string]any{"household_size": 5})
	otherAns := other.PushChanges(t)
	seqAfterOther := resultFor(t, otherAns, r1).Seq
	_, cursor2 := s.PullAll(t, d.Token)

	check := func(what string, ans []byte) {
		t.Helper()
		if !bytes.Equal(ans, ans1) {
			t.Errorf("%s: answer differs from the first:\n%s\n%s", what, ans, ans1)
		}
		_, v := s.GetRecord(t, s.AdminToken, r1)
		_, h := s.History(t, s.AdminToken, r1)
		_, w := s.GetRecord(t, s.AdminToken, r2)
		if v.Seq != seqAfterOther || len(h) != len(h1)+1 || w.Seq != v2.Seq {
			t.Errorf("%s: seqs %d %d and %d history entries; want %d %d and %d", what, v.Seq, w.Seq, len(h), seqAfterOther, v2.Seq, len(h1)+1)
		}
		if st, p := s.Pull(t, d.Token, cursor2, 100); st != http.StatusOK || len(p.Records) != 0 {
			t.Errorf("%s: the feed moved: %d records after the cursor", what, len(p.Records))
		}
	}

	resp, ans := s.Do(t, http.MethodPost, "/v1/sync/push", d.Token, raw1, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("retry: status %d; %s", resp.StatusCode, ans)
	}
	check("retry", ans)

	// The same batch, written otherwise: other key order, white space and
	// writes order; it is the same batch as parsed JSON.
	var reordered []map[string]any
	for _, it := range items {
		w := slices.Clone(it.Writes)
		slices.Reverse(w)
		reordered = append(reordered, map[string]any{"writes": w, "clock": it.Clock, "scope": it.Scope, "form": it.Form, "id": it.ID})
	}
	raw2, _ := json.MarshalIndent(map[string]any{"records": reordered, "batch": body["batch"], "device": d.ID}, "", "   ")
	if bytes.Equal(raw1, raw2) {
		t.Fatal("test bug: reordered body is the same bytes")
	}
	resp, ans = s.Do(t, http.MethodPost, "/v1/sync/push", d.Token, raw2, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reordered retry: status %d; %s", resp.StatusCode, ans)
	}
	check("reordered retry", ans)

	// The same batch id with other records.
	d.Edit(t, r2, map[string]any{"household_size": 8})
	changed, _ := d.PushBody()
	changed["batch"] = body["batch"]
	resp, ans = s.Do(t, http.MethodPost, "/v1/sync/push", d.Token, mustJSON(t, changed), nil)
	wantError(t, "reused batch id", resp, ans, http.StatusConflict, syncproto.CodeBatchReused)
	check("after the refused batch", ans1)
}

// A device of another scope sees nothing there, and its item in that scope
// is rejected as forbidden and kept in the quarantine.
func TestOtherScopeIsolation(t *testing.T) {
	s := newServer(t)
	a := s.NewDevice(t, "tablet A", scopeGON)
	x := s.NewDevice(t, "tablet X", scopeSM)
	_, supSM := s.CreateUser(t, "supervisor SM", "supervisor", scopeSM)
	var ids []string
	for i := range 3 {
		ids = append(ids, a.Create(t, form, map[string]any{"household_size": i + 1}))
	}
	a.PushChanges(t)

	if recs, _ := s.PullAll(t, x.Token); len(recs) != 0 {
		t.Errorf("X pulled %d records of another scope", len(recs))
	}
	if st, _ := s.GetRecord(t, supSM, ids[0]); st != http.StatusForbidden {
		t.Errorf("a supervisor of another scope reading a record: status %d, want 403", st)
	}

	// X writes into guelmim-oued-noun: a new record, and one of A's.
	xr := &Device{srv: s, ID: x.ID, Token: x.Token, Scope: scopeGON, Recs: map[string]*syncproto.Record{},
		dirty: map[string]map[string]bool{}, Acked: map[string]uint64{}}
	newRec := xr.Create(t, form, map[string]any{"household_size": 2})
	body, _ := xr.PushBody()
	item := body["records"].([]syncproto.State)[0]
	st, pr, e := s.Push(t, x.Token, body)
	if st != http.StatusOK {
		t.Fatalf("X's push: status %d, %+v; want 200 with a rejected item", st, e)
	}
	res := resultFor(t, pr, newRec)
	if res.Status != syncproto.StatusRejected || res.Error == nil || res.Error.Code != syncproto.CodeForbidden {
		t.Errorf("X's item in another scope: %+v, want rejected forbidden", res)
	}
	if res.Seq != 0 {
		t.Errorf("rejected item has seq %d", res.Seq)
	}
	if st, _ := s.GetRecord(t, s.AdminToken, newRec); st != http.StatusNotFound {
		t.Errorf("the rejected new record exists: status %d, want 404", st)
	}
	a.PullMerge(t)
	if _, ok := a.Recs[newRec]; ok {
		t.Errorf("A pulled the rejected record")
	}

	q := s.Quarantine(t)
	found := false
	for _, it := range q {
		if it.Record != newRec {
			continue
		}
		found = true
		if it.Device != x.ID || it.Error == nil || it.Error.Code != syncproto.CodeForbidden || it.ID == "" || it.ReceivedAt == "" {
			t.Errorf("quarantine entry %s: want device X, error forbidden, an id and received_at", js(it))
		}
		if !syncproto.EqualValues(it.Item, mustJSON(t, item)) {
			t.Errorf("quarantined item %s, want the item as sent %s", it.Item, mustJSON(t, item))
		}
	}
	if !found {
		t.Errorf("the rejected item is not in the quarantine: %s", js(q))
	}
}

// Acknowledged pushes survive kill -9; the database checks clean afterwards.
func TestKill9Durability(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := StartServer(t, dir)
	d := s.NewDevice(t, "tablet", scopeGON)
	var ids []string
	var cursor string
	late := map[string]bool{} // records changed after the cursor
	for batch := range 6 {
		for i := range 4 {
			id := d.Create(t, form, map[string]any{"batch": batch, "i": i, "head_name": fmt.Sprintf("name %d-%d", batch, i)})
			ids = append(ids, id)
			if batch >= 4 {
				late[id] = true
			}
		}
		if batch > 0 { // also edit a record of the batch before
			d.Edit(t, ids[len(ids)-5], map[string]any{"household_size": batch})
			if batch >= 4 {
				late[ids[len(ids)-5]] = true
			}
		}
		d.PushChanges(t)
		if batch == 3 {
			d.PullMerge(t)
			cursor = d.Cursor
		}
	}
	s.Kill9()
	s.Restart(t)

	_, supTok := s.CreateUser(t, "sup", "supervisor", scopeGON)
	recs, _ := s.PullAll(t, supTok)
	got := pulledByID(recs)
	if len(got) != len(ids) {
		t.Errorf("after kill -9: %d records, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		r, ok := got[id]
		if !ok {
			t.Errorf("acknowledged record %s lost", id)
			continue
		}
		if !stateEqual(r.State, d.Recs[id].State()) {
			t.Errorf("record %s after kill -9:\n%s\nwant\n%s", id, showState(r.State), showState(d.Recs[id].State()))
		}
		if r.Seq != d.Acked[id] {
			t.Errorf("record %s: seq %d, acknowledged %d", id, r.Seq, d.Acked[id])
		}
	}
	// A cursor from before the crash is still this database's: it gives
	// exactly the records changed after it.
	st, pr := s.Pull(t, d.Token, cursor, 1000)
	if st != http.StatusOK {
		t.Errorf("pull with a pre-crash cursor: status %d, want 200", st)
	}
	gotLate := map[string]bool{}
	for _, r := range pr.Records {
		gotLate[r.ID] = true
	}
	if fmt.Sprint(gotLate) != fmt.Sprint(late) {
		t.Errorf("pull after the pre-crash cursor: %v, want %v", gotLate, late)
	}

	s.Stop(t)
	if out, err := RunCLI("check", "--data", dir); err != nil {
		t.Errorf("fieldsync check after kill -9 and restart: %v\n%s", err, out)
	}
}

// Eight devices write the same record at once, syncing after every save.
// Every write ends up either as a surviving sibling or overwritten by a
// write that had seen it; own fields and clock entries are exact.
func TestConcurrentSameRecord(t *testing.T) {
	s := newServer(t)
	const nDev, nWrites = 8, 10
	devs := make([]*Device, nDev)
	for i := range devs {
		devs[i] = s.NewDevice(t, fmt.Sprintf("tablet %d", i), scopeGON)
	}
	id := devs[0].Create(t, form, map[string]any{"shared": "initial", "head_name": "x"})
	devs[0].PushChanges(t)
	for _, d := range devs {
		d.PullMerge(t)
	}

	// Each write's clock as the device saw it right after the save.
	type writeInfo struct {
		dot   syncproto.Dot
		value string
		clock syncproto.Clock
	}
	writes := make([][]writeInfo, nDev)
	errs := make([]error, nDev)
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("own_%d", i)
			for k := 1; k <= nWrites; k++ {
				v := fmt.Sprintf("dev %d write %d", i, k)
				dot, err := d.edit(id, map[string]any{own: k, "shared": v})
				if err != nil {
					errs[i] = err
					return
				}
				writes[i] = append(writes[i], writeInfo{dot: dot, value: v, clock: d.Recs[id].Clock.Copy()})
				if err := d.sync(); err != nil {
					errs[i] = fmt.Errorf("device %d write %d: %w", i, k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// What the server must hold: the join of every device's final copy.
	want := devs[0].Recs[id]
	for _, d := range devs[1:] {
		want = syncproto.Join(want, d.Recs[id])
	}
	_, supTok := s.CreateUser(t, "sup", "supervisor", scopeGON)
	recs, _ := s.PullAll(t, supTok)
	got, ok := pulledByID(recs)[id]
	if !ok {
		t.Fatalf("record missing")
	}
	final := syncproto.FromState(got.State)
	if !final.Equal(want) {
		t.Errorf("server state:\n%s\nwant the join of the devices' copies:\n%s", showState(got.State), showState(want.State()))
	}
	for i, d := range devs {
		wantN := uint64(nWrites)
		if i == 0 {
			wantN++ // the creation
		}
		if final.Clock[d.ID] != wantN || final.Clock[d.ID] != d.Recs[id].Clock[d.ID] {
			t.Errorf("clock[device %d] = %d, want %d", i, final.Clock[d.ID], wantN)
		}
		own := final.Fields[fmt.Sprintf("own_%d", i)]
		last := writes[i][nWrites-1]
		if len(own) != 1 || own[0].Dot != last.dot || !syncproto.EqualValues(own[0].Value, raw(nWrites)) {
			t.Errorf("own_%d siblings %s, want only %d by %v", i, showSibs(own), nWrites, last.dot)
		}
	}
	// The shared field holds exactly the writes no other write had seen.
	wantShared := map[syncproto.Dot]string{}
	for _, ws := range writes {
		for _, w := range ws {
			seen := false
			for _, os := range writes {
				for _, o := range os {
					if o.dot != w.dot && o.clock.Covers(w.dot) {
						seen = true
					}
				}
			}
			if !seen {
				wantShared[w.dot] = w.value
			}
		}
	}
	gotShared := map[syncproto.Dot]string{}
	for _, sb := range final.Fields["shared"] {
		var v string
		_ = json.Unmarshal(sb.Value, &v)
		gotShared[sb.Dot] = v
	}
	if len(wantShared) == 0 || fmt.Sprint(gotShared) != fmt.Sprint(wantShared) {
		t.Errorf("shared siblings %v, want the unseen writes %v", gotShared, wantShared)
	}
	t.Logf("shared field: %d surviving siblings of %d writes", len(gotShared), nDev*nWrites)
	if !syncproto.EqualValues(final.Fields["head_name"][0].Value, raw("x")) {
		t.Errorf("head_name lost: %s", showSibs(final.Fields["head_name"]))
	}
	// After a last pull every device holds the server's state.
	for i, d := range devs {
		d.PullMerge(t)
		if !d.Recs[id].Equal(final) {
			t.Errorf("device %d differs from the server after a pull", i)
		}
	}
}

// A puller pages with limit=7 while four devices push; it misses nothing.
func TestFeedPagingWhilePushing(t *testing.T) {
	s := newServer(t)
	const nPushers, nBatches = 4, 50
	pushers := make([]*Device, nPushers)
	for i := range pushers {
		pushers[i] = s.NewDevice(t, fmt.Sprintf("pusher %d", i), scopeGON)
	}
	puller := s.NewDevice(t, "puller", scopeGON)

	type seen struct {
		seq   uint64
		state syncproto.State
	}
	view := map[string]seen{}
	var pullErr error
	var pages, fullPages, maxPage int
	done := make(chan struct{})
	acks := make(chan struct{}, nPushers*nBatches)
	pullerDone := make(chan struct{})
	go func() {
		defer close(pullerDone)
		cursor := ""
		var last uint64
		finished, caughtUp := false, false
		for range 1_000_000 {
			// Once caught up, wait for a few more acknowledged pushes (not
			// for time), so that pages often end with more=true.
			for n := 0; caughtUp && !finished && n < 3; {
				select {
				case <-acks:
					n++
				case <-done:
					finished = true
				}
			}
			if !finished {
				select {
				case <-done:
					finished = true // drain: the next pages see every push
				default:
				}
			}
			st, pr, e, err := s.pull(puller.Token, cursor, 7)
			if err != nil || st != http.StatusOK {
				pullErr = fmt.Errorf("pull: %v status %d %+v", err, st, e)
				return
			}
			pages++
			if pr.More {
				fullPages++
			}
			maxPage = max(maxPage, len(pr.Records))
			ids := map[string]bool{}
			for _, r := range pr.Records {
				if r.Seq <= last {
					pullErr = fmt.Errorf("seq %d after %d (within a pull or after the previous cursor)", r.Seq, last)
					return
				}
				if ids[r.ID] {
					pullErr = fmt.Errorf("record %s twice in one pull", r.ID)
					return
				}
				ids[r.ID] = true
				last = r.Seq
				view[r.ID] = seen{seq: r.Seq, state: r.State}
			}
			if pr.Cursor == "" {
				pullErr = fmt.Errorf("empty cursor")
				return
			}
			cursor = pr.Cursor
			if finished && !pr.More {
				return
			}
			caughtUp = !pr.More
		}
		pullErr = fmt.Errorf("the puller did not drain the feed")
	}()

	acked := make([]map[string]uint64, nPushers)
	errs := make([]error, nPushers)
	var wg sync.WaitGroup
	for i, d := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []string
			for k := range nBatches {
				id, err := d.create(form, map[string]any{"pusher": i, "batch": k})
				if err != nil {
					errs[i] = err
					return
				}
				mine = append(mine, id)
				if id, err = d.create(form, map[string]any{"pusher": i, "batch": k, "second": true}); err != nil {
					errs[i] = err
					return
				}
				mine = append(mine, id)
				// Edit two older records: their seqs move on.
				for _, j := range []int{len(mine) / 2, len(mine) / 3} {
					if j < len(mine)-2 {
						if _, err := d.edit(mine[j], map[string]any{"edited_in": k}); err != nil {
							errs[i] = err
							return
						}
					}
				}
				if _, err := d.pushChanges(); err != nil {
					errs[i] = err
					return
				}
				acks <- struct{}{}
			}
			acked[i] = d.Acked
		}()
	}
	wg.Wait()
	close(done)
	<-pullerDone
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if pullErr != nil {
		t.Fatal(pullErr)
	}
	if maxPage > 7 {
		t.Errorf("a page of %d records with limit=7", maxPage)
	}

	all, _ := s.PullAll(t, puller.Token)
	final := pulledByID(all)
	if len(final) != 2*nPushers*nBatches {
		t.Errorf("final pull: %d records, want %d", len(final), 2*nPushers*nBatches)
	}
	for id, r := range final {
		v, ok := view[id]
		if !ok {
			t.Errorf("record %s (seq %d) never reached the puller", id, r.Seq)
			continue
		}
		if v.seq != r.Seq || !stateEqual(v.state, r.State) {
			t.Errorf("record %s: the puller last saw seq %d, final seq %d", id, v.seq, r.Seq)
		}
	}
	for i, a := range acked {
		for id, seq := range a {
			v, ok := view[id]
			if !ok || v.seq < seq {
				t.Errorf("pusher %d: acknowledged %s at seq %d; the puller saw seq %d (present %v)", i, id, seq, v.seq, ok)
			}
			if !stateEqual(final[id].State, pushers[i].Recs[id].State()) {
				t.Errorf("pusher %d: record %s differs from the pusher's copy", i, id)
			}
		}
	}
	t.Logf("puller: %d pages, %d of them with more=true", pages, fullPages)
}

// Cursors: malformed, foreign, and bad limits.
func TestCursorErrors(t *testing.T) {
	s1 := newServer(t)
	s2 := newServer(t)
	d1 := s1.NewDevice(t, "t1", scopeGON)
	d2 := s2.NewDevice(t, "t2", scopeGON)
	for range 3 {
		d1.Create(t, form, map[string]any{"x": 1})
		d2.Create(t, form, map[string]any{"x": 2})
	}
	d1.PushChanges(t)
	d2.PushChanges(t)
	_, c1 := s1.PullAll(t, d1.Token)
	_, c2 := s2.PullAll(t, d2.Token)
	if c1 == "" || c2 == "" || c1 == c2 {
		t.Fatalf("cursors %q %q", c1, c2)
	}
	if st, _ := s1.Pull(t, d1.Token, c1, 10); st != http.StatusOK {
		t.Fatalf("own cursor: status %d", st)
	}

	get := func(srv *Server, token, query string) (*http.Response, []byte) {
		return srv.Do(t, http.MethodGet, "/v1/sync/pull?"+query, token, nil, nil)
	}
	for _, bad := range []string{"garbage", "%00%01", "AAAA", c1[:len(c1)-2], c1 + "AA", "!!!!"} {
		resp, b := get(s1, d1.Token, "since="+bad)
		wantError(t, "cursor "+bad, resp, b, http.StatusBadRequest, syncproto.CodeBadCursor)
	}
	// A cursor of the other database, at the same seq as this one's.
	resp, b := get(s1, d1.Token, "since="+c2)
	wantError(t, "another database's cursor", resp, b, http.StatusGone, syncproto.CodeResyncRequired)
	resp, b = get(s2, d2.Token, "since="+c1)
	wantError(t, "another database's cursor (reverse)", resp, b, http.StatusGone, syncproto.CodeResyncRequired)

	for _, q := range []string{"limit=0", "limit=1001", "limit=-1", "limit=abc"} {
		resp, b := get(s1, d1.Token, q)
		wantError(t, q, resp, b, http.StatusBadRequest, syncproto.CodeBadRequest)
	}
	for _, q := range []string{"limit=1", "limit=1000", ""} {
		if resp, b := get(s1, d1.Token, q); resp.StatusCode != http.StatusOK {
			t.Errorf("%q: status %d; %s", q, resp.StatusCode, cut(b))
		}
	}
	// Paging with any limit gives exactly the full feed: same records, same
	// seqs, same order, each page at most limit long, more=true until the end.
	var ids []string
	for k := range 4 {
		for range 3 {
			ids = append(ids, d1.Create(t, form, map[string]any{"k": k}))
		}
		if k > 0 {
			d1.Edit(t, ids[k], map[string]any{"edited": k})
		}
		d1.PushChanges(t)
	}
	full, _ := s1.PullAll(t, d1.Token)
	if len(full) != 15 {
		t.Fatalf("full pull: %d records, want 15", len(full))
	}
	for _, limit := range []int{1, 2, 3, 5, 7} {
		var got []syncproto.PulledRecord
		cursor := ""
		for range 100 {
			st, pr := s1.Pull(t, d1.Token, cursor, limit)
			if st != http.StatusOK || len(pr.Records) > limit {
				t.Fatalf("limit=%d: status %d, %d records", limit, st, len(pr.Records))
			}
			if pr.More && len(pr.Records) == 0 {
				t.Errorf("limit=%d: an empty page with more=true", limit)
			}
			got = append(got, pr.Records...)
			cursor = pr.Cursor
			if !pr.More {
				break
			}
		}
		if len(got) != len(full) {
			t.Errorf("limit=%d: paging gave %d records, want %d", limit, len(got), len(full))
			continue
		}
		for i := range got {
			if got[i].ID != full[i].ID || got[i].Seq != full[i].Seq {
				t.Errorf("limit=%d: record %d is %s@%d, want %s@%d", limit, i, got[i].ID, got[i].Seq, full[i].ID, full[i].Seq)
				break
			}
		}
		if st, pr := s1.Pull(t, d1.Token, cursor, limit); st != http.StatusOK || len(pr.Records) != 0 || pr.More {
			t.Errorf("limit=%d: after the last page: status %d, %d records, more %v", limit, st, len(pr.Records), pr.More)
		}
	}
}

// Malformed requests, tokens, encodings, and rejected items.
func TestBadInput(t *testing.T) {
	s := newServer(t)
	a := s.NewDevice(t, "tablet A", scopeGON)
	b := s.NewDevice(t, "tablet B", scopeGON)
	push := func(token string, body []byte, headers map[string]string) (*http.Response, []byte) {
		return s.Do(t, http.MethodPost, "/v1/sync/push", token, body, headers)
	}
	// An existing record of A's, clock {A: 1}.
	base := a.Create(t, form, map[string]any{"household_size": 3})
	a.PushChanges(t)
	_, baseView := s.GetRecord(t, s.AdminToken, base)

	t.Run("not json", func(t *testing.T) {
		resp, body := push(a.Token, []byte(`{"device": "`+a.ID+`", "batch": `), nil)
		wantError(t, "truncated JSON", resp, body, http.StatusBadRequest, syncproto.CodeBadJSON)
		resp, body = push(a.Token, []byte(`hello`), nil)
		wantError(t, "plain text", resp, body, http.StatusBadRequest, syncproto.CodeBadJSON)
	})
	t.Run("invalid utf-8", func(t *testing.T) {
		body := []byte(`{"device":"` + a.ID + `","batch":"` + newID() + `","records":[],"x":"` + "\xff\xfe" + `"}`)
		resp, rb := push(a.Token, body, nil)
		wantError(t, "invalid UTF-8", resp, rb, http.StatusBadRequest, syncproto.CodeBadJSON)
	})
	t.Run("other device", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"device": b.ID, "batch": newID(), "records": []any{}})
		resp, rb := push(a.Token, body, nil)
		wantError(t, "device not the token's", resp, rb, http.StatusForbidden, syncproto.CodeForbidden)
	})
	t.Run("no token", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"device": a.ID, "batch": newID(), "records": []any{}})
		resp, rb := push("", body, nil)
		wantError(t, "push without a token", resp, rb, http.StatusUnauthorized, syncproto.CodeUnauthorized)
		resp, rb = s.Do(t, http.MethodGet, "/v1/sync/pull", "", nil, nil)
		wantError(t, "pull without a token", resp, rb, http.StatusUnauthorized, syncproto.CodeUnauthorized)
		resp, rb = s.Do(t, http.MethodGet, "/v1/sync/pull", "fst_not-a-real-token", nil, nil)
		wantError(t, "pull with an unknown token", resp, rb, http.StatusUnauthorized, syncproto.CodeUnauthorized)
	})
	t.Run("revoked token", func(t *testing.T) {
		r := s.NewDevice(t, "to revoke", scopeGON)
		r.Create(t, form, map[string]any{"x": 1})
		r.PushChanges(t)
		resp, rb := s.Do(t, http.MethodDelete, "/v1/admin/tokens/"+r.ID, s.AdminToken, nil, nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: status %d; %s", resp.StatusCode, rb)
		}
		resp, rb = s.Do(t, http.MethodGet, "/v1/sync/pull", r.Token, nil, nil)
		wantError(t, "pull with a revoked token", resp, rb, http.StatusUnauthorized, syncproto.CodeUnauthorized)
		r.Create(t, form, map[string]any{"x": 2})
		body, _ := r.PushBody()
		resp, rb = push(r.Token, mustJSON(t, body), nil)
		wantError(t, "push with a revoked token", resp, rb, http.StatusUnauthorized, syncproto.CodeUnauthorized)
	})
	t.Run("compressed bodies", func(t *testing.T) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		id1 := a.Create(t, form, map[string]any{"via": "gzip", "pad": strings.Repeat("g", 2000)})
		body1, _ := a.PushBody()
		zw.Write(mustJSON(t, body1))
		zw.Close()
		resp, rb := push(a.Token, gz.Bytes(), map[string]string{"Content-Encoding": "gzip"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("gzip push: status %d; %s", resp.StatusCode, cut(rb))
		}
		var pr syncproto.PushResponse
		json.Unmarshal(rb, &pr)
		if err := a.Ack(body1, pr); err != nil {
			t.Error("gzip push:", err)
		}

		id2 := a.Create(t, form, map[string]any{"via": "zstd", "pad": strings.Repeat("z", 2000)})
		body2, _ := a.PushBody()
		enc, _ := zstd.NewWriter(nil)
		zbody := enc.EncodeAll(mustJSON(t, body2), nil)
		enc.Close()
		resp, rb = push(a.Token, zbody, map[string]string{"Content-Encoding": "zstd"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("zstd push: status %d; %s", resp.StatusCode, cut(rb))
		}
		pr = syncproto.PushResponse{}
		json.Unmarshal(rb, &pr)
		if err := a.Ack(body2, pr); err != nil {
			t.Error("zstd push:", err)
		}
		for _, id := range []string{id1, id2} {
			if st, v := s.GetRecord(t, s.AdminToken, id); st != http.StatusOK || !stateEqual(v.Record, a.Recs[id].State()) {
				t.Errorf("record %s pushed compressed: status %d, state %s", id, st, showState(v.Record))
			}
		}
	})
	t.Run("unsupported encoding", func(t *testing.T) {
		a.Create(t, form, map[string]any{"x": 1})
		body, _ := a.PushBody()
		resp, rb := push(a.Token, mustJSON(t, body), map[string]string{"Content-Encoding": "br"})
		wantError(t, "Content-Encoding: br", resp, rb, http.StatusUnsupportedMediaType, syncproto.CodeUnsupportedEncoding)
	})
	t.Run("compression bombs", func(t *testing.T) {
		var plain bytes.Buffer
		plain.WriteString(`{"device":"` + a.ID + `","batch":"` + newID() + `","records":[`)
		plain.Write(bytes.Repeat([]byte(" "), 33<<20))
		plain.WriteString(`]}`)
		var zb bytes.Buffer
		enc, _ := zstd.NewWriter(&zb, zstd.WithWindowSize(1<<20))
		enc.Write(plain.Bytes())
		enc.Close()
		var gz bytes.Buffer
		gw := gzip.NewWriter(&gz)
		gw.Write(plain.Bytes())
		gw.Close()
		t.Logf("bomb: %d bytes of zstd, %d of gzip, inflating to %d", zb.Len(), gz.Len(), plain.Len())
		if zb.Len() > 64<<10 || gz.Len() > 64<<10 {
			t.Fatalf("test bug: bombs of %d and %d bytes compressed", zb.Len(), gz.Len())
		}
		resp, rb := push(a.Token, zb.Bytes(), map[string]string{"Content-Encoding": "zstd"})
		wantError(t, fmt.Sprintf("zstd bomb (%d bytes → %d)", zb.Len(), plain.Len()), resp, rb, http.StatusRequestEntityTooLarge, syncproto.CodeTooLarge)
		resp, rb = push(a.Token, gz.Bytes(), map[string]string{"Content-Encoding": "gzip"})
		wantError(t, fmt.Sprintf("gzip bomb (%d bytes → %d)", gz.Len(), plain.Len()), resp, rb, http.StatusRequestEntityTooLarge, syncproto.CodeTooLarge)
		// The server still serves.
		if resp, _ := s.Do(t, http.MethodGet, "/healthz", "", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("after the bomb: /healthz %d", resp.StatusCode)
		}
	})
	t.Run("compressed responses", func(t *testing.T) {
		for range 10 {
			a.Create(t, form, map[string]any{"note": strings.Repeat("response padding ", 20)})
		}
		a.PushChanges(t)
		want, _ := s.PullAll(t, a.Token)
		for _, tc := range []struct{ accept, want string }{{"zstd, gzip", "zstd"}, {"gzip", "gzip"}, {"gzip, zstd", "zstd"}} {
			resp, rb := s.Do(t, http.MethodGet, "/v1/sync/pull?limit=1000", a.Token, nil, map[string]string{"Accept-Encoding": tc.accept})
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != tc.want {
				t.Errorf("Accept-Encoding %q: status %d, Content-Encoding %q, want %q", tc.accept, resp.StatusCode, resp.Header.Get("Content-Encoding"), tc.want)
				continue
			}
			var plain []byte
			var err error
			if tc.want == "zstd" {
				dec, _ := zstd.NewReader(nil)
				plain, err = dec.DecodeAll(rb, nil)
				dec.Close()
			} else {
				var zr *gzip.Reader
				if zr, err = gzip.NewReader(bytes.NewReader(rb)); err == nil {
					var out bytes.Buffer
					_, err = out.ReadFrom(zr)
					plain = out.Bytes()
				}
			}
			if err != nil {
				t.Errorf("Accept-Encoding %q: decoding the %s answer: %v", tc.accept, tc.want, err)
				continue
			}
			var pr syncproto.PullResponse
			if err := json.Unmarshal(plain, &pr); err != nil || len(pr.Records) != len(want) {
				t.Errorf("Accept-Encoding %q: decoded answer %v, %d records, want %d", tc.accept, err, len(pr.Records), len(want))
			}
			if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(rb)) {
				t.Errorf("Accept-Encoding %q: Content-Length %s for %d bytes sent", tc.accept, cl, len(rb))
			}
		}
		// A plain answer says its length before it is sent.
		resp, rb := s.Do(t, http.MethodGet, "/v1/sync/pull?limit=1000", a.Token, nil, map[string]string{"Accept-Encoding": "identity"})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.Itoa(len(rb)) || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("plain answer: status %d, Content-Length %q for %d bytes, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Length"), len(rb), resp.Header.Get("Content-Encoding"))
		}
	})

	// Per-item rejections.
	item := func(id, scope, frm string, clock syncproto.Clock, writes ...syncproto.Write) syncproto.State {
		return syncproto.State{ID: id, Form: frm, Scope: scope, Clock: clock, Writes: writes}
	}
	wr := func(by string, n uint64, fields map[string]any) syncproto.Write {
		f := map[string]json.RawMessage{}
		for k, v := range fields {
			f[k] = raw(v)
		}
		return syncproto.Write{By: by, N: n, At: 1730628900123 + int64(n), Fields: f}
	}
	rejectOne := func(t *testing.T, d *Device, it syncproto.State, code syncproto.Code) {
		t.Helper()
		st, pr, e := s.Push(t, d.Token, map[string]any{"device": d.ID, "batch": newID(), "records": []syncproto.State{it}})
		if st != http.StatusOK || len(pr.Results) != 1 {
			t.Fatalf("push: status %d, %+v %+v; want 200 with one result", st, pr, e)
		}
		r := pr.Results[0]
		if r.ID != it.ID || r.Status != syncproto.StatusRejected || r.Error == nil || r.Error.Code != code {
			t.Errorf("item: result %+v, want rejected %s", r, code)
		}
		found := false
		for _, q := range s.Quarantine(t) {
			if q.Record == it.ID && q.Device == d.ID && q.Error != nil && q.Error.Code == code && syncproto.EqualValues(q.Item, mustJSON(t, it)) {
				found = true
			}
		}
		if !found {
			t.Errorf("the %s item is not in the quarantine", code)
		}
	}
	baseUnchanged := func(t *testing.T) {
		t.Helper()
		if _, v := s.GetRecord(t, s.AdminToken, base); v.Seq != baseView.Seq || !stateEqual(v.Record, baseView.Record) {
			t.Errorf("a rejected item changed the record: %s", showState(v.Record))
		}
	}
	t.Run("forged clock", func(t *testing.T) {
		// B claims a write of A's that the server has not seen.
		rejectOne(t, b, item(base, scopeGON, form, syncproto.Clock{a.ID: 2, b.ID: 1}, wr(b.ID, 1, map[string]any{"notes": "x"})), syncproto.CodeForgedClock)
		baseUnchanged(t)
		// A new record may carry only the pusher's own entry.
		rejectOne(t, b, item(newID(), scopeGON, form, syncproto.Clock{a.ID: 1, b.ID: 1}, wr(b.ID, 1, map[string]any{"notes": "x"})), syncproto.CodeForgedClock)
	})
	t.Run("scope mismatch", func(t *testing.T) {
		m := s.NewDevice(t, "two scopes", scopeGON, scopeSM)
		id := m.Create(t, form, map[string]any{"x": 1})
		m.PushChanges(t)
		rejectOne(t, m, item(id, scopeSM, form, syncproto.Clock{m.ID: 2}, wr(m.ID, 2, map[string]any{"x": 2})), syncproto.CodeScopeMismatch)
		rejectOne(t, m, item(id, scopeGON, "other_form", syncproto.Clock{m.ID: 2}, wr(m.ID, 2, map[string]any{"x": 2})), syncproto.CodeScopeMismatch)
		if _, v := s.GetRecord(t, s.AdminToken, id); v.Record.Scope != scopeGON || v.Record.Form != form || v.Record.Clock[m.ID] != 1 {
			t.Errorf("record after the refused scope change: %s", showState(v.Record))
		}
	})
	t.Run("clock claims uncarried writes", func(t *testing.T) {
		rejectOne(t, a, item(newID(), scopeGON, form, syncproto.Clock{a.ID: 5}, wr(a.ID, 1, map[string]any{"x": 1})), syncproto.CodeInvalidRecord)
		rejectOne(t, a, item(base, scopeGON, form, syncproto.Clock{a.ID: 3}, wr(a.ID, 2, map[string]any{"x": 1})), syncproto.CodeInvalidRecord)
		baseUnchanged(t)
	})
	t.Run("malformed items", func(t *testing.T) {
		rejectOne(t, a, item(newID(), scopeGON, form, syncproto.Clock{a.ID: 1}, wr(a.ID, 1, map[string]any{"Age!": 1})), syncproto.CodeInvalidRecord)
		rejectOne(t, a, item(newID(), scopeGON, form, syncproto.Clock{a.ID: 1}, wr(a.ID, 2, map[string]any{"x": 1})), syncproto.CodeInvalidRecord)
		rejectOne(t, a, item(newID(), scopeGON, form, syncproto.Clock{a.ID: 1}, wr(a.ID, 1, map[string]any{"_secret": 1})), syncproto.CodeInvalidRecord)
	})

	t.Run("logs hold no tokens", func(t *testing.T) {
		log := s.Log()
		for _, tok := range []string{s.AdminToken, a.Token, b.Token} {
			if strings.Contains(log, tok) {
				t.Errorf("the server log holds a token")
			}
		}
		if !strings.Contains(log, "/v1/sync/push") {
			t.Errorf("the log has no request lines; captured %d bytes", len(log))
		}
	})
}
