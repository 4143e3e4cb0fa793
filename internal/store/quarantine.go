package store

import (
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/records"
)

// PutQuarantine implements records.Tx.
func (t *tx) PutQuarantine(q *records.QuarantineEntry) error {
	k, ok := idKey(q.ID)
	if !ok {
		return fmt.Errorf("store: quarantine id is not a UUID")
	}
	v, err := json.Marshal(q)
	if err != nil {
		return err
	}
	return t.btx.Bucket(bQuarantine).Put(k, v)
}

// DeleteQuarantine implements records.Tx.
func (t *tx) DeleteQuarantine(id string) error {
	k, ok := idKey(id)
	if !ok {
		return nil
	}
	return t.btx.Bucket(bQuarantine).Delete(k)
}

// QuarantineEntry implements records.ReadTx.
func (t *tx) QuarantineEntry(id string) (*records.QuarantineEntry, error) {
	k, ok := idKey(id)
	if !ok {
		return nil, nil
	}
	v := t.btx.Bucket(bQuarantine).Get(k)
	if v == nil {
		return nil, nil
	}
	var q records.QuarantineEntry
	if err := json.Unmarshal(v, &q); err != nil {
		return nil, fmt.Errorf("store: decode quarantine entry: %w", err)
	}
	return &q, nil
}

// Quarantine implements records.ReadTx.
func (t *tx) Quarantine(after string, limit int) ([]records.QuarantineEntry, error) {
	c := t.btx.Bucket(bQuarantine).Cursor()
	k, v := c.First()
	if ak, ok := idKey(after); ok {
		k, v = c.Seek(ak)
		if k != nil && string(k) == string(ak) {
			k, v = c.Next()
		}
	}
	var out []records.QuarantineEntry
	for ; k != nil && len(out) < limit; k, v = c.Next() {
		var q records.QuarantineEntry
		if err := json.Unmarshal(v, &q); err != nil {
			return nil, fmt.Errorf("store: decode quarantine entry: %w", err)
		}
		out = append(out, q)
	}
	return out, nil
}
