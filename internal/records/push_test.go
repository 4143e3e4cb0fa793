package records_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

func TestPushBatchRetry(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	r1, i1 := a.create("assessment", "north", map[string]any{"household_size": 5})
	_, i2 := a.create("assessment", "north", map[string]any{"household_size": 6})
	batch := newUUID(t)
	body := pushBodyBatch(t, a.acc.ID, batch, i1, i2)
	first, err := s.svc.Push(s.ctx, a.acc, body)
	if err != nil {
		t.Fatal(err)
	}
	if first.Batch != batch || len(first.Results) != 2 {
		t.Fatalf("push = %+v", first)
	}
	for _, r := range first.Results {
		wantStatus(t, "first push", r, sp.StatusApplied, "")
	}
	seq, hist := s.lastSeq(), len(s.history(sup, r1))

	// The same body again, and the same records re-spelled (key order,
	// white space): the same answer, nothing written.
	wantRetriesAnswered(t, s, a.acc, body, first)
	if s.lastSeq() != seq || len(s.history(sup, r1)) != hist {
		t.Errorf("retries wrote: seq %d (was %d), history %d (was %d)", s.lastSeq(), seq, len(s.history(sup, r1)), hist)
	}

	// The same batch id with other records is refused.
	_, i3 := a.create("assessment", "north", map[string]any{"household_size": 7})
	_, err = s.svc.Push(s.ctx, a.acc, pushBodyBatch(t, a.acc.ID, batch, i1, i3))
	wantCode(t, "batch reused", err, sp.CodeBatchReused)
	_, err = s.svc.Push(s.ctx, a.acc, pushBodyBatch(t, a.acc.ID, batch, i1))
	wantCode(t, "batch reused with fewer records", err, sp.CodeBatchReused)
	if s.lastSeq() != seq {
		t.Errorf("refused batch wrote: seq %d (was %d)", s.lastSeq(), seq)
	}

	// An unchanged item answers with the seq the record already has.
	again := a.push1(i1)
	wantStatus(t, "old state again in a new batch", again, sp.StatusUnchanged, "")
	if again.Seq != first.Results[0].Seq {
		t.Errorf("unchanged seq = %d, want %d", again.Seq, first.Results[0].Seq)
	}

	// A push in another device's name is refused.
	b := s.tablet("tablet B", "north")
	_, err = s.svc.Push(s.ctx, b.acc, pushBody(t, a.acc.ID, i3))
	wantCode(t, "push for another device", err, sp.CodeForbidden)
	_, err = s.svc.Push(s.ctx, sup, pushBody(t, sup.ID, i3))
	wantCode(t, "push by a supervisor", err, sp.CodeForbidden)
}

// A batch whose answer was kept with a version 1 hash (SHA-256, before
// version 2) is still answered on a retry, re-spelled or not, and still
// refused with other records.
func TestPushRetryOfBatchKeptWithVersion1Hash(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	_, i1 := a.create("assessment", "north", map[string]any{"household_size": 5})
	_, i2 := a.create("assessment", "north", map[string]any{"household_size": 6})
	batch := newUUID(t)
	body := pushBodyBatch(t, a.acc.ID, batch, i1, i2)
	first, err := s.svc.Push(s.ctx, a.acc, body)
	if err != nil {
		t.Fatal(err)
	}
	var req sp.PushRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	legacy, err := records.LegacyBatchHash(req.Records, a.acc, batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.Update(s.ctx, func(tx records.Tx) error {
		kept, err := tx.Batch(a.acc.ID, batch)
		if err != nil || kept == nil {
			t.Fatalf("kept answer: %v, %v", kept, err)
		}
		if len(kept.Hash) != 33 || kept.Hash[0] != 2 {
			t.Errorf("a new batch is kept with hash %x, want version 2 (33 bytes, first 2)", kept.Hash)
		}
		kept.Hash = legacy
		return tx.PutBatch(a.acc.ID, batch, kept)
	}); err != nil {
		t.Fatal(err)
	}
	seq := s.lastSeq()
	wantRetriesAnswered(t, s, a.acc, body, first)
	_, i3 := a.create("assessment", "north", map[string]any{"household_size": 7})
	_, err = s.svc.Push(s.ctx, a.acc, pushBodyBatch(t, a.acc.ID, batch, i1, i3))
	wantCode(t, "batch reused", err, sp.CodeBatchReused)
	if s.lastSeq() != seq {
		t.Errorf("retries wrote: seq %d, was %d", s.lastSeq(), seq)
	}
}

// wantRetriesAnswered pushes body again, as it is and re-spelled (white
// space), and wants the first answer both times.
func wantRetriesAnswered(t *testing.T, s *server, acc *auth.Account, body []byte, first *sp.PushResponse) {
	t.Helper()
	var indented bytes.Buffer
	if err := json.Indent(&indented, body, "", "   "); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"same bytes": body, "re-spelled": indented.Bytes()} {
		again, err := s.svc.Push(s.ctx, acc, b)
		if err != nil {
			t.Fatalf("retry (%s): %v", name, err)
		}
		if !reflect.DeepEqual(again, first) {
			t.Errorf("retry (%s) answer = %+v, want the first %+v", name, again, first)
		}
	}
}

