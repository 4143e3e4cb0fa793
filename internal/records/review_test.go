package records_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

func TestReview(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	id, item := a.create("assessment", "north", map[string]any{"household_size": 5})
	wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
	other, item := a.create("assessment", "north", map[string]any{"household_size": 3})
	wantStatus(t, "create other", a.push1(item), sp.StatusApplied, "")
	a.pull()
	seqBefore := s.get(sup, id).Seq

	const note = "head of household's name is missing"
	v, err := s.svc.SetReview(s.ctx, sup, id, records.ReviewRequest{State: records.ReviewHasIssues, Note: note})
	if err != nil {
		t.Fatalf("set review: %v", err)
	}
	want := records.Review{State: "has_issues", Note: note, By: "Amina"}
	if v.Review == nil || *v.Review != want {
		t.Fatalf("review in the answer = %+v, want %+v", v.Review, want)
	}
	g := s.get(sup, id)
	if g.Review == nil || *g.Review != want {
		t.Fatalf("review in Get = %+v, want %+v", g.Review, want)
	}
	if g.Seq <= seqBefore || g.Record.Clock[sup.ID] != 1 {
		t.Errorf("after review: seq %d (was %d), clock %v; want a new seq and the supervisor's entry 1", g.Seq, seqBefore, g.Record.Clock)
	}
	if _, ok := g.Values["_review"]; ok {
		t.Errorf("values hold the reserved _review: %v", sortedKeys(g.Values))
	}
	if h := s.history(sup, id); h[len(h)-1].Kind != records.KindReview || h[len(h)-1].Actor != sup.ID {
		t.Errorf("last history entry = %+v, want kind review by the supervisor", h[len(h)-1])
	}

	// The tablet's next pull carries the _review write.
	got := a.pull()
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("pull after review = %+v, want the reviewed record only", got)
	}
	var found bool
	for _, w := range got[0].Writes {
		if rv, ok := w.Fields[sp.FieldReview]; ok {
			found = true
			var r records.Review
			if err := json.Unmarshal(rv, &r); err != nil || r != want || w.By != sup.ID {
				t.Errorf("pulled _review write by %s = %s, want %+v by the supervisor", w.By, rv, want)
			}
		}
	}
	if !found {
		t.Fatalf("pulled record %+v has no _review write", got[0].State)
	}
	// Pushing it back as pulled (a resync) is allowed and changes nothing.
	full := a.local[id].State()
	wantStatus(t, "resync push with _review", a.push1(full), sp.StatusUnchanged, "")

	// Bad states.
	for _, st := range []string{"bogus", "", "Approved"} {
		_, err := s.svc.SetReview(s.ctx, sup, id, records.ReviewRequest{State: st, Note: "x"})
		wantCode(t, "review state "+st, err, sp.CodeBadRequest)
	}
	_, err = s.svc.SetReview(s.ctx, a.acc, id, records.ReviewRequest{State: "approved"})
	wantCode(t, "review by a device", err, sp.CodeForbidden)
	_, err = s.svc.SetReview(s.ctx, s.account(auth.RoleHQ, "hq"), id, records.ReviewRequest{State: "approved"})
	wantCode(t, "review by hq", err, sp.CodeForbidden)
	if r := s.get(sup, id).Review; r == nil || *r != want {
		t.Errorf("review after refused requests = %+v, want %+v", r, want)
	}

	// The review list.
	list := func(review string) []string {
		t.Helper()
		p, err := s.svc.List(s.ctx, sup, records.ListQuery{Review: review, Limit: 100})
		if err != nil {
			t.Fatalf("list review %q: %v", review, err)
		}
		out := []string{}
		for _, r := range p.Records {
			out = append(out, r.ID)
		}
		return out
	}
	if got := list("has_issues"); !slices.Equal(got, []string{id}) {
		t.Errorf("list has_issues = %v, want [%s]", got, id)
	}
	if got := list("approved"); len(got) != 0 {
		t.Errorf("list approved = %v, want none", got)
	}
	if got := list("received"); !slices.Equal(got, []string{other}) {
		t.Errorf("list received = %v, want the unreviewed record %s", got, other)
	}
	if got := list(""); len(got) != 2 {
		t.Errorf("list all = %v, want both", got)
	}

	// A later review replaces the earlier one.
	if _, err := s.svc.SetReview(s.ctx, sup, id, records.ReviewRequest{State: records.ReviewApproved}); err != nil {
		t.Fatal(err)
	}
	if got := list("approved"); !slices.Equal(got, []string{id}) {
		t.Errorf("list approved after approval = %v", got)
	}
	if got := list("has_issues"); len(got) != 0 {
		t.Errorf("list has_issues after approval = %v", got)
	}
	if c := s.get(sup, id); c.ConflictKind != "" {
		t.Errorf("two reviews made a conflict: %q %v", c.ConflictKind, c.Conflicts)
	}
}
