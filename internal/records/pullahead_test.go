package records_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// pullBytes pulls one page as caller and returns its wire JSON.
func pullBytes(t *testing.T, s *server, caller *auth.Account, q records.PullQuery) []byte {
	t.Helper()
	p, err := s.svc.Pull(s.ctx, caller, q)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	defer p.Release()
	var b bytes.Buffer
	if _, err := p.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wantPageAsBuilt pulls the page q asks for as caller and wants the bytes
// Pull builds without pages built ahead, at the same moment. It returns
// the page.
func wantPageAsBuilt(t *testing.T, s *server, caller *auth.Account, q records.PullQuery, what string) *sp.PullResponse {
	t.Helper()
	return wantBuiltNow(t, s, caller, q, pullBytes(t, s, caller, q), what)
}

// wantBuiltNow wants got to be the wire JSON of the page q asks for as
// caller, as Pull builds it now without pages built ahead, and returns it.
func wantBuiltNow(t *testing.T, s *server, caller *auth.Account, q records.PullQuery, got []byte, what string) *sp.PullResponse {
	t.Helper()
	want, err := s.svc.BuildPage(s.ctx, caller, q)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: page\n%s\nwant, as built now,\n%s", what, got, want)
	}
	return decodePage(t, got)
}

// decodePage reads a page's wire JSON.
func decodePage(t *testing.T, b []byte) *sp.PullResponse {
	t.Helper()
	var page sp.PullResponse
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatalf("page %s: %v", b, err)
	}
	return &page
}

// A caller walking the feed is given, page after page, the bytes Pull
// builds without pages built ahead: as it walks, when the feed moves
// under a page built ahead, and when its scopes change. The pages built
// ahead are used, never for another account, and never for a caller that
// pulls a single page.
func TestPullAheadGivesThePagesPullBuilds(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	c := s.tablet("tablet C", "south")
	var north []string
	for i := range 12 {
		id, item := a.create("assessment", "north", map[string]any{"i": i})
		wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
		north = append(north, id)
		if i%2 == 0 {
			_, item := c.create("assessment", "south", map[string]any{"i": i})
			wantStatus(t, "create south", c.push1(item), sp.StatusApplied, "")
		}
	}

	// One page and no more, as a tablet's sync mostly is: nothing is
	// built ahead.
	wantPageAsBuilt(t, s, c.acc, records.PullQuery{Limit: 2}, "a single page")
	if n := s.svc.PagesHeldAhead(); n != 0 {
		t.Fatalf("%d pages built ahead for a caller that pulled one page", n)
	}

	// A walks the north records, two a page. After its fourth page, once
	// the fifth is built ahead, a record of the fifth is edited: the page
	// built ahead is stale, and the fifth must be built anew.
	q := records.PullQuery{Limit: 2}
	var seen []string
	for n := 1; ; n++ {
		page := wantPageAsBuilt(t, s, a.acc, q, "walk")
		for _, r := range page.Records {
			seen = append(seen, r.ID)
		}
		q.Since = page.Cursor
		if n == 4 {
			s.svc.WaitPagesAhead()
			wantStatus(t, "edit", a.push1(a.save(north[8], map[string]any{"i": 100})), sp.StatusApplied, "")
		}
		if !page.More {
			break
		}
	}
	if want := append(slices.Clone(north[:8]), north[9], north[10], north[11], north[8]); !slices.Equal(seen, want) {
		t.Fatalf("walk gave %v, want %v (the edited record last)", seen, want)
	}
	given := s.svc.PagesGivenAhead()
	if given < 3 {
		t.Fatalf("%d pages given from pages built ahead in a walk of 6, want 3 or more", given)
	}

	// Another account asking for a cursor A was given, with a page built
	// ahead for A waiting: its own page, of its own region.
	q = records.PullQuery{Limit: 2}
	wantPageAsBuilt(t, s, a.acc, q, "A's first page")
	page := wantPageAsBuilt(t, s, a.acc, records.PullQuery{Limit: 2, Since: pageCursor(t, s, a.acc, q)}, "A's second page")
	if s.svc.PagesHeldAhead() != 1 {
		t.Fatalf("no page built ahead for A's walk")
	}
	other := wantPageAsBuilt(t, s, c.acc, records.PullQuery{Limit: 2, Since: page.Cursor}, "C at A's cursor")
	for _, r := range other.Records {
		if r.Scope != "south" {
			t.Fatalf("C was given a record of %s", r.Scope)
		}
	}

	// A's scopes change (an admin adds south) while a page is built ahead
	// for its old scopes: the page is built for the new ones.
	wider := *a.acc
	wider.Scopes = []string{"north", "south"}
	before := s.svc.PagesGivenAhead()
	widerPage := wantPageAsBuilt(t, s, &wider, records.PullQuery{Limit: 2, Since: page.Cursor}, "A with new scopes")
	if s.svc.PagesGivenAhead() != before {
		t.Fatal("a page built for A's old scopes was given after they changed")
	}
	// The page built for the old scopes does not keep A's walk with the
	// new ones from having its next page built ahead.
	wantPageAsBuilt(t, s, &wider, records.PullQuery{Limit: 2, Since: widerPage.Cursor}, "A's next page with new scopes")
	if s.svc.PagesGivenAhead() != before+1 {
		t.Fatal("the walk with the new scopes had no page built ahead")
	}
}

// pageCursor is the cursor of the page q asks for as caller.
func pageCursor(t *testing.T, s *server, caller *auth.Account, q records.PullQuery) string {
	t.Helper()
	b, err := s.svc.BuildPage(s.ctx, caller, q)
	if err != nil {
		t.Fatal(err)
	}
	return decodePage(t, b).Cursor
}