func TestPushItemRejections(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	admin := s.account(auth.RoleAdmin, "root")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")

	ok, okItem := a.create("assessment", "north", map[string]any{"x": 1})
	_, southItem := a.create("assessment", "south", map[string]any{"x": 2})
	resp := a.push(southItem, okItem)
	wantStatus(t, "item in a scope the device lacks", resp.Results[0], sp.StatusRejected, sp.CodeForbidden)
	wantStatus(t, "the other item", resp.Results[1], sp.StatusApplied, "")
	if resp.Results[1].ID != ok {
		t.Errorf("result id = %s, want %s", resp.Results[1].ID, ok)
	}

	// A device writing a _review sibling, on a new and on an existing record.
	_, rev := a.create("assessment", "north", map[string]any{"_review": map[string]any{"state": "approved", "note": "", "by": "me"}, "x": 1})
	wantStatus(t, "device's own _review on a new record", a.push1(rev), sp.StatusRejected, sp.CodeForbidden)
	rev = a.save(ok, map[string]any{"_review": map[string]any{"state": "approved", "note": "", "by": "me"}})
	res := a.push1(rev)
	if res.Status != sp.StatusRejected {
		t.Fatalf("device's own _review on an existing record: %+v, want rejected", res)
	}
	if v := s.get(sup, ok); v.Review != nil {
		t.Errorf("a device's review was applied: %+v", v.Review)
	}

	// Another reserved name, and a form change.
	bad := a.save(ok, map[string]any{"y": 1})
	bad.Writes[0].Fields["_secret"] = raw(t, 1)
	wantStatus(t, "reserved name", a.push1(bad), sp.StatusRejected, sp.CodeInvalidRecord)
	moved := a.save(ok, map[string]any{"y": 2})
	moved.Form = "visit"
	wantStatus(t, "form change", a.push1(moved), sp.StatusRejected, sp.CodeScopeMismatch)

	// A count for the pushing device that claims writes the item does not
	// carry.
	_, claim := a.create("assessment", "north", map[string]any{"x": 1})
	claim.Clock[a.acc.ID] = 3
	wantStatus(t, "own count above its writes", a.push1(claim), sp.StatusRejected, sp.CodeInvalidRecord)

	// Every rejection is in the quarantine.
	items, err := s.svc.ListQuarantine(s.ctx, admin, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []sp.Code{sp.CodeForbidden, sp.CodeForbidden, res.Error.Code, sp.CodeInvalidRecord, sp.CodeScopeMismatch, sp.CodeInvalidRecord}
	if len(items) != len(want) {
		t.Fatalf("quarantine holds %d items, want %d", len(items), len(want))
	}
	for i, q := range items {
		if q.Error == nil || q.Error.Code != want[i] || q.Device != a.acc.ID {
			t.Errorf("quarantine[%d] = %+v, want code %s", i, q, want[i])
		}
	}
}

// Two items for one record in one batch: one new seq for the record.
func TestPushOneSeqPerRecordPerBatch(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	id, create := a.create("assessment", "north", map[string]any{"x": 1})
	edit := a.save(id, map[string]any{"x": 2})
	other, otherItem := a.create("assessment", "north", map[string]any{"x": 3})
	before := s.lastSeq()
	resp := a.push(create, edit, otherItem)
	for _, r := range resp.Results {
		wantStatus(t, "item", r, sp.StatusApplied, "")
	}
	if r := resp.Results; r[0].Seq != r[1].Seq || r[2].Seq == r[0].Seq {
		t.Errorf("seqs = %d, %d, %d; want one seq for %s and another for %s", r[0].Seq, r[1].Seq, r[2].Seq, id, other)
	}
	if got := s.lastSeq(); got != before+2 {
		t.Errorf("last seq %d after a batch changing two records, want %d", got, before+2)
	}
	if v := s.get(sup, id); !jsonEqual(v.Values["x"], raw(t, 2)) || v.Seq != resp.Results[1].Seq {
		t.Errorf("record after the batch = %+v", v)
	}
	if h := s.history(sup, id); len(h) != 2 || h[0].Seq != h[1].Seq {
		t.Errorf("history = %+v, want two changes at the same seq", h)
	}
}
