package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// MustOpenStore opens a new store in a temporary directory. The cleanup
// checks the database (bbolt's structure and fieldsync's feed invariants)
// before closing it.
func MustOpenStore(tb testing.TB) *store.Store {
	tb.Helper()
	return MustOpenStoreDir(tb, tb.TempDir())
}

// MustOpenStoreDir opens the store in dir, with the same cleanup.
func MustOpenStoreDir(tb testing.TB, dir string) *store.Store {
	tb.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := st.Check(context.Background()); err != nil {
			tb.Errorf("store check: %v", err)
		}
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return st
}

const (
	actorA = "0193a6f4-0000-7000-8000-00000000000a"
	actorB = "0193a6f4-0000-7000-8000-00000000000b"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// newID returns a fresh UUIDv7 as a string.
func newID(tb testing.TB) string {
	tb.Helper()
	u, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	return u.String()
}

// stored builds a record of form and scope with one write by actorA
// setting the given fields (n = count).
func stored(id, form, scope string, n uint64, fields map[string]string) *records.Stored {
	w := sp.Write{By: actorA, N: n, At: 1730628900000 + int64(n), Fields: map[string]json.RawMessage{}}
	for k, v := range fields {
		w.Fields[k] = json.RawMessage(v)
	}
	return &records.Stored{
		State:     sp.State{ID: id, Form: form, Scope: scope, Clock: sp.Clock{actorA: n}, Writes: []sp.Write{w}},
		CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(n) * time.Second),
	}
}

func update(tb testing.TB, st *store.Store, fn func(records.Tx) error) {
	tb.Helper()
	if err := st.Update(context.Background(), fn); err != nil {
		tb.Fatalf("update: %v", err)
	}
}

func view(tb testing.TB, st *store.Store, fn func(records.ReadTx) error) {
	tb.Helper()
	if err := st.View(context.Background(), fn); err != nil {
		tb.Fatalf("view: %v", err)
	}
}

func position(tb testing.TB, st *store.Store) records.Position {
	tb.Helper()
	var p records.Position
	view(tb, st, func(tx records.ReadTx) error { p = tx.Position(); return nil })
	return p
}

// changes returns the whole change feed.
func changes(tb testing.TB, st *store.Store) []records.Change {
	tb.Helper()
	var out []records.Change
	view(tb, st, func(tx records.ReadTx) error {
		return tx.Changes(0, func(c records.Change) (bool, error) { out = append(out, c); return true, nil })
	})
	return out
}

// get returns a stored record, failing if it is missing.
func get(tb testing.TB, st *store.Store, id string) *records.Stored {
	tb.Helper()
	var r *records.Stored
	view(tb, st, func(tx records.ReadTx) error {
		var err error
		r, err = tx.Record(id)
		return err
	})
	if r == nil {
		tb.Fatalf("record %s: not found", id)
	}
	return r
}

