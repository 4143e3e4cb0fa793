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

// makeConflict has tablet a create a record, b pull it, then both change
// field concurrently to different values, a first; b's push reports the
// conflict. It returns the record's id.
func makeConflict(t *testing.T, a, b *tablet, form, scope, field string, va, vb any) string {
	t.Helper()
	id, item := a.create(form, scope, map[string]any{field: 0, "head_name": "فاطمة"})
	wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
	b.pull()
	wantStatus(t, "a's edit", a.push1(a.save(id, map[string]any{field: va})), sp.StatusApplied, "")
	res := b.push1(b.save(id, map[string]any{field: vb}))
	wantStatus(t, "b's concurrent edit", res, sp.StatusConflict, "")
	if !slices.Equal(res.Conflicts, []string{field}) {
		t.Fatalf("conflicts = %v, want [%s]", res.Conflicts, field)
	}
	return id
}

func TestConflictQueue(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north", "south")
	b := s.tablet("tablet B", "north", "south")
	sup := s.account(auth.RoleSupervisor, "Amina", "north", "south")

	r1 := makeConflict(t, a, b, "assessment", "north", "monthly_income_mad", 1200, 1500)
	detected1 := s.clock.Now()
	s.clock.Advance(time.Minute)
	r2 := makeConflict(t, a, b, "visit", "north", "household_size", 5, 6)
	s.clock.Advance(time.Minute)
	r3 := makeConflict(t, a, b, "assessment", "south", "household_size", 3, 4)
	s.clock.Advance(time.Minute)

	// A later push to r1 that leaves the conflict in place keeps its
	// detection time: r1 stays the oldest.
	b.pull()
	res := b.push1(b.save(r1, map[string]any{"notes": "revisited"}))
	wantStatus(t, "r1 unrelated edit", res, sp.StatusConflict, "")
	if !slices.Equal(res.Conflicts, []string{"monthly_income_mad"}) {
		t.Errorf("unrelated edit: conflicts %v, want every conflicted field of the record [monthly_income_mad]", res.Conflicts)
	}

	// A record whose concurrent writes touch different fields holds no
	// conflict and is not in the queue.
	soft, item := a.create("assessment", "north", map[string]any{"x": 1})
	wantStatus(t, "soft create", a.push1(item), sp.StatusApplied, "")
	b.pull()
	wantStatus(t, "soft a", a.push1(a.save(soft, map[string]any{"x": 2})), sp.StatusApplied, "")
	wantStatus(t, "soft b", b.push1(b.save(soft, map[string]any{"y": 3})), sp.StatusApplied, "")
	if h := s.history(sup, soft); !h[len(h)-1].MergedConcurrent {
		t.Errorf("soft conflict: last history entry %+v, want merged_concurrent", h[len(h)-1])
	}

	page := s.conflicts(sup, records.ConflictQuery{})
	if got := conflictIDs(page); !slices.Equal(got, []string{r1, r2, r3}) {
		t.Fatalf("queue = %v, want [r1 r2 r3] oldest first", got)
	}
	if page.Next != "" {
		t.Errorf("a complete page has next %q, want empty", page.Next)
	}

	e := page.Conflicts[0]
	view := s.get(sup, r1)
	if e.Kind != "fields" || e.Form != "assessment" || e.Scope != "north" || e.Seq != view.Seq || !e.Clock.Equal(view.Record.Clock) {
		t.Errorf("entry = %+v, want kind fields, assessment/north, the record's seq %d and clock %v", e, view.Seq, view.Record.Clock)
	}
	if e.DetectedAt != sp.Timestamp(detected1) {
		t.Errorf("detected_at = %s, want %s", e.DetectedAt, sp.Timestamp(detected1))
	}
	if got := sortedKeys(e.Fields); !slices.Equal(got, []string{"monthly_income_mad"}) {
		t.Fatalf("fields = %v, want [monthly_income_mad]", got)
	}
	sibs := e.Fields["monthly_income_mad"]
	if len(sibs) != 2 {
		t.Fatalf("siblings = %+v, want 2", sibs)
	}
	byName := map[string]json.RawMessage{}
	for _, sb := range sibs {
		byName[sb.ByName] = sb.V
		if sb.ByRole != string(auth.RoleDevice) {
			t.Errorf("sibling %+v: by_role %q, want device", sb, sb.ByRole)
		}
		if (sb.ByName == "tablet A") != (sb.By == a.acc.ID) {
			t.Errorf("sibling %+v: by_name does not match by", sb)
		}
	}
	if !jsonEqual(byName["tablet A"], raw(t, 1200)) || !jsonEqual(byName["tablet B"], raw(t, 1500)) {
		t.Errorf("siblings by name = %s / %s, want tablet A 1200 and tablet B 1500", byName["tablet A"], byName["tablet B"])
	}
	// b wrote last (the later at): its value is the visible one.
	if v := e.Visible["monthly_income_mad"]; !jsonEqual(v, raw(t, 1500)) {
		t.Errorf("visible = %s, want 1500 (last writer wins)", v)
	}
	if v := view.Values["monthly_income_mad"]; !jsonEqual(v, raw(t, 1500)) {
		t.Errorf("Get values = %s, want 1500", v)
	}
	if view.ConflictKind != "fields" || len(view.Conflicts["monthly_income_mad"]) != 2 {
		t.Errorf("Get conflict = %q %+v", view.ConflictKind, view.Conflicts)
	}

	// Filters.
	for _, tc := range []struct {
		scope, form string
		want        []string
	}{
		{"north", "", []string{r1, r2}},
		{"south", "", []string{r3}},
		{"", "assessment", []string{r1, r3}},
		{"north", "visit", []string{r2}},
		{"south", "visit", []string{}},
	} {
		got := conflictIDs(s.conflicts(sup, records.ConflictQuery{Scope: tc.scope, Form: tc.form}))
		if !slices.Equal(got, tc.want) {
			t.Errorf("scope %q form %q: %v, want %v", tc.scope, tc.form, got, tc.want)
		}
	}

	// Paging, with and without a filter.
	pages := func(q records.ConflictQuery) [][]string {
		var out [][]string
		for range 10 {
			p := s.conflicts(sup, q)
			out = append(out, conflictIDs(p))
			if p.Next == "" {
				return out
			}
			q.After = p.Next
		}
		t.Fatal("paging never ended")
		return nil
	}
	flat := func(pp [][]string) []string { return slices.Concat(pp...) }
	if got := pages(records.ConflictQuery{Limit: 1}); !slices.Equal(flat(got), []string{r1, r2, r3}) || len(got[0]) != 1 {
		t.Errorf("pages of 1 = %v, want r1, r2, r3 one a page", got)
	}
	if got := pages(records.ConflictQuery{Limit: 2}); !slices.Equal(flat(got), []string{r1, r2, r3}) || len(got[0]) != 2 {
		t.Errorf("pages of 2 = %v", got)
	}
	if got := pages(records.ConflictQuery{Limit: 1, Form: "assessment"}); !slices.Equal(flat(got), []string{r1, r3}) {
		t.Errorf("pages of 1, form assessment = %v, want r1, r3", got)
	}

	// Scopes and roles.
	if got := conflictIDs(s.conflicts(s.account(auth.RoleSupervisor, "Youssef", "east"), records.ConflictQuery{})); len(got) != 0 {
		t.Errorf("supervisor of another scope sees %v, want none", got)
	}
	if got := conflictIDs(s.conflicts(s.account(auth.RoleSupervisor, "Khadija", "south"), records.ConflictQuery{})); !slices.Equal(got, []string{r3}) {
		t.Errorf("supervisor of south sees %v, want [r3]", got)
	}
	if got := conflictIDs(s.conflicts(s.account(auth.RoleHQ, "hq", "north"), records.ConflictQuery{})); !slices.Equal(got, []string{r1, r2, r3}) {
		t.Errorf("hq sees %v, want all three", got)
	}
	_, err := s.svc.Conflicts(s.ctx, a.acc, records.ConflictQuery{Limit: 10})
	wantCode(t, "device lists conflicts", err, sp.CodeForbidden)
	_, err = s.svc.Conflicts(s.ctx, sup, records.ConflictQuery{Limit: 0})
	wantCode(t, "limit 0", err, sp.CodeBadRequest)
	_, err = s.svc.Conflicts(s.ctx, sup, records.ConflictQuery{Limit: 10, After: "%%%"})
	wantCode(t, "bad page token", err, sp.CodeBadRequest)
}
