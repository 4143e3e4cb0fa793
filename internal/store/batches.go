package store

import (
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/records"
)

func batchKey(device, batch string) ([]byte, error) {
	d, ok1 := idKey(device)
	b, ok2 := idKey(batch)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("store: device or batch id is not a UUID")
	}
	return append(append([]byte{}, d...), b...), nil
}

// Batch implements records.ReadTx.
func (t *tx) Batch(device, batch string) (*records.BatchAnswer, error) {
	k, err := batchKey(device, batch)
	if err != nil {
		return nil, err
	}
	v := t.btx.Bucket(bBatches).Get(k)
	if v == nil {
		return nil, nil
	}
	var a records.BatchAnswer
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("store: decode batch answer: %w", err)
	}
	return &a, nil
}

// PutBatch implements records.Tx.
func (t *tx) PutBatch(device, batch string, a *records.BatchAnswer) error {
	k, err := batchKey(device, batch)
	if err != nil {
		return err
	}
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return t.btx.Bucket(bBatches).Put(k, v)
}