func TestPutRecordSeqs(t *testing.T) {
	st := MustOpenStore(t)
	if p := position(t, st); p.LastSeq != 0 || p.DBID == ([16]byte{}) {
		t.Fatalf("new store position = %+v, want LastSeq 0 and a random DBID", p)
	}
	r1, r2, r3 := newID(t), newID(t), newID(t)

	// Transaction 1: three records; r1 is put twice and keeps one seq.
	var seqs1 [3]uint64
	update(t, st, func(tx records.Tx) error {
		a := stored(r1, "assessment", "north", 1, map[string]string{"x": "1"})
		if err := tx.PutRecord(nil, a); err != nil {
			return err
		}
		a2 := stored(r1, "assessment", "north", 2, map[string]string{"x": "2"})
		if err := tx.PutRecord(a, a2); err != nil {
			return err
		}
		if a2.Seq != a.Seq {
			t.Errorf("same record put twice in one transaction: seqs %d then %d, want one", a.Seq, a2.Seq)
		}
		b := stored(r2, "visit", "north", 1, map[string]string{"y": `"b"`})
		c := stored(r3, "assessment", "south", 1, map[string]string{"z": "true"})
		if err := tx.PutRecord(nil, b); err != nil {
			return err
		}
		if err := tx.PutRecord(nil, c); err != nil {
			return err
		}
		seqs1 = [3]uint64{a2.Seq, b.Seq, c.Seq}
		return nil
	})
	if seqs1 != [3]uint64{1, 2, 3} {
		t.Fatalf("seqs of the first transaction = %v, want [1 2 3]", seqs1)
	}
	if p := position(t, st); p.LastSeq != 3 {
		t.Fatalf("LastSeq = %d, want 3", p.LastSeq)
	}
	if got := get(t, st, r1); got.Seq != 1 || got.State.Clock[actorA] != 2 {
		t.Fatalf("r1 = seq %d clock %v, want seq 1 and the second state", got.Seq, got.State.Clock)
	}

	// Transaction 2: r1 changes again and moves to the end of the feed.
	update(t, st, func(tx records.Tx) error {
		prev, err := tx.Record(r1)
		if err != nil {
			return err
		}
		return tx.PutRecord(prev, stored(r1, "assessment", "north", 3, map[string]string{"x": "3"}))
	})
	if p := position(t, st); p.LastSeq != 4 {
		t.Fatalf("LastSeq = %d, want 4", p.LastSeq)
	}
	want := []records.Change{
		{Seq: 2, ID: r2, Scope: "north", Form: "visit"},
		{Seq: 3, ID: r3, Scope: "south", Form: "assessment"},
		{Seq: 4, ID: r1, Scope: "north", Form: "assessment"},
	}
	if got := changes(t, st); !slices.Equal(got, want) {
		t.Fatalf("changes = %+v\nwant      %+v (each record once, at its latest seq)", got, want)
	}
	var after []records.Change
	view(t, st, func(tx records.ReadTx) error {
		return tx.Changes(2, func(c records.Change) (bool, error) { after = append(after, c); return true, nil })
	})
	if !slices.Equal(after, want[1:]) {
		t.Fatalf("changes after 2 = %+v, want %+v", after, want[1:])
	}
	// Counted by their keys: seq 1 moved to 4, so (0, 3] holds two.
	for _, c := range []struct {
		after, upTo uint64
		want        int
	}{{0, 3, 2}, {0, 4, 3}, {1, 2, 1}, {2, 3, 1}, {3, 9, 1}, {4, 9, 0}, {0, 0, 0}} {
		view(t, st, func(tx records.ReadTx) error {
			if n, err := tx.CountChanges(c.after, c.upTo); err != nil || n != c.want {
				t.Errorf("CountChanges(%d, %d) = %d, %v; want %d", c.after, c.upTo, n, err, c.want)
			}
			return nil
		})
	}

	// An Update that puts nothing gives out no seq.
	update(t, st, func(tx records.Tx) error { return nil })
	if p := position(t, st); p.LastSeq != 4 {
		t.Fatalf("LastSeq after an empty transaction = %d, want 4", p.LastSeq)
	}
}

func TestTxNonce(t *testing.T) {
	st := MustOpenStore(t)
	r1, r2, r3 := newID(t), newID(t), newID(t)
	update(t, st, func(tx records.Tx) error {
		if err := tx.PutRecord(nil, stored(r1, "f", "s", 1, map[string]string{"x": "1"})); err != nil {
			return err
		}
		return tx.PutRecord(nil, stored(r2, "f", "s", 1, map[string]string{"x": "1"}))
	})
	update(t, st, func(tx records.Tx) error {
		return tx.PutRecord(nil, stored(r3, "f", "s", 1, map[string]string{"x": "1"}))
	})
	view(t, st, func(tx records.ReadTx) error {
		n := map[uint64]uint64{}
		for seq := uint64(1); seq <= 3; seq++ {
			v, ok := tx.TxNonce(seq)
			if !ok {
				t.Errorf("TxNonce(%d): not found", seq)
			}
			if v == 0 {
				t.Errorf("TxNonce(%d) = 0, the start's nonce", seq)
			}
			n[seq] = v
		}
		if n[1] != n[2] {
			t.Errorf("seqs 1 and 2 of one transaction have nonces %x and %x", n[1], n[2])
		}
		if n[1] == n[3] {
			t.Errorf("two transactions share the nonce %x", n[1])
		}
		for _, seq := range []uint64{4, 5, 1 << 40} {
			if v, ok := tx.TxNonce(seq); ok {
				t.Errorf("TxNonce(%d) beyond the last seq = %x, found", seq, v)
			}
		}
		return nil
	})
}

