package records

import (
	"context"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
)

// SetPreparePath turns the preparation of pushed records before the
// transaction on or off, and returns a function that restores it.
func SetPreparePath(on bool) (restore func()) {
	was := preparePath
	preparePath = on
	return func() { preparePath = was }
}

// LegacyBatchHash is a batch's hash in version 1 (SHA-256), as the answers
// of batches pushed before version 2 were kept with.
func LegacyBatchHash(items []json.RawMessage, caller *auth.Account, batch string) ([]byte, error) {
	decoded, err := (&Service{store: emptyStore{}}).decodeItems(context.Background(), items, caller, batch)
	if err != nil {
		return nil, err
	}
	return legacyBatchHash(decoded)
}
