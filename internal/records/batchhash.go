package records

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"sort"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// batchHash identifies a batch's content as parsed JSON (PROTOCOL.md §2):
// key order, white space and number spelling do not matter, nor the order
// of each item's writes. Items that are not objects hash as they parse.
func batchHash(req *sp.PushRequest) ([]byte, error) {
	h := sha256.New()
	for _, raw := range req.Records {
		c, err := canonicalItem(raw)
		if err != nil {
			return nil, err
		}
		h.Write(c)
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil), nil
}

// canonicalItem returns the canonical encoding of one item, with its
// writes sorted by their own canonical encodings.
func canonicalItem(raw json.RawMessage) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return sp.Canonical(raw)
	}
	var writes []json.RawMessage
	if w, ok := obj["writes"]; ok && json.Unmarshal(w, &writes) == nil {
		enc := make([][]byte, len(writes))
		for i, w := range writes {
			c, err := sp.Canonical(w)
			if err != nil {
				return nil, err
			}
			enc[i] = c
		}
		sort.Slice(enc, func(i, j int) bool { return bytes.Compare(enc[i], enc[j]) < 0 })
		obj["writes"] = append(append([]byte{'['}, bytes.Join(enc, []byte{','})...), ']')
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return sp.Canonical(b)
}