func TestConflictIndex(t *testing.T) {
	st := MustOpenStore(t)
	r1, r2 := newID(t), newID(t)
	list := func() []string {
		var ids []string
		view(t, st, func(tx records.ReadTx) error {
			return tx.Conflicts(nil, func(pos []byte, id string) (bool, error) { ids = append(ids, id); return true, nil })
		})
		return ids
	}
	update(t, st, func(tx records.Tx) error {
		a := stored(r1, "f", "s", 1, map[string]string{"x": "1"})
		a.ConflictSince = t0.Add(2 * time.Minute)
		b := stored(r2, "f", "s", 1, map[string]string{"x": "1"})
		b.ConflictSince = t0.Add(time.Minute)
		if err := tx.PutRecord(nil, a); err != nil {
			return err
		}
		return tx.PutRecord(nil, b)
	})
	if got := list(); !slices.Equal(got, []string{r2, r1}) {
		t.Fatalf("conflicts = %v, want [r2 r1] (oldest detection first)", got)
	}
	if got := get(t, st, r2).ConflictSince; !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ConflictSince read back = %v, want %v", got, t0.Add(time.Minute))
	}

	// Resuming after the first entry's position gives the second.
	var first []byte
	view(t, st, func(tx records.ReadTx) error {
		return tx.Conflicts(nil, func(pos []byte, id string) (bool, error) { first = pos; return false, nil })
	})
	var rest []string
	view(t, st, func(tx records.ReadTx) error {
		return tx.Conflicts(first, func(pos []byte, id string) (bool, error) { rest = append(rest, id); return true, nil })
	})
	if !slices.Equal(rest, []string{r1}) {
		t.Fatalf("conflicts after the first = %v, want [r1]", rest)
	}

	// Clearing ConflictSince removes the record from the index.
	update(t, st, func(tx records.Tx) error {
		prev, err := tx.Record(r2)
		if err != nil {
			return err
		}
		next := stored(r2, "f", "s", 2, map[string]string{"x": "2"})
		return tx.PutRecord(prev, next)
	})
	if got := list(); !slices.Equal(got, []string{r1}) {
		t.Fatalf("conflicts after clearing r2 = %v, want [r1]", got)
	}
	if got := get(t, st, r2).ConflictSince; !got.IsZero() {
		t.Fatalf("r2 ConflictSince = %v, want zero", got)
	}
}

