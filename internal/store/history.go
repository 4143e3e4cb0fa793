package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/records"
)

// History is kept in an append-only log, keyed by a bucket-wide counter,
// so that a push writes its entries together at the end of the file; an
// index keyed by record id and counter (no value) finds a record's
// entries in order. Entries written by schema 1, keyed by record id and
// counter in the history bucket, are read first: they are older.

// AppendHistory implements records.Tx.
func (t *tx) AppendHistory(id string, h *records.HistoryEntry) error {
	k, ok := idKey(id)
	if !ok {
		return fmt.Errorf("store: record id is not a UUID")
	}
	log := t.btx.Bucket(bHistLog)
	n, err := log.NextSequence()
	if err != nil {
		return err
	}
	if err := log.Put(u64(n), h.AppendJSON(make([]byte, 0, h.SizeHint()))); err != nil {
		return err
	}
	return t.btx.Bucket(bHistIndex).Put(append(append(make([]byte, 0, 24), k...), u64(n)...), []byte{})
}

// History implements records.ReadTx.
func (t *tx) History(id string) ([]records.HistoryEntry, error) {
	k, ok := idKey(id)
	if !ok {
		return nil, nil
	}
	var out []records.HistoryEntry
	add := func(v []byte) error {
		var h records.HistoryEntry
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("store: decode history: %w", err)
		}
		out = append(out, h)
		return nil
	}
	c := t.btx.Bucket(bHistory).Cursor()
	for hk, v := c.Seek(k); hk != nil && bytes.HasPrefix(hk, k); hk, v = c.Next() {
		if err := add(v); err != nil {
			return nil, err
		}
	}
	log := t.btx.Bucket(bHistLog)
	c = t.btx.Bucket(bHistIndex).Cursor()
	for hk, _ := c.Seek(k); hk != nil && bytes.HasPrefix(hk, k); hk, _ = c.Next() {
		v := log.Get(hk[len(k):])
		if v == nil {
			return nil, fmt.Errorf("store: history index points at a missing entry %d", binary.BigEndian.Uint64(hk[len(k):]))
		}
		if err := add(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkHistory verifies that the history index and log agree: every index
// entry points at an entry of the log, and every entry is indexed once.
func checkHistory(t *tx) error {
	log, index := t.btx.Bucket(bHistLog), t.btx.Bucket(bHistIndex)
	if log == nil || index == nil {
		return nil // a schema 1 file, not opened since
	}
	n := 0
	c := index.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 24 || log.Get(k[16:]) == nil {
			return fmt.Errorf("store: history index entry %x points at no entry", k)
		}
		n++
	}
	if entries := log.Stats().KeyN; entries != n {
		return fmt.Errorf("store: %d history entries but %d index entries", entries, n)
	}
	return nil
}
