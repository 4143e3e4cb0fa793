package records

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"sort"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// batchHash identifies a batch's content as parsed JSON (PROTOCOL.md §2):
// key order, white space and number spelling do not matter, nor the order
// of each item's writes. Items that decoded are hashed from their typed
// form (the protocol's keys; others are ignored); items that did not are
// hashed from their generic canonical form.
func batchHash(items []decodedItem) ([]byte, error) {
	h := sha256.New()
	for _, it := range items {
		if it.hashErr != nil {
			return nil, it.hashErr
		}
		h.Write(it.hash[:])
	}
	return h.Sum(nil), nil
}

// itemHash is the hash of one item's canonical form.
func itemHash(it *decodedItem) ([32]byte, error) {
	var out [32]byte
	h := sha256.New()
	if it.parsed {
		if err := hashState(h, it.state); err != nil {
			return out, err
		}
	} else if c, err := canonicalItem(it.raw); err == nil {
		h.Write([]byte{1})
		writeLen(h, c)
	} else {
		// Beyond what the JSON parser reads (too deep): its bytes, then.
		h.Write([]byte{2})
		writeLen(h, it.raw)
	}
	h.Sum(out[:0])
	return out, nil
}

// hashState feeds a canonical encoding of a typed item to h.
func hashState(h hash.Hash, s sp.State) error {
	h.Write([]byte{0})
	writeLen(h, []byte(s.ID))
	writeLen(h, []byte(s.Form))
	writeLen(h, []byte(s.Scope))
	hashClock(h, s.Clock)
	writes := append([]sp.Write(nil), s.Writes...)
	sort.Slice(writes, func(i, j int) bool { return writes[i].Dot().Less(writes[j].Dot()) })
	writeUint(h, uint64(len(writes)))
	for _, w := range writes {
		writeLen(h, []byte(w.By))
		writeUint(h, w.N)
		writeUint(h, uint64(w.At))
		names := make([]string, 0, len(w.Fields))
		for n := range w.Fields {
			names = append(names, n)
		}
		sort.Strings(names)
		writeUint(h, uint64(len(names)))
		for _, n := range names {
			c, err := sp.Canonical(w.Fields[n])
			if err != nil {
				return err
			}
			writeLen(h, []byte(n))
			writeLen(h, c)
		}
		hashClock(h, w.Ctx)
	}
	return nil
}

func hashClock(h hash.Hash, c sp.Clock) {
	actors := c.Actors()
	writeUint(h, uint64(len(actors)))
	for _, a := range actors {
		writeLen(h, []byte(a))
		writeUint(h, c[a])
	}
}

func writeUint(h hash.Hash, n uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	h.Write(b[:])
}

// writeLen writes b with its length first, so no two sequences collide.
func writeLen(h hash.Hash, b []byte) {
	writeUint(h, uint64(len(b)))
	h.Write(b)
}

// canonicalItem returns the canonical encoding of an item that did not
// decode, with its writes (if it has a list of them) sorted by their own
// canonical encodings.
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