func TestFieldNames(t *testing.T) {
	st := MustOpenStore(t)
	update(t, st, func(tx records.Tx) error {
		a := stored(newID(t), "assessment", "s", 1, map[string]string{"head_name": `"x"`, "household_size": "5", "_deleted": "false"})
		b := stored(newID(t), "visit", "s", 1, map[string]string{"visit_date": `"2025-03-01"`, "household_size": "3"})
		c := stored(newID(t), "assessment", "s", 1, map[string]string{"monthly_income_mad": "1200"})
		// The names of a write like the last one of its form are not
		// looked at again: as many names but another one, or the same
		// names in another form, must still be seen.
		sameAsA := stored(newID(t), "assessment", "s", 1, map[string]string{"head_name": `"y"`, "household_size": "4", "_deleted": "false"})
		oneOther := stored(newID(t), "assessment", "s", 1, map[string]string{"head_name": `"y"`, "phone": `"+212"`, "_deleted": "false"})
		otherForm := stored(newID(t), "visit", "s", 1, map[string]string{"head_name": `"y"`, "phone": `"+212"`, "_deleted": "false"})
		for _, r := range []*records.Stored{a, sameAsA, oneOther, otherForm, b, c} {
			if err := tx.PutRecord(nil, r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, st, func(tx records.ReadTx) error {
		for form, want := range map[string][]string{
			"assessment": {"head_name", "household_size", "monthly_income_mad", "phone"},
			"visit":      {"head_name", "household_size", "phone", "visit_date"},
			"":           {"head_name", "household_size", "monthly_income_mad", "phone", "visit_date"},
			"other":      {},
		} {
			got, err := tx.FieldNames(form)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				t.Errorf("FieldNames(%q) = %v, want %v", form, got, want)
			}
		}
		return nil
	})
}

func TestHistoryInOrder(t *testing.T) {
	st := MustOpenStore(t)
	r1, r2 := newID(t), newID(t)
	update(t, st, func(tx records.Tx) error {
		for i := uint64(1); i <= 3; i++ {
			for _, id := range []string{r1, r2} {
				h := &records.HistoryEntry{Seq: i, Actor: actorA, Kind: records.KindPush, Fields: []string{"x"},
					Values: map[string]json.RawMessage{"x": json.RawMessage(`"` + id[:4] + `"`)}}
				if err := tx.AppendHistory(id, h); err != nil {
					return err
				}
			}
		}
		return tx.AppendHistory(r1, &records.HistoryEntry{Seq: 4, Actor: actorB, Kind: records.KindResolve, Note: "checked with the household", Fields: []string{"x"}})
	})
	view(t, st, func(tx records.ReadTx) error {
		h, err := tx.History(r1)
		if err != nil {
			return err
		}
		var seqs []uint64
		for _, e := range h {
			seqs = append(seqs, e.Seq)
		}
		if !slices.Equal(seqs, []uint64{1, 2, 3, 4}) {
			t.Errorf("history seqs of r1 = %v, want [1 2 3 4]", seqs)
		}
		if last := h[len(h)-1]; last.Kind != records.KindResolve || last.Note != "checked with the household" || last.Actor != actorB {
			t.Errorf("last entry = %+v", last)
		}
		h2, err := tx.History(r2)
		if err != nil {
			return err
		}
		if len(h2) != 3 {
			t.Errorf("history of r2 has %d entries, want 3", len(h2))
		}
		if h3, err := tx.History(newID(t)); err != nil || len(h3) != 0 {
			t.Errorf("history of an unknown record = %v, %v; want empty", h3, err)
		}
		return nil
	})
}

func TestBatchRoundTrip(t *testing.T) {
	st := MustOpenStore(t)
	dev, batch := newID(t), newID(t)
	want := &records.BatchAnswer{Hash: []byte{1, 2, 3, 0xff}, Response: []byte(`{"batch":"x","results":[]}`)}
	view(t, st, func(tx records.ReadTx) error {
		a, err := tx.Batch(dev, batch)
		if err != nil || a != nil {
			t.Errorf("Batch before PutBatch = %v, %v; want nil, nil", a, err)
		}
		return nil
	})
	update(t, st, func(tx records.Tx) error { return tx.PutBatch(dev, batch, want) })
	view(t, st, func(tx records.ReadTx) error {
		a, err := tx.Batch(dev, batch)
		if err != nil {
			return err
		}
		if a == nil || !bytes.Equal(a.Hash, want.Hash) || !bytes.Equal(a.Response, want.Response) {
			t.Errorf("Batch = %+v, want %+v", a, want)
		}
		if other, err := tx.Batch(newID(t), batch); err != nil || other != nil {
			t.Errorf("another device's batch = %v, %v; want nil", other, err)
		}
		return nil
	})
}

func TestQuarantine(t *testing.T) {
	st := MustOpenStore(t)
	ids := []string{
		"0193a6f4-0000-7000-8000-000000000001",
		"0193a6f4-0000-7000-8000-000000000002",
		"0193a6f4-0000-7000-8000-000000000003",
	}
	item := json.RawMessage(`{"id":"0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00","form":"assessment","writes":[{"fields":{"head_name":"فاطمة"}}]}`)
	update(t, st, func(tx records.Tx) error {
		for _, id := range []string{ids[2], ids[0], ids[1]} {
			q := &records.QuarantineEntry{ID: id, Record: "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00", Device: actorA,
				ReceivedAt: "2025-03-01T09:00:00.000Z", Error: sp.Errorf(sp.CodeForgedClock, "clock"), Item: item}
			if err := tx.PutQuarantine(q); err != nil {
				return err
			}
		}
		return nil
	})
	listIDs := func(after string, limit int) []string {
		var out []string
		view(t, st, func(tx records.ReadTx) error {
			qs, err := tx.Quarantine(after, limit)
			for _, q := range qs {
				out = append(out, q.ID)
			}
			return err
		})
		return out
	}
	if got := listIDs("", 10); !slices.Equal(got, ids) {
		t.Fatalf("quarantine = %v, want %v", got, ids)
	}
	if got := listIDs("", 2); !slices.Equal(got, ids[:2]) {
		t.Fatalf("quarantine limit 2 = %v, want %v", got, ids[:2])
	}
	if got := listIDs(ids[0], 10); !slices.Equal(got, ids[1:]) {
		t.Fatalf("quarantine after %s = %v, want %v", ids[0], got, ids[1:])
	}
	view(t, st, func(tx records.ReadTx) error {
		q, err := tx.QuarantineEntry(ids[1])
		if err != nil {
			return err
		}
		if q == nil || !bytes.Equal(q.Item, item) || q.Error == nil || q.Error.Code != sp.CodeForgedClock || q.Device != actorA {
			t.Errorf("QuarantineEntry = %+v", q)
		}
		return nil
	})
	update(t, st, func(tx records.Tx) error { return tx.DeleteQuarantine(ids[1]) })
	if got := listIDs("", 10); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Fatalf("quarantine after delete = %v", got)
	}
	view(t, st, func(tx records.ReadTx) error {
		if q, err := tx.QuarantineEntry(ids[1]); err != nil || q != nil {
			t.Errorf("deleted entry = %v, %v; want nil", q, err)
		}
		return nil
	})
}

func TestUpdateErrorRollsBack(t *testing.T) {
	st := MustOpenStore(t)
	r0 := newID(t)
	update(t, st, func(tx records.Tx) error {
		return tx.PutRecord(nil, stored(r0, "f", "s", 1, map[string]string{"x": "1"}))
	})
	before := position(t, st)

	r1, dev, batch, qid := newID(t), newID(t), newID(t), newID(t)
	boom := errors.New("boom")
	err := st.Update(context.Background(), func(tx records.Tx) error {
		prev, err := tx.Record(r0)
		if err != nil {
			return err
		}
		if err := tx.PutRecord(prev, stored(r0, "f", "s", 2, map[string]string{"x": "2"})); err != nil {
			return err
		}
		if err := tx.PutRecord(nil, stored(r1, "newform", "s", 1, map[string]string{"brand_new": "1"})); err != nil {
			return err
		}
		if err := tx.AppendHistory(r1, &records.HistoryEntry{Seq: 3, Kind: records.KindPush}); err != nil {
			return err
		}
		if err := tx.PutBatch(dev, batch, &records.BatchAnswer{Hash: []byte{1}}); err != nil {
			return err
		}
		if err := tx.PutQuarantine(&records.QuarantineEntry{ID: qid, Item: json.RawMessage(`{}`)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the closure's error", err)
	}
	if p := position(t, st); p != before {
		t.Fatalf("position after rollback = %+v, want %+v", p, before)
	}
	if r := get(t, st, r0); r.State.Clock[actorA] != 1 || r.Seq != 1 {
		t.Fatalf("r0 after rollback = clock %v seq %d, want the first state", r.State.Clock, r.Seq)
	}
	view(t, st, func(tx records.ReadTx) error {
		if r, err := tx.Record(r1); err != nil || r != nil {
			t.Errorf("r1 after rollback = %v, %v", r, err)
		}
		if h, err := tx.History(r1); err != nil || len(h) != 0 {
			t.Errorf("history after rollback = %v, %v", h, err)
		}
		if b, err := tx.Batch(dev, batch); err != nil || b != nil {
			t.Errorf("batch after rollback = %v, %v", b, err)
		}
		if q, err := tx.Quarantine("", 10); err != nil || len(q) != 0 {
			t.Errorf("quarantine after rollback = %v, %v", q, err)
		}
		if f, err := tx.FieldNames(""); err != nil || !slices.Equal(f, []string{"x"}) {
			t.Errorf("field names after rollback = %v, %v; want [x]", f, err)
		}
		if _, ok := tx.TxNonce(2); ok {
			t.Errorf("TxNonce(2) found after rollback")
		}
		return nil
	})
	if got := changes(t, st); len(got) != 1 || got[0].ID != r0 || got[0].Seq != 1 {
		t.Fatalf("changes after rollback = %+v", got)
	}
	// The next transaction gets seq 2, as if the failed one never ran.
	update(t, st, func(tx records.Tx) error {
		return tx.PutRecord(nil, stored(r1, "f", "s", 1, map[string]string{"x": "1"}))
	})
	if r := get(t, st, r1); r.Seq != 2 {
		t.Fatalf("seq after rollback = %d, want 2", r.Seq)
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r1 := newID(t)
	rec := stored(r1, "assessment", "north", 1, map[string]string{"head_name": `"فاطمة"`, "household_size": "5"})
	rec.ConflictSince = t0
	update(t, st, func(tx records.Tx) error {
		if err := tx.PutRecord(nil, rec); err != nil {
			return err
		}
		return tx.AppendHistory(r1, &records.HistoryEntry{Seq: 1, Kind: records.KindPush, Actor: actorA})
	})
	acc, token, err := auth.NewService(st, nil).Create(ctx, auth.RoleDevice, "tablet 7", []string{"north"})
	if err != nil {
		t.Fatal(err)
	}
	before := position(t, st)
	var nonce uint64
	view(t, st, func(tx records.ReadTx) error { nonce, _ = tx.TxNonce(1); return nil })
	if err := st.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = MustOpenStoreDir(t, dir)
	if p := position(t, st); p != before {
		t.Fatalf("position after reopen = %+v, want %+v", p, before)
	}
	got := get(t, st, r1)
	if got.Seq != 1 || !got.ConflictSince.Equal(t0) || !got.UpdatedAt.Equal(rec.UpdatedAt) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("record after reopen = %+v", got)
	}
	if v := got.State.Writes[0].Fields["head_name"]; string(v) != `"فاطمة"` {
		t.Fatalf("head_name after reopen = %s", v)
	}
	view(t, st, func(tx records.ReadTx) error {
		if n, ok := tx.TxNonce(1); !ok || n != nonce {
			t.Errorf("TxNonce(1) after reopen = %x, %v; want %x", n, ok, nonce)
		}
		if h, err := tx.History(r1); err != nil || len(h) != 1 {
			t.Errorf("history after reopen = %v, %v", h, err)
		}
		return nil
	})
	a, err := st.AccountByTokenHash(ctx, auth.HashToken(token))
	if err != nil || a.ID != acc.ID {
		t.Fatalf("account after reopen = %v, %v", a, err)
	}
}

func TestAccounts(t *testing.T) {
	st := MustOpenStore(t)
	ctx := context.Background()
	svc := auth.NewService(st, nil)
	dev, devToken, err := svc.Create(ctx, auth.RoleDevice, "tablet 1", []string{"north"})
	if err != nil {
		t.Fatal(err)
	}
	sup, supToken, err := svc.Create(ctx, auth.RoleSupervisor, "Amina", []string{"north", "south"})
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]*auth.Account{devToken: dev, supToken: sup} {
		a, err := st.AccountByTokenHash(ctx, auth.HashToken(token))
		if err != nil {
			t.Fatalf("AccountByTokenHash: %v", err)
		}
		if a.ID != want.ID || a.Role != want.Role || a.Name != want.Name || !slices.Equal(a.Scopes, want.Scopes) {
			t.Fatalf("account = %+v, want %+v", a, want)
		}
	}
	if _, err := st.AccountByTokenHash(ctx, auth.HashToken("fst_unknown")); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("unknown token: %v, want auth.ErrNotFound", err)
	}
	// The same account id twice is refused.
	if err := st.CreateAccount(ctx, dev); err == nil {
		t.Fatal("CreateAccount with an existing id: no error")
	}
	// Through ReadTx too.
	view(t, st, func(tx records.ReadTx) error {
		a, err := tx.Account(sup.ID)
		if err != nil || a == nil || a.Name != "Amina" {
			t.Errorf("tx.Account = %v, %v", a, err)
		}
		if a, err := tx.Account(newID(t)); err != nil || a != nil {
			t.Errorf("tx.Account(unknown) = %v, %v; want nil, nil", a, err)
		}
		return nil
	})

	if err := st.RevokeAccount(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AccountByTokenHash(ctx, auth.HashToken(devToken)); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("revoked token: %v, want auth.ErrNotFound", err)
	}
	if _, err := svc.Authenticate(ctx, devToken); sp.ErrorCode(err) != sp.CodeUnauthorized {
		t.Fatalf("Authenticate(revoked) = %v, want unauthorized", err)
	}
	if a, err := st.Account(ctx, dev.ID); err != nil || !a.Revoked {
		t.Fatalf("revoked account = %+v, %v; want Revoked", a, err)
	}
	if err := st.RevokeAccount(ctx, newID(t)); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("RevokeAccount(unknown) = %v, want auth.ErrNotFound", err)
	}
	if a, err := st.AccountByTokenHash(ctx, auth.HashToken(supToken)); err != nil || a.ID != sup.ID {
		t.Fatalf("other account after a revoke = %v, %v", a, err)
	}
	all, err := st.Accounts(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Accounts = %d, %v; want 2", len(all), err)
	}
}

func TestCreateFirstAdminOnce(t *testing.T) {
	st := MustOpenStore(t)
	ctx := context.Background()
	svc := auth.NewService(st, nil)
	first, token, err := svc.NewAccount(auth.RoleAdmin, "admin", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := st.CreateFirstAdmin(ctx, first)
	if err != nil || !ok {
		t.Fatalf("first CreateFirstAdmin = %v, %v; want true", ok, err)
	}
	second, token2, err := svc.NewAccount(auth.RoleAdmin, "admin", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ok, err = st.CreateFirstAdmin(ctx, second)
	if err != nil || ok {
		t.Fatalf("second CreateFirstAdmin = %v, %v; want false, nil", ok, err)
	}
	if a, err := svc.Authenticate(ctx, token); err != nil || a.ID != first.ID || a.Role != auth.RoleAdmin {
		t.Fatalf("first admin's token = %v, %v", a, err)
	}
	if _, err := svc.Authenticate(ctx, token2); sp.ErrorCode(err) != sp.CodeUnauthorized {
		t.Fatalf("second admin's token = %v, want unauthorized (never created)", err)
	}
	if _, err := st.Account(ctx, second.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("second admin account: %v, want auth.ErrNotFound", err)
	}
	// Still once only after the first admin is revoked.
	if err := st.RevokeAccount(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.CreateFirstAdmin(ctx, second); err != nil || ok {
		t.Fatalf("CreateFirstAdmin after revoke = %v, %v; want false", ok, err)
	}
}
