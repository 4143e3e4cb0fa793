package records_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// pullPages pulls every page of limit from since as caller and returns the
// pages' ids and more flags, and the last cursor.
func pullPages(t *testing.T, s *server, caller *auth.Account, q records.PullQuery) (ids [][]string, more []bool, seqs []uint64, cursor string) {
	t.Helper()
	for range 100 {
		resp, err := pullTyped(s.svc, s.ctx, caller, q)
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		page := []string{}
		for _, r := range resp.Records {
			page = append(page, r.ID)
			seqs = append(seqs, r.Seq)
		}
		ids, more = append(ids, page), append(more, resp.More)
		q.Since, cursor = resp.Cursor, resp.Cursor
		if !resp.More {
			return
		}
	}
	t.Fatal("pull never ended")
	return
}

func TestPullPaging(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	c := s.tablet("tablet C", "south")
	var all, visits []string
	for i, form := range []string{"assessment", "visit", "assessment", "visit", "assessment"} {
		id, item := a.create(form, "north", map[string]any{"i": i})
		wantStatus(t, "create", a.push1(item), sp.StatusApplied, "")
		all = append(all, id)
		if form == "visit" {
			visits = append(visits, id)
		}
	}
	south, item := c.create("assessment", "south", map[string]any{"i": 9})
	wantStatus(t, "create south", c.push1(item), sp.StatusApplied, "")

	ids, more, seqs, cursor := pullPages(t, s, a.acc, records.PullQuery{Limit: 2})
	if !slices.Equal(slices.Concat(ids...), all) || len(ids) != 3 || len(ids[0]) != 2 || len(ids[2]) != 1 {
		t.Fatalf("pages = %v, want the 5 north records, 2 a page, in push order", ids)
	}
	if !slices.Equal(more, []bool{true, true, false}) {
		t.Errorf("more = %v, want [true true false]", more)
	}
	if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
		t.Errorf("seqs = %v, want ascending and distinct", seqs)
	}
	if ids, _, _, _ := pullPages(t, s, a.acc, records.PullQuery{Limit: 5}); !slices.Equal(ids[0], all) {
		t.Errorf("exactly limit records: pages %v", ids)
	}
	if ids, _, _, _ := pullPages(t, s, a.acc, records.PullQuery{Limit: 1000, Form: "visit"}); !slices.Equal(slices.Concat(ids...), visits) {
		t.Errorf("form visit = %v, want %v", ids, visits)
	}
	if ids, _, _, _ := pullPages(t, s, a.acc, records.PullQuery{Limit: 1, Form: "visit"}); !slices.Equal(slices.Concat(ids...), visits) {
		t.Errorf("form visit one a page = %v, want %v", ids, visits)
	}
	if ids, _, _, _ := pullPages(t, s, s.account(auth.RoleHQ, "hq"), records.PullQuery{Limit: 1000}); !slices.Equal(slices.Concat(ids...), append(slices.Clone(all), south)) {
		t.Errorf("hq pulls %v, want every scope", ids)
	}
	if ids, _, _, _ := pullPages(t, s, s.account(auth.RoleSupervisor, "Amina", "south"), records.PullQuery{Limit: 1000}); !slices.Equal(slices.Concat(ids...), []string{south}) {
		t.Errorf("supervisor of south pulls %v", ids)
	}

	// Nothing new: an empty page.
	resp, err := pullTyped(s.svc, s.ctx, a.acc, records.PullQuery{Since: cursor, Limit: 10})
	if err != nil || len(resp.Records) != 0 || resp.More {
		t.Fatalf("pull with nothing new = %+v, %v", resp, err)
	}
	// A record changed twice since the cursor comes once, at its latest state.
	a.pull() // the tablet's own cursor catches up
	wantStatus(t, "edit 1", a.push1(a.save(all[1], map[string]any{"i": 10})), sp.StatusApplied, "")
	wantStatus(t, "edit 2", a.push1(a.save(all[3], map[string]any{"i": 11})), sp.StatusApplied, "")
	wantStatus(t, "edit 3", a.push1(a.save(all[1], map[string]any{"i": 12})), sp.StatusApplied, "")
	got := a.pull()
	if len(got) != 2 || got[0].ID != all[3] || got[1].ID != all[1] || got[1].Clock[a.acc.ID] != 3 || got[0].Seq >= got[1].Seq {
		t.Fatalf("pull after edits = %+v, want all[3] then all[1] at its latest state", got)
	}
}

func TestPullErrors(t *testing.T) {
	s := newServer(t)
	other := newServer(t)
	a := s.tablet("tablet A", "north")
	o := other.tablet("tablet O", "north")
	for i := range 3 {
		_, item := a.create("assessment", "north", map[string]any{"i": i})
		a.push1(item)
		_, item = o.create("assessment", "north", map[string]any{"i": i})
		o.push1(item)
	}
	o.pull()
	a.pull()
	valid := a.cursor

	pull := func(q records.PullQuery) error {
		_, err := pullTyped(s.svc, s.ctx, a.acc, q)
		return err
	}
	wantCode(t, "cursor of another database", pull(records.PullQuery{Since: o.cursor, Limit: 10}), sp.CodeResyncRequired)
	for _, bad := range []string{"not a cursor!", "AAAA", valid[:len(valid)-2], valid + "AA"} {
		wantCode(t, "malformed cursor "+bad, pull(records.PullQuery{Since: bad, Limit: 10}), sp.CodeBadCursor)
	}
	for _, limit := range []int{0, -1, 1001} {
		wantCode(t, "limit", pull(records.PullQuery{Limit: limit}), sp.CodeBadRequest)
	}
	if err := pull(records.PullQuery{Since: valid, Limit: 1000}); err != nil {
		t.Errorf("limit 1000: %v", err)
	}

	c, ok := records.ParseCursor(valid)
	if !ok || c.Seq != s.lastSeq() {
		t.Fatalf("ParseCursor(valid) = %+v, %v; want seq %d", c, ok, s.lastSeq())
	}
	beyond, wrongNonce, start := c, c, c
	beyond.Seq++
	wrongNonce.Nonce++
	start.Seq, start.Nonce = 0, 0
	wantCode(t, "seq beyond the last", pull(records.PullQuery{Since: beyond.String(), Limit: 10}), sp.CodeResyncRequired)
	wantCode(t, "another transaction's nonce", pull(records.PullQuery{Since: wrongNonce.String(), Limit: 10}), sp.CodeResyncRequired)
	resp, err := pullTyped(s.svc, s.ctx, a.acc, records.PullQuery{Since: start.String(), Limit: 10})
	if err != nil || len(resp.Records) != 3 {
		t.Errorf("cursor at the start: %d records, %v; want 3", len(resp.Records), err)
	}
}

