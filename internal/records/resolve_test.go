package records_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

func TestResolve(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	b := s.tablet("tablet B", "north")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	const field = "monthly_income_mad"
	id := makeConflict(t, a, b, "assessment", "north", field, 1200, 1500)
	aBefore, bBefore := a.local[id], b.local[id] // the tablets' states, each holding its own sibling

	seen := s.get(sup, id)
	seqBefore := seen.Seq
	stale := seen.Record.Clock.Copy()
	stale[b.acc.ID]--
	if stale[b.acc.ID] == 0 {
		delete(stale, b.acc.ID)
	}
	choose := map[string]json.RawMessage{field: raw(t, 1350)}

	_, err := s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: stale, Values: choose, Note: "x"})
	wantCode(t, "stale clock", err, sp.CodeStaleResolution)
	_, err = s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: seen.Record.Clock, Values: map[string]json.RawMessage{}, Note: "x"})
	wantCode(t, "no value for the conflicted field", err, sp.CodeBadRequest)
	_, err = s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: seen.Record.Clock, Values: map[string]json.RawMessage{"head_name": raw(t, "x")}, Note: "x"})
	wantCode(t, "a value for another field only", err, sp.CodeBadRequest)
	for _, who := range []*auth.Account{
		s.account(auth.RoleHQ, "hq"),
		a.acc,
		s.account(auth.RoleSupervisor, "Youssef", "east"),
	} {
		_, err = s.svc.Resolve(s.ctx, who, id, records.Resolution{Clock: seen.Record.Clock, Values: choose, Note: "x"})
		wantCode(t, "resolve by "+string(who.Role)+" "+who.Name, err, sp.CodeForbidden)
	}
	if s.get(sup, id).Seq != seqBefore {
		t.Fatal("a refused resolution changed the record")
	}

	s.clock.Advance(time.Hour)
	const note = "called the household: 1350 MAD"
	v, err := s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: seen.Record.Clock, Values: choose, Note: note})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if len(v.Conflicts) != 0 || v.ConflictKind != "" || v.ConflictSince != "" {
		t.Errorf("after resolve: conflicts %+v kind %q since %q, want none", v.Conflicts, v.ConflictKind, v.ConflictSince)
	}
	if !jsonEqual(v.Values[field], raw(t, 1350)) {
		t.Errorf("value = %s, want 1350", v.Values[field])
	}
	if !jsonEqual(v.Values["head_name"], raw(t, "فاطمة")) {
		t.Errorf("untouched field = %s, want فاطمة", v.Values["head_name"])
	}
	if v.Seq <= seqBefore {
		t.Errorf("seq %d, want above %d", v.Seq, seqBefore)
	}
	// One new write by the supervisor's actor, its clock entry 1, at = server
	// time; the other clock entries as they were.
	wantClock := seen.Record.Clock.Copy()
	wantClock[sup.ID] = 1
	if !v.Record.Clock.Equal(wantClock) {
		t.Errorf("clock = %v, want %v", v.Record.Clock, wantClock)
	}
	var supWrites []sp.Write
	for _, w := range v.Record.Writes {
		if w.By == sup.ID {
			supWrites = append(supWrites, w)
		}
	}
	if len(supWrites) != 1 || supWrites[0].N != 1 || supWrites[0].At != s.clock.Now().UnixMilli() ||
		!slices.Equal(sortedKeys(supWrites[0].Fields), []string{field}) {
		t.Errorf("supervisor's writes = %+v, want one (n 1, at %d) of %s", supWrites, s.clock.Now().UnixMilli(), field)
	}
	if sibs := sp.FromState(v.Record).Fields[field]; len(sibs) != 1 || sibs[0].By != sup.ID {
		t.Errorf("siblings of %s after resolve = %+v, want only the supervisor's", field, sibs)
	}
	if g := s.get(sup, id); g.Seq != v.Seq || len(g.Conflicts) != 0 {
		t.Errorf("Get after resolve = seq %d conflicts %+v", g.Seq, g.Conflicts)
	}

	h := s.history(sup, id)
	last := h[len(h)-1]
	if last.Kind != records.KindResolve || last.Note != note || last.Actor != sup.ID || last.Seq != v.Seq ||
		!slices.Equal(last.Fields, []string{field}) || !jsonEqual(last.Values[field], raw(t, 1350)) {
		t.Errorf("last history entry = %+v, want kind resolve by the supervisor with the note", last)
	}
	if got := conflictIDs(s.conflicts(sup, records.ConflictQuery{})); len(got) != 0 {
		t.Errorf("queue after resolve = %v, want empty", got)
	}

	// The tablets pull the resolution; joined with their own older
	// states, nothing is left in conflict.
	for _, d := range []*tablet{a, b} {
		got := d.pull()
		if len(got) != 1 || got[0].ID != id || got[0].Seq != v.Seq {
			t.Fatalf("%s pulled %+v, want the resolved record at seq %d", d.acc.Name, got, v.Seq)
		}
		pulled := sp.FromState(got[0].State)
		for name, old := range map[string]*sp.Record{"before": map[*tablet]*sp.Record{a: aBefore, b: bBefore}[d], "local": d.local[id]} {
			j := sp.Join(old, pulled)
			an := sp.Analyze(j)
			if an.HasConflict() || !jsonEqual(an.Visible[field], raw(t, 1350)) {
				t.Errorf("%s: join of its %s state with the pulled one: conflicts %v, value %s", d.acc.Name, name, an.ConflictFields(), an.Visible[field])
			}
		}
	}

	// Resolving again with the old clock is stale.
	_, err = s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: seen.Record.Clock, Values: choose})
	wantCode(t, "second resolution with the old clock", err, sp.CodeStaleResolution)
}

