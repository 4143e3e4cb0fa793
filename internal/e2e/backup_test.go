package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// bkWrite is one save of a device, as the test remembers it.
type bkWrite struct {
	id          string
	dot         syncproto.Dot
	fields      map[string]any
	afterBackup bool
}

// bkLog wraps a Device and remembers every save, and which were
// acknowledged.
type bkLog struct {
	t       *testing.T
	d       *Device
	after   bool // saves are made after the backup
	pending []bkWrite
	acked   []bkWrite
}

func (l *bkLog) create(fields map[string]any) string {
	l.t.Helper()
	id := l.d.Create(l.t, form, fields)
	l.pending = append(l.pending, bkWrite{id: id, dot: syncproto.Dot{By: l.d.ID, N: 1}, fields: fields, afterBackup: l.after})
	return id
}

func (l *bkLog) edit(id string, fields map[string]any) {
	l.t.Helper()
	dot := l.d.Edit(l.t, id, fields)
	l.pending = append(l.pending, bkWrite{id: id, dot: dot, fields: fields, afterBackup: l.after})
}

// push pushes every change; PushChanges requires every item accepted.
func (l *bkLog) push() {
	l.t.Helper()
	l.d.PushChanges(l.t)
	l.acked = append(l.acked, l.pending...)
	l.pending = nil
}

// bkMaxSeq is the highest seq of the records readTok pulls from the start.
func bkMaxSeq(t *testing.T, s *Server, readTok string) uint64 {
	t.Helper()
	recs, _ := s.PullAll(t, readTok)
	var m uint64
	for _, r := range recs {
		m = max(m, r.Seq)
	}
	return m
}

// bkStates is the current state of every record readTok pulls.
func bkStates(t *testing.T, s *Server, readTok string) map[string]*syncproto.Record {
	t.Helper()
	recs, _ := s.PullAll(t, readTok)
	out := map[string]*syncproto.Record{}
	for _, r := range recs {
		out[r.ID] = syncproto.FromState(r.State)
	}
	return out
}

// bkForged predicts forged_clock (PROTOCOL.md §2): the item's clock has, for
// an actor other than the pushing device, a count above the server's (for
// a record the server lacks, any other actor).
func bkForged(item *syncproto.Record, server *syncproto.Record, device string) bool {
	for actor, n := range item.Clock {
		if actor == device {
			continue
		}
		if server == nil || n > server.Clock[actor] {
			return true
		}
	}
	return false
}

// bkResync does what PROTOCOL.md §3 asks of a device after 410: pull from
// the start (already done by the caller), then push the full state of
// every record it holds. It checks each result against the prediction from
// the server's current state and returns the ids refused forged_clock.
func bkResync(t *testing.T, s *Server, readTok string, d *Device) []string {
	t.Helper()
	server := bkStates(t, s, readTok)
	ids := make([]string, 0, len(d.Recs))
	for id := range d.Recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	items := make([]syncproto.State, len(ids))
	for i, id := range ids {
		items[i] = d.FullItem(id)
	}
	body := map[string]any{"device": d.ID, "batch": newID(), "records": items}
	st, resp, e := s.Push(t, d.Token, body)
	if st != http.StatusOK {
		t.Fatalf("resync push of %s: status %d, error %+v", d.ID, st, e)
	}
	if len(resp.Results) != len(ids) {
		t.Fatalf("resync push of %d items: %d results", len(ids), len(resp.Results))
	}
	var forged []string
	for i, r := range resp.Results {
		id := ids[i]
		if r.ID != id {
			t.Fatalf("resync result %d is for %s, want %s", i, r.ID, id)
		}
		if bkForged(d.Recs[id], server[id], d.ID) {
			if r.Status != syncproto.StatusRejected || r.Error == nil || r.Error.Code != syncproto.CodeForgedClock {
				t.Errorf("resync of %s, record %s (clock %v, server %v): %s %+v, want rejected forged_clock",
					d.ID, id, d.Recs[id].Clock, bkClock(server[id]), r.Status, r.Error)
			}
			forged = append(forged, id)
			continue
		}
		switch r.Status {
		case syncproto.StatusApplied, syncproto.StatusUnchanged:
		default:
			t.Errorf("resync of %s, record %s (clock %v, server %v): %s %+v, want applied or unchanged",
				d.ID, id, d.Recs[id].Clock, bkClock(server[id]), r.Status, r.Error)
		}
		if r.Status == syncproto.StatusApplied && server[id] != nil && server[id].Clock.Dominates(d.Recs[id].Clock) {
			t.Errorf("resync of %s, record %s: applied though the server had seen all of it", d.ID, id)
		}
	}
	return forged
}

