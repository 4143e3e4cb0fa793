package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/records"
)

// AppendHistory implements records.Tx. Keys are the record id and a
// bucket-wide counter, so a record's history reads in order.
func (t *tx) AppendHistory(id string, h *records.HistoryEntry) error {
	k, ok := idKey(id)
	if !ok {
		return fmt.Errorf("store: record id is not a UUID")
	}
	b := t.btx.Bucket(bHistory)
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(append(append([]byte{}, k...), u64(n)...), h.AppendJSON(make([]byte, 0, 512)))
}

// History implements records.ReadTx.
func (t *tx) History(id string) ([]records.HistoryEntry, error) {
	k, ok := idKey(id)
	if !ok {
		return nil, nil
	}
	var out []records.HistoryEntry
	c := t.btx.Bucket(bHistory).Cursor()
	for hk, v := c.Seek(k); hk != nil && bytes.HasPrefix(hk, k); hk, v = c.Next() {
		var h records.HistoryEntry
		if err := json.Unmarshal(v, &h); err != nil {
			return nil, fmt.Errorf("store: decode history: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}