// A cursor of a database restored from a copy of its file, which has since
// reached the same seq again with other changes, is foreign (PROTOCOL.md §3).
func TestPullCursorAfterRestore(t *testing.T) {
	dir, backup := t.TempDir(), t.TempDir()
	s := openServer(t, dir)
	a := s.tablet("tablet A", "north")
	_, item := a.create("assessment", "north", map[string]any{"i": 1})
	a.push1(item)
	a.pull()
	atBackup := a.cursor
	s.close()
	copyFile(t, filepath.Join(dir, store.FileName), filepath.Join(backup, store.FileName))

	s = newServerDir(t, dir)
	a.s = s
	_, item = a.create("assessment", "north", map[string]any{"i": 2})
	a.push1(item)
	a.pull()
	before := a.cursor

	restored := newServerDir(t, backup)
	a.s = restored
	_, item = a.create("assessment", "north", map[string]any{"i": 3})
	a.push1(item)
	if restored.lastSeq() != s.lastSeq() {
		t.Fatalf("restored database at seq %d, the original at %d: want the same seq", restored.lastSeq(), s.lastSeq())
	}
	_, err := pullTyped(restored.svc, restored.ctx, a.acc, records.PullQuery{Since: before, Limit: 10})
	wantCode(t, "cursor of the lost history", err, sp.CodeResyncRequired)
	resp, err := pullTyped(restored.svc, restored.ctx, a.acc, records.PullQuery{Since: atBackup, Limit: 10})
	if err != nil || len(resp.Records) != 1 {
		t.Errorf("cursor taken before the backup: %+v, %v; want the one record since", resp, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// exportCapture is a records.ExportWriter that keeps what it is given.
type exportCapture struct {
	snap   records.ExportSnapshot
	starts int
	rows   []records.ExportRow
}

func (e *exportCapture) Start(s records.ExportSnapshot) error { e.snap = s; e.starts++; return nil }
func (e *exportCapture) Row(r *records.ExportRow) error       { e.rows = append(e.rows, *r); return nil }

func TestExportSnapshotCursor(t *testing.T) {
	s := newServer(t)
	a := s.tablet("tablet A", "north")
	c := s.tablet("tablet C", "south")
	hq := s.account(auth.RoleHQ, "hq")
	var ids []string
	for i := range 3 {
		id, item := a.create("assessment", "north", map[string]any{"i": i})
		a.push1(item)
		ids = append(ids, id)
	}
	gone, item := c.create("visit", "south", map[string]any{"i": 9})
	c.push1(item)
	c.push1(c.del(gone))

	// The export is filtered; its cursor still covers every scope and form.
	var e exportCapture
	n, err := s.svc.Export(s.ctx, hq, records.ExportQuery{Form: "assessment", Scope: "north"}, &e)
	if err != nil || n != 3 || len(e.rows) != 3 || e.starts != 1 {
		t.Fatalf("export = %d rows (%d kept, %d starts), %v; want 3", n, len(e.rows), e.starts, err)
	}
	if e.snap.Seq != s.lastSeq() || !slices.Equal(e.snap.Fields, []string{"i"}) {
		t.Errorf("snapshot = %+v, want seq %d and fields [i]", e.snap, s.lastSeq())
	}
	var all exportCapture
	if _, err := s.svc.Export(s.ctx, hq, records.ExportQuery{}, &all); err != nil || len(all.rows) != 3 {
		t.Errorf("export without filters = %d rows, %v; want 3 (the deleted record left out)", len(all.rows), err)
	}
	var withDeleted exportCapture
	if _, err := s.svc.Export(s.ctx, hq, records.ExportQuery{IncludeDeleted: true}, &withDeleted); err != nil || len(withDeleted.rows) != 4 {
		t.Errorf("export with deleted = %d rows, %v; want 4", len(withDeleted.rows), err)
	}
	_, err = s.svc.Export(s.ctx, a.acc, records.ExportQuery{}, &exportCapture{})
	wantCode(t, "export by a device", err, sp.CodeForbidden)

	// Changes after the export: in another form, another scope, and to a
	// record the export held.
	a.pull()
	c.pull()
	newVisit, item := a.create("visit", "north", map[string]any{"i": 3})
	a.push1(item)
	a.push1(a.save(ids[1], map[string]any{"i": 11}))
	c.push1(c.save(gone, map[string]any{"i": 10})) // undeletes
	resp, err := pullTyped(s.svc, s.ctx, hq, records.PullQuery{Since: e.snap.Cursor, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range resp.Records {
		got = append(got, r.ID)
	}
	if want := []string{newVisit, ids[1], gone}; !slices.Equal(got, want) || resp.More {
		t.Errorf("pull from the export's cursor = %v, want exactly the changes after it %v", got, want)
	}
}