// deleteEdit makes a record that a deletes while b edits y concurrently;
// deleteFirst says which push reaches the server first. It returns the id
// and the second push's result.
func deleteEdit(t *testing.T, s *server, a, b *tablet, deleteFirst bool) (string, sp.PushResult) {
	t.Helper()
	id, item := a.create("assessment", "north", map[string]any{"x": 1, "y": 1})
	wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
	b.pull()
	del := a.del(id)
	edit := b.save(id, map[string]any{"y": 2})
	if deleteFirst {
		wantStatus(t, "delete", a.push1(del), sp.StatusApplied, "")
		return id, b.push1(edit)
	}
	wantStatus(t, "edit", b.push1(edit), sp.StatusApplied, "")
	return id, a.push1(del)
}

func TestDeleteEdit(t *testing.T) {
	for _, deleteFirst := range []bool{true, false} {
		name := map[bool]string{true: "delete first", false: "edit first"}[deleteFirst]
		t.Run(name, func(t *testing.T) {
			s := newServer(t)
			a := s.tablet("tablet A", "north")
			b := s.tablet("tablet B", "north")
			sup := s.account(auth.RoleSupervisor, "Amina", "north")
			id, res := deleteEdit(t, s, a, b, deleteFirst)
			wantStatus(t, "second push", res, sp.StatusConflict, "")
			if !slices.Equal(res.Conflicts, []string{"_deleted", "y"}) {
				t.Errorf("conflicts = %v, want [_deleted y]", res.Conflicts)
			}
			page := s.conflicts(sup, records.ConflictQuery{})
			if len(page.Conflicts) != 1 {
				t.Fatalf("queue = %v, want the record", conflictIDs(page))
			}
			e := page.Conflicts[0]
			if e.Record != id || e.Kind != "delete_edit" || !slices.Equal(sortedKeys(e.Fields), []string{"_deleted", "y"}) {
				t.Errorf("entry = kind %q fields %v, want delete_edit with _deleted and y", e.Kind, sortedKeys(e.Fields))
			}
			v := s.get(sup, id)
			if !v.Deleted || v.ConflictKind != "delete_edit" {
				t.Errorf("Get: deleted %v kind %q, want deleted with a delete_edit conflict", v.Deleted, v.ConflictKind)
			}
			if _, ok := v.Conflicts["_deleted"]; ok {
				t.Errorf("Get conflicts hold a reserved field: %v (PROTOCOL.md §4: non-reserved only)", sortedKeys(v.Conflicts))
			}
		})
	}
}

func TestResolveDeleteEdit(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	b := s.tablet("tablet B", "north")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")

	// Restore: _deleted false.
	id, res := deleteEdit(t, s, a, b, true)
	wantStatus(t, "delete_edit", res, sp.StatusConflict, "")
	seen := s.get(sup, id)
	_, err := s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: seen.Record.Clock, Values: map[string]json.RawMessage{"y": raw(t, 2)}})
	wantCode(t, "delete_edit resolution without _deleted", err, sp.CodeBadRequest)
	_, err = s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: seen.Record.Clock, Values: map[string]json.RawMessage{}})
	wantCode(t, "delete_edit resolution with no values", err, sp.CodeBadRequest)

	v, err := s.svc.Resolve(s.ctx, sup, id, records.Resolution{Clock: seen.Record.Clock, Values: map[string]json.RawMessage{"_deleted": raw(t, false)}, Note: "the household is still there"})
	if err != nil {
		t.Fatalf("resolve _deleted false: %v", err)
	}
	g := s.get(sup, id)
	if g.Deleted || g.ConflictKind != "" || len(g.Conflicts) != 0 || g.Seq != v.Seq {
		t.Errorf("after restore: deleted %v kind %q conflicts %v", g.Deleted, g.ConflictKind, g.Conflicts)
	}
	if !jsonEqual(g.Values["y"], raw(t, 2)) || !jsonEqual(g.Values["x"], raw(t, 1)) {
		t.Errorf("after restore: values %v, want x 1 and y 2", g.Values)
	}
	if got := conflictIDs(s.conflicts(sup, records.ConflictQuery{})); len(got) != 0 {
		t.Errorf("queue after restore = %v", got)
	}

	// Keep the delete: _deleted true, with ctx = the given clock.
	id2, res := deleteEdit(t, s, a, b, false)
	wantStatus(t, "delete_edit 2", res, sp.StatusConflict, "")
	seen = s.get(sup, id2)
	v, err = s.svc.Resolve(s.ctx, sup, id2, records.Resolution{Clock: seen.Record.Clock, Values: map[string]json.RawMessage{"_deleted": raw(t, true)}, Note: "duplicate file"})
	if err != nil {
		t.Fatalf("resolve _deleted true: %v", err)
	}
	if !v.Deleted || v.ConflictKind != "" || len(v.Conflicts) != 0 {
		t.Errorf("after keeping the delete: deleted %v kind %q conflicts %v", v.Deleted, v.ConflictKind, v.Conflicts)
	}
	for _, w := range v.Record.Writes {
		if w.By == sup.ID && !w.Ctx.Equal(seen.Record.Clock) {
			t.Errorf("supervisor's delete ctx = %v, want the given clock %v", w.Ctx, seen.Record.Clock)
		}
	}
	if got := conflictIDs(s.conflicts(sup, records.ConflictQuery{})); len(got) != 0 {
		t.Errorf("queue after keeping the delete = %v", got)
	}
	if h := s.history(sup, id2); h[len(h)-1].Kind != records.KindResolve || h[len(h)-1].Note != "duplicate file" {
		t.Errorf("last history entry = %+v", h[len(h)-1])
	}
}
