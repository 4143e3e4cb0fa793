package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// TestFreshPathMatchesMerge holds the prepared path for new records to
// what the merge writes: each item is pushed as a new record twice, under
// two ids, once prepared before the transaction and once merged in it; the
// answers, the stored states and the histories must be the same.
func TestFreshPathMatchesMerge(t *testing.T) {
	s := newServer(t)
	dev := s.tablet("tablet A", "north").acc
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	v := func(x any) json.RawMessage { return raw(t, x) }
	items := map[string]sp.State{
		"one write": {Clock: sp.Clock{dev.ID: 1}, Writes: []sp.Write{
			{By: dev.ID, N: 1, At: 1000, Fields: map[string]json.RawMessage{"head_name": v("فاطمة"), "household_size": v(5), "gps": v(map[string]float64{"lat": 28.9})}}}},
		"later writes overwrite": {Clock: sp.Clock{dev.ID: 3}, Writes: []sp.Write{
			{By: dev.ID, N: 1, At: 1000, Fields: map[string]json.RawMessage{"household_size": v(5), "sector": v("crafts")}},
			{By: dev.ID, N: 3, At: 3000, Fields: map[string]json.RawMessage{"household_size": v(6)}}}},
		"deleted": {Clock: sp.Clock{dev.ID: 2}, Writes: []sp.Write{
			{By: dev.ID, N: 1, At: 1000, Fields: map[string]json.RawMessage{"notes": v("x")}},
			{By: dev.ID, N: 2, At: 2000, Fields: map[string]json.RawMessage{sp.FieldDeleted: v(true)}, Ctx: sp.Clock{dev.ID: 1}}}},
		"edit after an unseen delete": {Clock: sp.Clock{dev.ID: 3}, Writes: []sp.Write{
			{By: dev.ID, N: 2, At: 2000, Fields: map[string]json.RawMessage{sp.FieldDeleted: v(true)}, Ctx: sp.Clock{dev.ID: 1}},
			{By: dev.ID, N: 3, At: 1500, Fields: map[string]json.RawMessage{"notes": v("y")}}}},
		"values spelled loosely": {Clock: sp.Clock{dev.ID: 1}, Writes: []sp.Write{
			{By: dev.ID, N: 1, At: 1000, Fields: map[string]json.RawMessage{"a": json.RawMessage(`{ "z": 1.50, "y" : [ 1 ] }`), "b": json.RawMessage(`1e3`)}}}},
	}
	push := func(st sp.State) sp.PushResult {
		t.Helper()
		resp, err := s.svc.Push(s.ctx, dev, pushBody(t, dev.ID, st))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Results[0]
	}
	for name, it := range items {
		it.Form, it.Scope = "assessment", "north"
		fresh, merged := it, it
		fresh.ID, merged.ID = newUUID(t), newUUID(t)
		resFresh := push(fresh)
		restore := records.SetPreparePath(false)
		resMerged := push(merged)
		restore()

		resFresh.ID, resFresh.Seq, resMerged.ID, resMerged.Seq = "", 0, "", 0
		if !reflect.DeepEqual(resFresh, resMerged) {
			t.Errorf("%s: answers differ:\nprepared %+v\n  merged %+v", name, resFresh, resMerged)
		}
		viewFresh, viewMerged := s.get(sup, fresh.ID), s.get(sup, merged.ID)
		a, b := string(raw(t, viewFresh)), string(raw(t, viewMerged))
		a = strings.ReplaceAll(a, fresh.ID, merged.ID)
		a = strings.ReplaceAll(a, `"seq":`+jsonNumber(viewFresh.Seq), `"seq":`+jsonNumber(viewMerged.Seq))
		if a != b {
			t.Errorf("%s: stored records differ:\nprepared %s\n  merged %s", name, a, b)
		}
		hf, hm := s.history(sup, fresh.ID), s.history(sup, merged.ID)
		if len(hf) != 1 || len(hm) != 1 {
			t.Fatalf("%s: history entries %d and %d, want 1 each", name, len(hf), len(hm))
		}
		hf[0].Seq, hm[0].Seq, hf[0].Batch, hm[0].Batch = 0, 0, "", ""
		if !reflect.DeepEqual(hf, hm) {
			t.Errorf("%s: histories differ:\nprepared %+v\n  merged %+v", name, hf, hm)
		}
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestPushAdmissionQueues pushes from several devices at once through a
// service that admits one full batch of records at a time (PushInFlight 1
// is raised to sp.MaxBatchItems). Each push holds more than half of that,
// so no two are admitted together and every push but one must wait its
// turn: every push is answered, every record stored once, and a push
// whose caller has gone is refused without being applied.
func TestPushAdmissionQueues(t *testing.T) {
	s := newServer(t)
	s.svc = records.NewService(s.st, records.Options{Now: s.clock.Now, PushInFlight: 1})
	const devices, batches, items = 3, 2, sp.MaxBatchItems/2 + 100
	var wg sync.WaitGroup
	errs := make(chan error, devices*batches)
	for d := range devices {
		dev := s.tablet(fmt.Sprintf("tablet %d", d), "north")
		bodies := make([][]byte, batches)
		for b := range bodies {
			var its []sp.State
			for range items {
				_, it := dev.create("assessment", "north", map[string]any{"household_size": b})
				its = append(its, it)
			}
			bodies[b] = pushBody(t, dev.acc.ID, its...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range bodies {
				resp, err := s.svc.Push(s.ctx, dev.acc, body)
				if err == nil && len(resp.Results) != items {
					err = fmt.Errorf("%d results", len(resp.Results))
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.lastSeq(); got != devices*batches*items {
		t.Errorf("last seq %d, want %d", got, devices*batches*items)
	}

	gone, cancel := context.WithCancel(s.ctx)
	cancel()
	dev := s.tablet("tablet late", "north")
	_, it := dev.create("assessment", "north", map[string]any{"household_size": 1})
	if _, err := s.svc.Push(gone, dev.acc, pushBody(t, dev.acc.ID, it)); err == nil {
		t.Error("a push whose caller has gone was applied")
	}
	if got := s.lastSeq(); got != devices*batches*items {
		t.Errorf("last seq %d after the refused push, want %d", got, devices*batches*items)
	}
}

// TestNewRecordTwiceInOneBatch pushes a new record and an edit of it in
// the same batch: the first is prepared as new, the second finds it in the
// transaction and is merged; both are answered, and the history has both.
func TestNewRecordTwiceInOneBatch(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	id, created := a.create("assessment", "north", map[string]any{"household_size": 5, "sector": "crafts"})
	edited := a.save(id, map[string]any{"household_size": 6})
	resp := a.push(created, edited)
	if len(resp.Results) != 2 {
		t.Fatalf("%d results", len(resp.Results))
	}
	for i, r := range resp.Results {
		wantStatus(t, fmt.Sprintf("item %d", i), r, sp.StatusApplied, "")
	}
	if resp.Results[0].Seq != resp.Results[1].Seq {
		t.Errorf("one record changed twice in a transaction got seqs %d and %d", resp.Results[0].Seq, resp.Results[1].Seq)
	}
	v := s.get(sup, id)
	if string(v.Values["household_size"]) != "6" || string(v.Values["sector"]) != `"crafts"` {
		t.Errorf("values %s", raw(t, v.Values))
	}
	if h := s.history(sup, id); len(h) != 2 {
		t.Errorf("history has %d entries, want 2", len(h))
	}
}

// TestHeldPathMatchesMerge holds edits merged before the transaction (the
// record as a snapshot held it) to edits merged in it: two identical
// records go through the same steps, one prepared and one not; the
// answers, the stored records and the histories must be the same.
func TestHeldPathMatchesMerge(t *testing.T) {
	s := newServer(t)
	a, b := s.tablet("tablet A", "north").acc, s.tablet("tablet B", "north").acc
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	v := func(x any) json.RawMessage { return raw(t, x) }
	w1 := sp.Write{By: a.ID, N: 1, At: 1000, Fields: map[string]json.RawMessage{"household_size": v(5), "sector": v("crafts")}}
	// What is left of w1 on a tablet once household_size is written again.
	w1Left := sp.Write{By: a.ID, N: 1, At: 1000, Fields: map[string]json.RawMessage{"sector": v("crafts")}}
	wA2 := sp.Write{By: a.ID, N: 2, At: 2000, Fields: map[string]json.RawMessage{"household_size": v(6)}}
	wB1 := sp.Write{By: b.ID, N: 1, At: 1500, Fields: map[string]json.RawMessage{"household_size": v(7)}}
	state := func(clock sp.Clock, writes ...sp.Write) sp.State {
		return sp.State{Form: "assessment", Scope: "north", Clock: clock, Writes: writes}
	}
	steps := []struct {
		name string
		by   *auth.Account
		item sp.State
		want string
	}{
		{"created", a, state(sp.Clock{a.ID: 1}, w1), sp.StatusApplied},
		{"edited", a, state(sp.Clock{a.ID: 2}, w1Left, wA2), sp.StatusApplied},
		{"edited concurrently", b, state(sp.Clock{a.ID: 1, b.ID: 1}, w1Left, wB1), sp.StatusConflict},
		{"pushed again", b, state(sp.Clock{a.ID: 1, b.ID: 1}, w1Left, wB1), sp.StatusUnchanged},
		{"forged clock", b, state(sp.Clock{a.ID: 9, b.ID: 2}, sp.Write{By: b.ID, N: 2, At: 1600, Fields: map[string]json.RawMessage{"sector": v("x")}}), sp.StatusRejected},
		{"review by a device", a, state(sp.Clock{a.ID: 3}, sp.Write{By: a.ID, N: 3, At: 2500, Fields: map[string]json.RawMessage{sp.FieldReview: v(map[string]string{"state": "approved"})}}), sp.StatusRejected},
		{"form changed", a, func() sp.State {
			st := state(sp.Clock{a.ID: 3}, sp.Write{By: a.ID, N: 3, At: 2600, Fields: map[string]json.RawMessage{"x": v(1)}})
			st.Form = "other"
			return st
		}(), sp.StatusRejected},
		{"deleted", a, state(sp.Clock{a.ID: 3, b.ID: 1}, sp.Write{By: a.ID, N: 3, At: 3000, Fields: map[string]json.RawMessage{sp.FieldDeleted: v(true)}, Ctx: sp.Clock{a.ID: 2, b.ID: 1}}), sp.StatusConflict},
	}
	ids := [2]string{newUUID(t), newUUID(t)}
	for _, step := range steps {
		s.clock.Advance(time.Minute) // so that kept and new times differ
		var res [2]sp.PushResult
		for i, id := range ids {
			item := step.item
			item.ID = id
			restore := records.SetPreparePath(i == 0)
			resp, err := s.svc.Push(s.ctx, step.by, pushBody(t, step.by.ID, item))
			restore()
			if err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			res[i] = resp.Results[0]
			res[i].ID, res[i].Seq = "", 0
		}
		if !reflect.DeepEqual(res[0], res[1]) {
			t.Errorf("%s: answers differ:\nprepared %+v\n  merged %+v", step.name, res[0], res[1])
		}
		if got := res[0].Status; got != step.want {
			t.Errorf("%s: status %s, want %s (%v)", step.name, got, step.want, res[0].Error)
		}
		views := [2]string{}
		for i, id := range ids {
			view := s.get(sup, id)
			views[i] = strings.ReplaceAll(string(raw(t, view)), id, "ID")
			views[i] = strings.ReplaceAll(views[i], `"seq":`+jsonNumber(view.Seq), `"seq":0`)
		}
		if views[0] != views[1] {
			t.Errorf("%s: stored records differ:\nprepared %s\n  merged %s", step.name, views[0], views[1])
		}
		hp, hm := s.history(sup, ids[0]), s.history(sup, ids[1])
		for _, h := range [][]records.HistoryEntry{hp, hm} {
			for i := range h {
				h[i].Seq, h[i].Batch = 0, ""
			}
		}
		if !reflect.DeepEqual(hp, hm) {
			t.Errorf("%s: histories differ:\nprepared %+v\n  merged %+v", step.name, hp, hm)
		}
	}
	if v := s.get(sup, ids[0]); !v.Deleted || v.ConflictKind == "" {
		t.Errorf("the steps did not end in a delete with a conflict: deleted %v, conflict %q", v.Deleted, v.ConflictKind)
	}
}
