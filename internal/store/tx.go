package store

import (
	"crypto/rand"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// tx implements records.Tx and records.ReadTx over one bbolt transaction.
type tx struct {
	btx *bolt.Tx
	// Change sequence numbers given out in this transaction, by record id:
	// a record changed twice in one transaction keeps one seq.
	assigned map[string]uint64
	firstSeq uint64 // first seq of this transaction, 0 if none
	lastSeq  uint64 // the database's last seq, as this transaction leaves it
	// namesKnown are the (form, field name) pairs this transaction found
	// or put in the field names bucket.
	namesKnown map[formField]struct{}
	// lastNames are, by form, the names of the fields of the write whose
	// names were put last: a write with the same names needs no look.
	lastNames map[string][]string
	// names are the scope and form names read from the feed (parseChange).
	names map[string]string
	// lastChange is the record id of the change entry read last, and its
	// key.
	lastChange lastChange
}

type lastChange struct {
	id  string
	key [16]byte
}

// formField is a field name of a form.
type formField struct{ form, name string }

// appendFill is the fill percent of buckets whose keys mostly grow (the
// change feed and its log by seq, the history log by counter, records and
// the history index by time-ordered UUIDv7): a page is split only when
// full, so the file stays dense. At 0.9, three records of ~1.3 KB did not
// fit under the split point and a page held two: two thirds used.
const appendFill = 1.0

func newTx(btx *bolt.Tx) *tx {
	t := &tx{btx: btx}
	if btx.Writable() {
		for _, name := range [][]byte{bChanges, bTxLog, bRecords, bQuarantine, bHistLog, bHistIndex} {
			if b := btx.Bucket(name); b != nil { // every bucket exists once the store is open
				b.FillPercent = appendFill
			}
		}
	}
	if v := btx.Bucket(bMeta).Get(kLastSeq); v != nil {
		t.lastSeq = binary.BigEndian.Uint64(v)
	}
	return t
}

// nextSeq gives out the next change sequence number.
func (t *tx) nextSeq() uint64 {
	t.lastSeq++
	if t.firstSeq == 0 {
		t.firstSeq = t.lastSeq
	}
	return t.lastSeq
}

// finish records, before commit, the transaction's range of seqs with a
// random nonce in the transaction log, and the new last seq.
func (t *tx) finish() error {
	if t.firstSeq == 0 {
		return nil
	}
	v := make([]byte, 16)
	if _, err := rand.Read(v[:8]); err != nil {
		return err
	}
	if binary.BigEndian.Uint64(v[:8]) == 0 {
		v[7] = 1 // zero is the start's nonce
	}
	binary.BigEndian.PutUint64(v[8:], t.lastSeq)
	if err := t.btx.Bucket(bTxLog).Put(u64(t.firstSeq), v); err != nil {
		return err
	}
	return t.btx.Bucket(bMeta).Put(kLastSeq, u64(t.lastSeq))
}

// TxNonce implements records.ReadTx.
func (t *tx) TxNonce(seq uint64) (uint64, bool) {
	c := t.btx.Bucket(bTxLog).Cursor()
	k, v := c.Seek(u64(seq))
	if k == nil || binary.BigEndian.Uint64(k) != seq {
		k, v = c.Prev()
	}
	if k == nil {
		return 0, false
	}
	first, last := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(v[8:])
	if seq < first || seq > last {
		return 0, false
	}
	return binary.BigEndian.Uint64(v[:8]), true
}
