package records_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

func TestQuarantineForgedClock(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	admin := s.account(auth.RoleAdmin, "root")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	lost := newUUID(t) // another device's writes, which the server never saw

	id := newUUID(t)
	forged := sp.State{ID: id, Form: "assessment", Scope: "north", Clock: sp.Clock{a.acc.ID: 1, lost: 3},
		Writes: []sp.Write{{By: a.acc.ID, N: 1, At: 1740816000000, Fields: map[string]json.RawMessage{"household_size": raw(t, 4), "head_name": raw(t, "فاطمة")}}}}
	sent, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	_, okItem := a.create("assessment", "north", map[string]any{"x": 1})
	resp := a.push(forged, okItem)
	wantStatus(t, "forged item", resp.Results[0], sp.StatusRejected, sp.CodeForgedClock)
	if resp.Results[0].ID != id {
		t.Errorf("rejected result id = %q, want %q", resp.Results[0].ID, id)
	}
	wantStatus(t, "the other item of the batch", resp.Results[1], sp.StatusApplied, "")
	if _, err := s.svc.Get(s.ctx, sup, id); sp.ErrorCode(err) != sp.CodeNotFound {
		t.Fatalf("rejected record readable: %v", err)
	}

	items, err := s.svc.ListQuarantine(s.ctx, admin, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("quarantine = %+v, want one item", items)
	}
	q := items[0]
	if q.Record != id || q.Device != a.acc.ID || q.Error == nil || q.Error.Code != sp.CodeForgedClock || q.ReceivedAt == "" {
		t.Errorf("quarantine entry = %+v", q)
	}
	if !bytes.Equal(q.Item, sent) {
		t.Errorf("quarantined item =\n%s\nwant as sent\n%s", q.Item, sent)
	}

	for _, who := range []*auth.Account{a.acc, sup, s.account(auth.RoleHQ, "hq")} {
		_, err := s.svc.ListQuarantine(s.ctx, who, "", 100)
		wantCode(t, "list quarantine by "+string(who.Role), err, sp.CodeForbidden)
		_, err = s.svc.ApplyQuarantined(s.ctx, who, q.ID)
		wantCode(t, "apply quarantined by "+string(who.Role), err, sp.CodeForbidden)
	}

	res, err := s.svc.ApplyQuarantined(s.ctx, admin, q.ID)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	wantStatus(t, "apply", *res, sp.StatusApplied, "")
	if res.ID != id || res.Seq == 0 || res.Clock[lost] != 3 {
		t.Errorf("apply result = %+v", res)
	}
	if items, err := s.svc.ListQuarantine(s.ctx, admin, "", 100); err != nil || len(items) != 0 {
		t.Errorf("quarantine after apply = %+v, %v; want empty", items, err)
	}
	v := s.get(sup, id)
	if !jsonEqual(v.Values["household_size"], raw(t, 4)) || !jsonEqual(v.Values["head_name"], raw(t, "فاطمة")) || v.Seq != res.Seq {
		t.Errorf("applied record = %+v", v)
	}
	if h := s.history(sup, id); len(h) != 1 || h[0].Actor != a.acc.ID {
		t.Errorf("history of the applied item = %+v, want one change by the device", h)
	}
	_, err = s.svc.ApplyQuarantined(s.ctx, admin, q.ID)
	wantCode(t, "apply twice", err, sp.CodeNotFound)
}

func TestQuarantineKeepsInvalidItems(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	admin := s.account(auth.RoleAdmin, "root")
	bad := []byte(`{"device":"` + a.acc.ID + `","batch":"` + newUUID(t) + `","records":[{"id":"` + newUUID(t) + `","form":"assessment","scope":"north","clock":{"` + a.acc.ID + `":1},"writes":[{"by":"` + a.acc.ID + `","n":1,"at":1,"fields":{"Age!":7}}]}, 42]}`)
	resp, err := s.svc.Push(s.ctx, a.acc, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		wantStatus(t, "invalid item", r, sp.StatusRejected, sp.CodeInvalidRecord)
	}
	items, err := s.svc.ListQuarantine(s.ctx, admin, "", 100)
	if err != nil || len(items) != 2 {
		t.Fatalf("quarantine = %d items, %v; want 2", len(items), err)
	}
	if string(items[1].Item) != "42" {
		t.Errorf("second quarantined item = %s, want 42 as sent", items[1].Item)
	}
	// Paging.
	page, err := s.svc.ListQuarantine(s.ctx, admin, items[0].ID, 100)
	if err != nil || len(page) != 1 || page[0].ID != items[1].ID {
		t.Errorf("quarantine after the first = %+v, %v", page, err)
	}
}
