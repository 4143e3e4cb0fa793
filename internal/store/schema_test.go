package store

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/internal/records"
	bolt "go.etcd.io/bbolt"
)

// TestSchema1Upgrade opens a database laid out by schema 1 (history keyed
// by record id) and checks that its history still reads, in order, before
// what is written after the upgrade; that the file says the current schema
// after;
// and that a file of a newer schema is refused.
func TestSchema1Upgrade(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := "0193a6f4-7c1e-7b55-9a10-5e2d3c4b1a00"
	k, _ := idKey(id)
	// Make it a schema 1 file: two history entries in the old layout, no
	// history log or index.
	err = st.db.Update(func(btx *bolt.Tx) error {
		for _, b := range [][]byte{bHistLog, bHistIndex} {
			if err := btx.DeleteBucket(b); err != nil {
				return err
			}
		}
		old := btx.Bucket(bHistory)
		for _, seq := range []uint64{1, 2} {
			h := &records.HistoryEntry{Seq: seq, ReceivedAt: "2025-03-01T09:00:00.000Z", Actor: "a", Kind: records.KindPush, Fields: []string{"x"}}
			n, _ := old.NextSequence()
			if err := old.Put(append(append([]byte{}, k...), u64(n)...), h.AppendJSON(nil)); err != nil {
				return err
			}
		}
		return btx.Bucket(bMeta).Put(kSchema, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := VerifyFile(context.Background(), filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("a schema 1 file does not verify: %v", err)
	}

	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("open a schema 1 file: %v", err)
	}
	if v := fileSchema(t, st); v != schemaVersion {
		t.Errorf("after the upgrade the file says schema %d, want %d", v, schemaVersion)
	}
	ctx := context.Background()
	err = st.Update(ctx, func(tx records.Tx) error {
		return tx.AppendHistory(id, &records.HistoryEntry{Seq: 3, ReceivedAt: "2025-03-02T09:00:00.000Z", Actor: "b", Kind: records.KindPush, Fields: []string{"y"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	err = st.View(ctx, func(tx records.ReadTx) error {
		h, err := tx.History(id)
		for _, e := range h {
			seqs = append(seqs, e.Seq)
		}
		return err
	})
	if err != nil || len(seqs) != 3 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 {
		t.Fatalf("history after the upgrade: seqs %v, %v; want [1 2 3]", seqs, err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatalf("check after the upgrade: %v", err)
	}

	// A log entry gone from under its index is found by the check.
	err = st.db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bHistLog).Delete(u64(1)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err == nil {
		t.Error("check passed with a history index entry pointing at nothing")
	}

	// A file of a newer schema is refused, and left as it was.
	err = st.db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bMeta).Put(kSchema, u64(schemaVersion+1)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := Open(dir, Options{}); err == nil {
		st.Close()
		t.Fatal("opened a file of a newer schema")
	}
}

// A schema 2 file (kept batch answers hashed with SHA-256 only) is opened
// and marked schema 3, so that a server knowing only schema 2 refuses it.
func TestSchema2Upgrade(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bMeta).Put(kSchema, u64(2)) }); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = Open(dir, Options{}); err != nil {
		t.Fatalf("open a schema 2 file: %v", err)
	}
	defer st.Close()
	if v := fileSchema(t, st); v != 3 {
		t.Errorf("after opening, the file says schema %d, want 3", v)
	}
}

// fileSchema reads the schema version the file says.
func fileSchema(t *testing.T, st *Store) uint64 {
	t.Helper()
	var v uint64
	if err := st.db.View(func(btx *bolt.Tx) error {
		b := btx.Bucket(bMeta).Get(kSchema)
		if len(b) != 8 {
			t.Fatalf("schema key: %x", b)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
