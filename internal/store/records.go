package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/google/uuid"
)

// idKey turns a UUID into its 16-byte key; ok is false for a non-UUID.
func idKey(id string) ([]byte, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, false
	}
	return u[:], true
}

func keyID(k []byte) string {
	var u uuid.UUID
	copy(u[:], k)
	return u.String()
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// key returns a record id's key, without parsing it again when it is the
// id of the change just read.
func (t *tx) key(id string) ([]byte, bool) {
	if id != "" && id == t.lastChange.id {
		return t.lastChange.key[:], true
	}
	return idKey(id)
}

// Record implements records.ReadTx.
func (t *tx) Record(id string) (*records.Stored, error) {
	k, ok := t.key(id)
	if !ok {
		return nil, nil
	}
	v := t.btx.Bucket(bRecords).Get(k)
	if v == nil {
		return nil, nil
	}
	return decodeRecord(v)
}

// PutRecord implements records.Tx.
func (t *tx) PutRecord(prev, next *records.Stored) error {
	id := next.State.ID
	k, ok := idKey(id)
	if !ok {
		return fmt.Errorf("store: record id is not a UUID")
	}
	seq, again := t.assigned[id]
	if !again {
		if prev != nil {
			if err := t.btx.Bucket(bChanges).Delete(u64(prev.Seq)); err != nil {
				return err
			}
		}
		seq = t.nextSeq()
		if t.assigned == nil {
			t.assigned = map[string]uint64{}
		}
		t.assigned[id] = seq
		if err := t.btx.Bucket(bChanges).Put(u64(seq), changeValue(k, next.State.Scope, next.State.Form)); err != nil {
			return err
		}
	}
	next.Seq = seq
	if err := t.indexConflict(k, prev, next); err != nil {
		return err
	}
	if err := t.indexFieldNames(next); err != nil {
		return err
	}
	v, err := encodeRecord(next)
	if err != nil {
		return err
	}
	return t.btx.Bucket(bRecords).Put(k, v)
}

// indexConflict keeps the conflicts bucket (detected time + id) in step
// with the record's ConflictSince.
func (t *tx) indexConflict(k []byte, prev, next *records.Stored) error {
	b := t.btx.Bucket(bConflicts)
	var was time.Time
	if prev != nil {
		was = prev.ConflictSince
	}
	if was.Equal(next.ConflictSince) {
		return nil
	}
	if !was.IsZero() {
		if err := b.Delete(append(u64(uint64(ms(was))), k...)); err != nil {
			return err
		}
	}
	if !next.ConflictSince.IsZero() {
		return b.Put(append(u64(uint64(ms(next.ConflictSince))), k...), []byte{})
	}
	return nil
}

// changeValue is a change entry's value: the record id, then its scope and
// form (each a length byte and the name), so the feed filters without
// loading records.
func changeValue(id []byte, scope, form string) []byte {
	v := make([]byte, 0, 16+2+len(scope)+len(form))
	v = append(v, id...)
	v = append(v, byte(len(scope)))
	v = append(v, scope...)
	v = append(v, byte(len(form)))
	return append(v, form...)
}

// parseChange reads a change entry. Scope and form names come from names,
// which keeps one string per name for the transaction (a feed holds few).
func (t *tx) parseChange(k, v []byte) (records.Change, error) {
	if len(v) < 18 {
		return records.Change{}, fmt.Errorf("store: change entry too short")
	}
	c := records.Change{Seq: binary.BigEndian.Uint64(k), ID: keyID(v[:16])}
	n := int(v[16])
	if len(v) < 17+n+1 {
		return c, fmt.Errorf("store: change entry malformed")
	}
	c.Scope = t.name(v[17 : 17+n])
	m := int(v[17+n])
	if len(v) != 18+n+m {
		return c, fmt.Errorf("store: change entry malformed")
	}
	c.Form = t.name(v[18+n:])
	t.lastChange = lastChange{id: c.ID, key: [16]byte(v[:16])}
	return c, nil
}

// name returns b as a string, the same string each time in a transaction.
func (t *tx) name(b []byte) string {
	if s, ok := t.names[string(b)]; ok {
		return s
	}
	if t.names == nil {
		t.names = map[string]string{}
	}
	s := string(b)
	t.names[s] = s
	return s
}

// Changes implements records.ReadTx.
func (t *tx) Changes(after uint64, fn func(records.Change) (bool, error)) error {
	c := t.btx.Bucket(bChanges).Cursor()
	for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
		ch, err := t.parseChange(k, v)
		if err != nil {
			return err
		}
		more, err := fn(ch)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// CountChanges implements records.ReadTx.
func (t *tx) CountChanges(after, upTo uint64) (int, error) {
	n := 0
	c := t.btx.Bucket(bChanges).Cursor()
	for k, _ := c.Seek(u64(after + 1)); k != nil && binary.BigEndian.Uint64(k) <= upTo; k, _ = c.Next() {
		n++
	}
	return n, nil
}

// Position implements records.ReadTx.
func (t *tx) Position() records.Position {
	var p records.Position
	copy(p.DBID[:], t.btx.Bucket(bMeta).Get(kDBID))
	p.LastSeq = t.lastSeq
	return p
}

// checkFeed verifies that the change feed and the records agree.
func checkFeed(t *tx) error {
	n := 0
	err := t.Changes(0, func(c records.Change) (bool, error) {
		n++
		r, err := t.Record(c.ID)
		if err != nil {
			return false, err
		}
		if r == nil {
			return false, fmt.Errorf("store: change %d points at a missing record", c.Seq)
		}
		if r.Seq != c.Seq {
			return false, fmt.Errorf("store: change %d points at a record whose seq is %d", c.Seq, r.Seq)
		}
		if c.Seq > t.lastSeq {
			return false, fmt.Errorf("store: change %d is beyond the last seq %d", c.Seq, t.lastSeq)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if recs := t.btx.Bucket(bRecords).Stats().KeyN; recs != n {
		return fmt.Errorf("store: %d records but %d change entries", recs, n)
	}
	return nil
}