func bkClock(r *syncproto.Record) syncproto.Clock {
	if r == nil {
		return nil
	}
	return r.Clock
}

// bkBackup streams GET /v1/admin/backup into path. It reads the first
// 256 KiB, then holds the stream open (the server's read transaction with
// it) until onHold returns, then reads the rest. It returns the size read
// and the announced X-Backup-Size.
func bkBackup(t *testing.T, s *Server, path string, onHold func()) (int64, int64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/v1/admin/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	// No transparent gzip: the bytes on the wire are the database's.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/admin/backup: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /v1/admin/backup: status %d; body %s", resp.StatusCode, cut(b))
	}
	announced, err := strconv.ParseInt(resp.Header.Get("X-Backup-Size"), 10, 64)
	if err != nil {
		t.Errorf("X-Backup-Size %q: %v", resp.Header.Get("X-Backup-Size"), err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n1, err := io.CopyN(f, resp.Body, 256<<10)
	if err != nil {
		t.Fatalf("reading the backup's first bytes: %v", err)
	}
	onHold()
	n2, err := io.Copy(f, resp.Body)
	if err != nil {
		t.Fatalf("reading the backup: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return n1 + n2, announced
}

// TestBackupRestoreResync: a hot backup taken while a device pushes, more
// acknowledged pushes, a restore of the backup; then cursors taken after the
// backup get 410 (even once the restored database is past their seq), a
// cursor taken before it still works, and the devices' resync (pull from
// the start, push every full state) plus the admin's re-application of the
// quarantined forged_clock items bring back every acknowledged write.
func TestBackupRestoreResync(t *testing.T) {
	const scopeDT = "draa-tafilalet"
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	s := StartServer(t, dir)
	// The reader sees every scope but the bulk import's (pulling 12 MB
	// again and again would only slow the test down).
	_, readTok := s.CreateUser(t, "superviseur régional", "supervisor", scopeGON, scopeSM)
	A := &bkLog{t: t, d: s.NewDevice(t, "tablette A — Guelmim", scopeGON)}
	B := &bkLog{t: t, d: s.NewDevice(t, "tablette B — Tan-Tan", scopeGON)}
	c := s.NewDevice(t, "tablette C — Agadir", scopeSM)
	bulk := s.NewDevice(t, "import — Errachidia", scopeDT)

	// Phase 1, before the backup.
	a1 := A.create(map[string]any{"head_name": "فاطمة الزهراء", "commune": "Guelmim", "household_size": 5, "monthly_income_mad": 1200})
	a2 := A.create(map[string]any{"head_name": "محمد أمين", "commune": "Bouizakarne", "household_size": 3, "monthly_income_mad": 800, "water_source": "puits"})
	a3 := A.create(map[string]any{"head_name": "خديجة", "commune": "Assa", "household_size": 7, "notes": "Logement précaire, toit en tôle."})
	A.push()
	b1 := B.create(map[string]any{"head_name": "عبد الله", "commune": "Tan-Tan", "household_size": 4, "notes": "الأسرة تحتاج إلى مساعدة"})
	b2 := B.create(map[string]any{"head_name": "مريم", "commune": "El Ouatia", "household_size": 2, "monthly_income_mad": 500})
	B.push()
	A.d.PullMerge(t)
	B.d.PullMerge(t)
	B.edit(a1, map[string]any{"monthly_income_mad": 1350})
	A.edit(b1, map[string]any{"notes": "Visite de contrôle : revenus confirmés."})
	A.push()
	B.push()
	A.d.PullMerge(t)
	B.d.PullMerge(t)
	cPre := A.d.Cursor // a cursor taken before the backup
	B.edit(b2, map[string]any{"commune": "Tan-Tan Plage"})
	B.push()

	// A big dataset elsewhere, so that the backup stream is far larger than
	// what the sockets buffer: while the test holds the stream, the server
	// is inside its read transaction.
	bulkValue := func() string {
		b := make([]byte, 45<<10)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b) // 60 KiB of JSON
	}
	for range 100 {
		bulk.Create(t, form, map[string]any{"photo_jpeg_b64": bulkValue(), "commune": "Errachidia", "head_name": "الحسين"})
	}
	bulk.PushChanges(t)

	// The hot backup, while C keeps pushing: one new record and one edit a
	// push. cSnaps[k] is C's records as acknowledged after k pushes.
	var cAcks atomic.Int64
	cSnaps := []map[string]*syncproto.Record{{}}
	stopC := make(chan struct{})
	cDone := make(chan error, 1)
	go func() {
		var own []string
		for i := range 100_000 {
			select {
			case <-stopC:
				cDone <- nil
				return
			default:
			}
			id, err := c.create(form, map[string]any{"head_name": "سعيد", "commune": "Aït Baha", "i": i})
			if err != nil {
				cDone <- err
				return
			}
			own = append(own, id)
			if i > 0 {
				if _, err := c.edit(own[i/2], map[string]any{"household_size": i % 9}); err != nil {
					cDone <- err
					return
				}
			}
			if _, err := c.pushChanges(); err != nil {
				cDone <- err
				return
			}
			cSnaps = append(cSnaps, maps.Clone(c.Recs))
			cAcks.Add(1)
		}
		cDone <- fmt.Errorf("C: the pushing loop ran out")
	}()
	waitAcks := func(n int64, what string) {
		deadline := time.Now().Add(20 * time.Second)
		for cAcks.Load() < n {
			select {
			case err := <-cDone:
				t.Fatalf("%s: C stopped pushing: %v", what, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: C has %d acknowledged pushes after 20 s, want %d", what, cAcks.Load(), n)
			}
			time.Sleep(5 * time.Millisecond) // bounded polling
		}
	}
	waitAcks(3, "before the backup")
	backupFile := filepath.Join(root, "fieldsync-backup.db")
	nBefore := cAcks.Load() // acknowledged before the backup was asked for: in it
	var n0 int64            // acknowledged when the first bytes had come: later ones but the next are not in it
	var held int64          // acknowledged while the stream was held open
	size, announced := bkBackup(t, s, backupFile, func() {
		n0 = cAcks.Load()
		// Pushes commit while the backup's read transaction is open.
		waitAcks(n0+5, "while the backup stream is held open")
		held = cAcks.Load() - n0
	})
	close(stopC)
	if err := <-cDone; err != nil {
		t.Fatalf("C: %v", err)
	}
	if size != announced || size < 8<<20 {
		t.Errorf("backup: %d bytes read, X-Backup-Size %d (want equal, and above 8 MiB)", size, announced)
	}

	// The backup restores into a fresh directory and checks clean.
	fresh := filepath.Join(root, "restored-fresh")
	if out, err := RunCLI("restore", "--data", fresh, "--from", backupFile); err != nil {
		t.Fatalf("fieldsync restore into a fresh dir: %v\n%s", err, out)
	}
	if out, err := RunCLI("check", "--data", fresh); err != nil {
		t.Fatalf("fieldsync check of the restored backup: %v\n%s", err, out)
	}
	// A check of a directory without a database fails, and creates none.
	empty := filepath.Join(root, "no-database")
	if out, err := RunCLI("check", "--data", empty); err == nil {
		t.Errorf("fieldsync check of a missing database passed:\n%s", out)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("fieldsync check of a missing database created %s (%v)", empty, err)
	}
	// It is one consistent snapshot: C's records are exactly as after some
	// k acknowledged pushes, k at least the pushes acknowledged before the
	// request, and at most those acknowledged (or in flight) when the
	// stream started: the pushes acknowledged while the stream was held
	// open are not in it.
	s2 := StartServer(t, fresh)
	inBackup := map[string]*syncproto.Record{}
	for _, r := range bkStates(t, s2, readTok) {
		if r.Scope == scopeSM && r.Clock[c.ID] > 0 {
			inBackup[r.ID] = r
		}
	}
	s2.Stop(t)
	k := len(inBackup)
	if k >= len(cSnaps) || int64(k) < nBefore || int64(k) > n0+1 {
		t.Errorf("backup holds %d of C's records; want between %d (acknowledged before the request) and %d (acknowledged when the stream started, plus one in flight)", k, nBefore, n0+1)
	} else {
		for id, want := range cSnaps[k] {
			if got := inBackup[id]; got == nil || !got.Equal(want) {
				t.Errorf("backup: C's record %s is not as after C's push %d: %v, want %s", id, k, bkClock(got), showState(want.State()))
			}
		}
	}
	t.Logf("hot backup: %d bytes; holds C's first %d pushes (%d acknowledged before the request, %d when the stream started); %d acknowledged while it was held open",
		size, k, nBefore, n0, held)

	// Phase 2, after the backup: new records and edits, acknowledged.
	A.after, B.after = true, true
	A.create(map[string]any{"head_name": "زينب", "commune": "Sidi Ifni", "household_size": 6, "water_source": "citerne"})
	A.edit(a1, map[string]any{"household_size": 7})
	A.edit(a2, map[string]any{"monthly_income_mad": 950})
	A.edit(b1, map[string]any{"notes": "Deuxième visite : le fils aîné a trouvé un emploi à Agadir."})
	A.push()
	b3 := B.create(map[string]any{"head_name": "يوسف بن علي", "commune": "Tan-Tan", "household_size": 9, "notes": "Famille nombreuse"})
	B.edit(b2, map[string]any{"household_size": 3})
	B.push()
	B.d.PullMerge(t)
	B.edit(a1, map[string]any{"enumerator_note": "تمت المقابلة مع رب الأسرة"})
	B.push()
	A.d.PullMerge(t)
	A.edit(a3, map[string]any{"notes": "Toit réparé par la commune."})
	A.push()
	A.d.PullMerge(t)
	cPost := A.d.Cursor // a cursor taken after the backup
	B.edit(b2, map[string]any{"monthly_income_mad": 650})
	B.push()
	B.d.PullMerge(t)
	if st, _ := s.Pull(t, A.d.Token, cPost, 100); st != http.StatusOK {
		t.Fatalf("cursor taken after the backup, before the restore: status %d", st)
	}
	seqEnd := bkMaxSeq(t, s, readTok)

	// Restore the backup in place.
	s.Stop(t)
	if out, err := RunCLI("restore", "--data", dir, "--from", backupFile); err != nil {
		t.Fatalf("fieldsync restore: %v\n%s", err, out)
	} else {
		t.Logf("fieldsync restore: %s", strings.TrimSpace(out))
	}
	s.Restart(t)

	getPull := func(cursor string) (*http.Response, []byte) {
		return s.Do(t, http.MethodGet, "/v1/sync/pull?since="+cursor, A.d.Token, nil, nil)
	}
	resp, body := getPull(cPost)
	wantError(t, "cursor taken after the backup, after the restore", resp, body, http.StatusGone, syncproto.CodeResyncRequired)
	if st, pr := s.Pull(t, A.d.Token, cPre, 100); st != http.StatusOK {
		t.Errorf("cursor taken before the backup: status %d, want 200", st)
	} else {
		var ids []string
		for _, r := range pr.Records {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, []string{b2}) || pr.More {
			t.Errorf("pull after the pre-backup cursor: %v (more %v), want [%s] (B's last save before the backup)", ids, pr.More, b2)
		}
	}

	// Other pushes bring the restored database past the old cursor's seq:
	// the cursor still does not match this database's history.
	e := s.NewDevice(t, "tablette E — Inezgane", scopeSM)
	var reached uint64
	for i := 0; reached <= seqEnd; i++ {
		if i == 100 {
			t.Fatalf("restored database at seq %d after 100 pushes, want past %d", reached, seqEnd)
		}
		for j := range 20 {
			e.Create(t, form, map[string]any{"head_name": "نعيمة", "commune": "Inezgane", "k": i*20 + j})
		}
		for _, r := range e.PushChanges(t).Results {
			reached = max(reached, r.Seq)
		}
	}
	resp, body = getPull(cPost)
	wantError(t, fmt.Sprintf("cursor taken after the backup, restored database past its seq (%d > %d)", reached, seqEnd),
		resp, body, http.StatusGone, syncproto.CodeResyncRequired)

	// Resync (PROTOCOL.md §3): both pull from the start and merge, then
	// each pushes the full state of every record it holds.
	localA := map[string]*syncproto.Record{}
	localB := map[string]*syncproto.Record{}
	for _, l := range []*bkLog{A, B} {
		l.d.Cursor = ""
		l.d.PullMerge(t)
	}
	for id, r := range A.d.Recs {
		localA[id] = r
	}
	for id, r := range B.d.Recs {
		localB[id] = r
	}
	forgedA := bkResync(t, s, readTok, A.d)
	forgedB := bkResync(t, s, readTok, B.d)
	// The scenario makes these exact: A holds B's lost writes on a1, b2
	// (B's second save) and b3 (created after the backup); B holds A's
	// lost write on a1, whose own push by A was just refused.
	wantA := []string{a1, b2, b3}
	sort.Strings(wantA)
	sort.Strings(forgedA)
	if !slices.Equal(forgedA, wantA) || !slices.Equal(forgedB, []string{a1}) {
		t.Errorf("forged_clock: A %v, B %v; want A %v (a1, b2, b3), B [%s] (a1)", forgedA, forgedB, wantA, a1)
	}

	// The quarantine holds them; the admin re-applies each.
	type key struct{ device, record string }
	want := map[key]bool{}
	for _, id := range forgedA {
		want[key{A.d.ID, id}] = true
	}
	for _, id := range forgedB {
		want[key{B.d.ID, id}] = true
	}
	applied := 0
	for _, q := range s.Quarantine(t) {
		k := key{q.Device, q.Record}
		if !want[k] {
			t.Errorf("unexpected quarantine entry: record %s device %s error %+v", q.Record, q.Device, q.Error)
			continue
		}
		delete(want, k)
		if q.Error == nil || q.Error.Code != syncproto.CodeForgedClock {
			t.Errorf("quarantine entry %s: error %+v, want forged_clock", q.ID, q.Error)
		}
		var item syncproto.State
		if err := json.Unmarshal(q.Item, &item); err != nil || item.ID != q.Record {
			t.Errorf("quarantine entry %s: item %s is not the record's (%v)", q.ID, cut(q.Item), err)
		}
		resp, b := s.Do(t, http.MethodPost, "/v1/admin/quarantine/"+q.ID+"/apply", s.AdminToken, []byte("{}"), nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("apply quarantine entry %s: status %d; body %s", q.ID, resp.StatusCode, cut(b))
			continue
		}
		var res syncproto.PushResult
		if err := json.Unmarshal(b, &res); err != nil {
			t.Errorf("apply quarantine entry %s: %v; body %s", q.ID, err, cut(b))
			continue
		}
		switch res.Status {
		case syncproto.StatusApplied:
			applied++
		case syncproto.StatusUnchanged:
		default:
			t.Errorf("apply quarantine entry %s (record %s, device %s): %s %+v, want applied or unchanged", q.ID, q.Record, q.Device, res.Status, res.Error)
		}
	}
	if len(want) > 0 {
		t.Errorf("forged items missing from the quarantine: %v", want)
	}
	if applied == 0 {
		t.Errorf("no quarantined item applied: nothing was recovered from the quarantine")
	}
	if left := s.Quarantine(t); len(left) != 0 {
		t.Errorf("quarantine after applying every entry: %d left", len(left))
	}

	// C, whose pushes during the backup were partly lost, resyncs too.
	c.Cursor = ""
	c.PullMerge(t)
	if f := bkResync(t, s, readTok, c); len(f) != 0 {
		t.Errorf("C's resync: forged_clock for %v, C writes only its own records", f)
	}

	// Nothing is lost: every record holds the join of what A and B hold,
	// and every acknowledged write of A and B is covered.
	server := bkStates(t, s, readTok)
	ids := map[string]bool{}
	for id := range localA {
		ids[id] = true
	}
	for id := range localB {
		ids[id] = true
	}
	for id := range ids {
		var want *syncproto.Record
		switch {
		case localA[id] != nil && localB[id] != nil:
			want = syncproto.Join(localA[id], localB[id])
		case localA[id] != nil:
			want = localA[id]
		default:
			want = localB[id]
		}
		if got := server[id]; got == nil || !got.Equal(want) {
			have := "nothing"
			if got != nil {
				have = showState(got.State())
			}
			t.Errorf("record %s after the resync:\nserver %s\nwant   %s", id, have, showState(want.State()))
		}
	}
	lost, afterBackup := 0, 0
	for _, l := range []*bkLog{A, B} {
		for _, w := range l.acked {
			if w.afterBackup {
				afterBackup++
			}
			r := server[w.id]
			if r == nil || !r.Clock.Covers(w.dot) {
				lost++
				t.Errorf("acknowledged write %v on %s (after the backup: %v) lost: server clock %v", w.dot, w.id, w.afterBackup, bkClock(r))
				continue
			}
			// Its values survive unless a later write that saw them
			// replaced them (then the join above has that write instead).
			for f, v := range w.fields {
				want := syncproto.Join(bkOrEmpty(localA[w.id], w.id), bkOrEmpty(localB[w.id], w.id))
				if !slices.ContainsFunc(want.Fields[f], func(sb syncproto.Sibling) bool { return sb.Dot == w.dot }) {
					continue // overwritten by a write that had seen it
				}
				if !slices.ContainsFunc(r.Fields[f], func(sb syncproto.Sibling) bool {
					return sb.Dot == w.dot && syncproto.EqualValues(sb.Value, raw(v))
				}) {
					lost++
					t.Errorf("acknowledged write %v on %s: field %s = %s lost; server has %s", w.dot, w.id, f, raw(v), showSibs(r.Fields[f]))
				}
			}
		}
	}
	for id, want := range c.Recs {
		if got := server[id]; got == nil || !got.Equal(want) {
			t.Errorf("C's record %s after its resync: server %v, want %s", id, bkClock(got), showState(want.State()))
		}
	}
	// A and B converge again.
	for _, l := range []*bkLog{A, B} {
		l.d.PullMerge(t)
		for id, r := range l.d.Recs {
			if !r.Equal(server[id]) {
				t.Errorf("device %s record %s differs from the server after the resync", l.d.ID, id)
			}
		}
	}
	t.Logf("resync: %d acknowledged writes of A and B checked (%d after the backup), %d lost; forged_clock A %d, B %d; %d quarantined items applied",
		len(A.acked)+len(B.acked), afterBackup, lost, len(forgedA), len(forgedB), applied)

	s.Stop(t)
	if out, err := RunCLI("check", "--data", dir); err != nil {
		t.Errorf("fieldsync check at the end: %v\n%s", err, out)
	}
}

func bkOrEmpty(r *syncproto.Record, id string) *syncproto.Record {
	if r != nil {
		return r
	}
	return &syncproto.Record{ID: id, Clock: syncproto.Clock{}, Fields: map[string][]syncproto.Sibling{}}
}
