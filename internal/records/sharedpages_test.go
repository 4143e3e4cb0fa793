package records_test

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// pageEncoder is a test encoding: the page's wire JSON, counted.
type pageEncoder struct {
	calls atomic.Int64
	gate  chan struct{} // if not nil, each encoding waits for it
}

func (e *pageEncoder) encode(p *records.PullPage) (records.EncodedPage, error) {
	e.calls.Add(1)
	if e.gate != nil {
		<-e.gate
	}
	var b bytes.Buffer
	_, err := p.WriteTo(&b)
	return records.EncodedPage{Body: b.Bytes(), Coding: "test"}, err
}

// pullShared pulls the page q asks for through the shared pages and wants
// the bytes Pull builds now; it returns the page.
func pullShared(t *testing.T, s *server, enc *pageEncoder, caller *auth.Account, q records.PullQuery, what string) *sp.PullResponse {
	t.Helper()
	got, err := s.svc.PullEncoded(s.ctx, caller, q, "test", enc.encode)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return wantBuiltNow(t, s, caller, q, got.Body, what)
}

// An encoded page is given again only to callers of the same role and
// scopes asking the same, and only while the feed gives the same page:
// appended records do not change a page that stopped before the end of
// the feed, an edit of one of its records does, and any change does for a
// page that reached the end. Every page given is the one Pull builds at
// that moment.
func TestSharedPagesGiveThePagesPullBuilds(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	b := s.tablet("tablet B", "north")
	c := s.tablet("tablet C", "south")
	sup := s.account(auth.RoleSupervisor, "Amina", "north")
	var north []string
	for i := range 12 {
		id, item := a.create("assessment", "north", map[string]any{"i": i})
		wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
		north = append(north, id)
		_, item = c.create("assessment", "south", map[string]any{"i": i})
		wantStatus(t, "create south", c.push1(item), sp.StatusApplied, "")
	}
	enc := &pageEncoder{}
	first := records.PullQuery{Limit: 5}
	builds := func(want int64, what string) {
		t.Helper()
		if n := enc.calls.Load(); n != want {
			t.Fatalf("%s: %d pages built and encoded, want %d", what, n, want)
		}
	}

	pullShared(t, s, enc, a.acc, first, "A's first page")
	builds(1, "A's first page")
	pullShared(t, s, enc, b.acc, first, "B, same scopes, same page")
	builds(1, "B, same scopes, same page")
	if s.svc.PagesShared() != 1 {
		t.Fatalf("%d pages given again, want 1", s.svc.PagesShared())
	}
	south := pullShared(t, s, enc, c.acc, first, "C, another region")
	builds(2, "C, another region")
	for _, r := range south.Records {
		if r.Scope != "south" {
			t.Fatalf("C was given a record of %s", r.Scope)
		}
	}
	pullShared(t, s, enc, sup, first, "a supervisor of the same region")
	builds(3, "a supervisor of the same region")
	pullShared(t, s, enc, a.acc, records.PullQuery{Limit: 6}, "another limit")
	builds(4, "another limit")
	wider := *b.acc
	wider.Scopes = []string{"north", "south"}
	pullShared(t, s, enc, &wider, first, "B with another scope added")
	builds(5, "B with another scope added")

	// A new record goes to the end of the feed: the first page, which
	// stopped before it, is the same.
	_, item := a.create("assessment", "north", map[string]any{"i": 99})
	wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
	pullShared(t, s, enc, b.acc, first, "after a new record")
	builds(5, "after a new record")

	// An edit of a record on the page moves it to the end: the page
	// changes.
	wantStatus(t, "edit", a.push1(a.save(north[1], map[string]any{"i": 100})), sp.StatusApplied, "")
	page := pullShared(t, s, enc, b.acc, first, "after an edit of a record on the page")
	builds(6, "after an edit of a record on the page")
	for _, r := range page.Records {
		if r.ID == north[1] {
			t.Fatal("the edited record is still on the first page")
		}
	}

	// A page that reached the end of the feed changes with any change.
	last := records.PullQuery{Limit: 1000, Since: page.Cursor}
	pullShared(t, s, enc, a.acc, last, "the rest of the feed")
	builds(7, "the rest of the feed")
	pullShared(t, s, enc, b.acc, last, "the rest of the feed again")
	builds(7, "the rest of the feed again")
	newest, item := a.create("assessment", "north", map[string]any{"i": 101})
	wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
	rest := pullShared(t, s, enc, b.acc, last, "the rest, after a new record")
	builds(8, "the rest, after a new record")
	if n := len(rest.Records); n == 0 || rest.Records[n-1].ID != newest {
		t.Fatal("the new record is not at the end of the rest of the feed")
	}

	// A page kept longer than its time is built again.
	pullShared(t, s, enc, a.acc, first, "the first page, kept again")
	builds(9, "the first page, kept again")
	pullShared(t, s, enc, b.acc, first, "the first page, given again")
	builds(9, "the first page, given again")
	s.clock.Advance(2 * time.Minute)
	pullShared(t, s, enc, b.acc, first, "after a long time")
	builds(10, "after a long time")
}

// Tablets asking at once for the same page, while it is built, wait for
// it: it is built once.
func TestSharedPageBuiltOnceForARush(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	for i := range 5 {
		_, item := a.create("assessment", "north", map[string]any{"i": i})
		wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
	}
	enc := &pageEncoder{gate: make(chan struct{})}
	q := records.PullQuery{Limit: 3}
	bodies := make([][]byte, 20)
	var wg sync.WaitGroup
	for i := range bodies {
		tab := s.tablet("tablet", "north").acc
		wg.Go(func() {
			got, err := s.svc.PullEncoded(s.ctx, tab, q, "test", enc.encode)
			if err != nil {
				t.Error(err)
			}
			bodies[i] = got.Body
		})
	}
	time.Sleep(20 * time.Millisecond) // most are waiting by now; the others find the page kept
	close(enc.gate)
	wg.Wait()
	if n := enc.calls.Load(); n != 1 {
		t.Fatalf("the page was built %d times for a rush of %d tablets, want once", n, len(bodies))
	}
	for _, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatal("tablets of a rush were given different pages")
		}
	}
}
