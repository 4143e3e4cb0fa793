package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The device store is the tablet's own bbolt file. It is the only file of
// this package that opens transactions. Buckets:
//
//	meta     device id, pull cursor, last write time (unix ms), format
//	         version, and a flag while a resync has not marked its records
//	records  record id → localRecord (JSON): the full state and its dirty fields
//	dirty    record id → nothing: the index of records with dirty fields
//	pending  "batch" → pendingBatch (JSON): the push batch in flight, kept
//	         from before it is sent until its answer is stored
var (
	bMeta    = []byte("meta")
	bRecords = []byte("records")
	bDirty   = []byte("dirty")
	bPending = []byte("pending")

	kDevice  = []byte("device")
	kCursor  = []byte("cursor")
	kLastAt  = []byte("last_at")
	kResync  = []byte("resync")
	kVersion = []byte("version")
	kBatch   = []byte("batch")
)

// storeVersion is the format of the device file.
const storeVersion = 1

// localRecord is one record as the device holds it: its full state, and the
// fields changed since their last acknowledged push. Dirty maps a field to
// a mark that only grows: the device's own count at the write that last
// touched it (or at the resync that marked it). A push acknowledges a field
// only if its mark is still the one the batch was built with.
type localRecord struct {
	State sp.State          `json:"state"`
	Dirty map[string]uint64 `json:"dirty,omitempty"`
}

// pendingBatch is a push batch persisted before it is sent, so that a retry
// after a crash or a lost answer resends the same batch id and body.
type pendingBatch struct {
	ID    string          `json:"id"`
	Body  json.RawMessage `json:"body"` // the push request, uncompressed
	Items []pendingItem   `json:"items"`
}

// pendingItem says which fields an item carried, with their dirty marks at
// the time the batch was built.
type pendingItem struct {
	ID     string            `json:"id"`
	Fields map[string]uint64 `json:"fields"`
}

// errStoreDevice is returned when a device file belongs to another device.
var errStoreDevice = errors.New("client: this device file belongs to another device")

// deviceStore is the device's bbolt file.
type deviceStore struct {
	db *bolt.DB
}

// openStore opens (creating if needed) the device file at path for the
// given device. It returns errStoreDevice (wrapped) when the file was made
// for another device, and bbolt's errors otherwise (a file locked by
// another process times out after a second).
func openStore(path, device string) (*deviceStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("client: open device file %s: %w (%w)", path, ErrInUse, err)
	}
	if err != nil {
		return nil, fmt.Errorf("client: open device file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bMeta, bRecords, bDirty, bPending} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get(kVersion); v != nil && binary.BigEndian.Uint64(v) != storeVersion {
			return fmt.Errorf("client: device file format %d, this SDK reads %d", binary.BigEndian.Uint64(v), storeVersion)
		}
		if err := meta.Put(kVersion, u64(storeVersion)); err != nil {
			return err
		}
		switch v := meta.Get(kDevice); {
		case v == nil:
			return meta.Put(kDevice, []byte(device))
		case string(v) != device:
			return fmt.Errorf("%w (%s, not %s)", errStoreDevice, v, device)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &deviceStore{db: db}, nil
}

func (s *deviceStore) close() error { return s.db.Close() }

// record returns a copy of one record, or nil if the device has none.
func (s *deviceStore) record(id string) (*localRecord, error) {
	var out *localRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = getRecord(tx, id)
		return err
	})
	return out, err
}

// each calls fn for every record in id order (UUIDv7 ids: creation order).
func (s *deviceStore) each(fn func(*localRecord) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bRecords).ForEach(func(k, v []byte) error {
			r, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			return fn(r)
		})
	})
}

// write changes one record in a transaction: fn gets its current state
// (nil for a new record) and the device's last write time, and returns the
// new state and write time. An error from fn aborts and is returned as is.
func (s *deviceStore) write(id string, fn func(cur *localRecord, lastAt int64) (*localRecord, int64, error)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		cur, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		var lastAt int64
		if v := tx.Bucket(bMeta).Get(kLastAt); v != nil {
			lastAt = int64(binary.BigEndian.Uint64(v))
		}
		next, at, err := fn(cur, lastAt)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bMeta).Put(kLastAt, u64(uint64(at))); err != nil {
			return err
		}
		return putRecord(tx, next)
	})
}

// pending returns the batch in flight, or nil.
func (s *deviceStore) pending() (*pendingBatch, error) {
	var out *pendingBatch
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bPending).Get(kBatch)
		if v == nil {
			return nil
		}
		out = new(pendingBatch)
		if err := json.Unmarshal(v, out); err != nil {
			return fmt.Errorf("client: device file: pending batch: %w", err)
		}
		return nil
	})
	return out, err
}

// itemBuilder turns a dirty record into a push item: the item's JSON and
// the fields it carries with their dirty marks. ok is false when there is
// nothing to send; the record's dirty marks are then cleared.
type itemBuilder func(r *localRecord) (item json.RawMessage, carried map[string]uint64, ok bool, err error)

// buildPending makes the next push batch from up to max dirty records not
// in skip, and persists it with the given id in the same transaction. body
// makes the request body from the items. It returns nil when no record is
// left to push, and an error if a batch is already pending.
func (s *deviceStore) buildPending(id string, max int, skip map[string]bool, build itemBuilder, body func(items []json.RawMessage) (json.RawMessage, error)) (*pendingBatch, error) {
	var out *pendingBatch
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bPending).Get(kBatch) != nil {
			return errors.New("client: a batch is already pending")
		}
		pb := &pendingBatch{ID: id}
		var items []json.RawMessage
		var clean [][]byte
		c := tx.Bucket(bDirty).Cursor()
		for k, _ := c.First(); k != nil && len(items) < max; k, _ = c.Next() {
			if skip[string(k)] {
				continue
			}
			r, err := getRecord(tx, string(k))
			if err != nil {
				return err
			}
			if r == nil || len(r.Dirty) == 0 {
				clean = append(clean, append([]byte(nil), k...))
				continue
			}
			item, carried, ok, err := build(r)
			if err != nil {
				return err
			}
			if !ok {
				r.Dirty = nil
				if err := putRecord(tx, r); err != nil {
					return err
				}
				continue
			}
			items = append(items, item)
			pb.Items = append(pb.Items, pendingItem{ID: r.State.ID, Fields: carried})
		}
		for _, k := range clean {
			if err := tx.Bucket(bDirty).Delete(k); err != nil {
				return err
			}
		}
		if len(items) == 0 {
			return nil
		}
		b, err := body(items)
		if err != nil {
			return err
		}
		pb.Body = b
		v, err := json.Marshal(pb)
		if err != nil {
			return err
		}
		out = pb
		return tx.Bucket(bPending).Put(kBatch, v)
	})
	return out, err
}

// acknowledge stores the answer to the pending batch pb: for each item
// whose record is in done, it clears the dirty marks of the fields the item
// carried that no later write has touched; then it forgets the pending
// batch. Items not in done stay dirty.
func (s *deviceStore) acknowledge(pb *pendingBatch, done map[string]bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, it := range pb.Items {
			if !done[it.ID] {
				continue
			}
			r, err := getRecord(tx, it.ID)
			if err != nil {
				return err
			}
			if r == nil {
				continue
			}
			for f, mark := range it.Fields {
				if m, ok := r.Dirty[f]; ok && m <= mark {
					delete(r.Dirty, f)
				}
			}
			if err := putRecord(tx, r); err != nil {
				return err
			}
		}
		return tx.Bucket(bPending).Delete(kBatch)
	})
}

// dropPending forgets the pending batch without touching the dirty marks:
// its records are still dirty and go into the next batch.
func (s *deviceStore) dropPending() error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bPending).Delete(kBatch) })
}

// cursor returns the stored pull cursor ("" for the start).
func (s *deviceStore) cursor() (string, error) {
	var out string
	err := s.db.View(func(tx *bolt.Tx) error {
		out = string(tx.Bucket(bMeta).Get(kCursor))
		return nil
	})
	return out, err
}

// setCursor stores the pull cursor.
func (s *deviceStore) setCursor(cursor string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kCursor, []byte(cursor)) })
}

// mergePulled merges one pull page into the local states with merge and
// stores the page's cursor, in one transaction: a crash leaves either both
// or neither.
func (s *deviceStore) mergePulled(states []sp.State, cursor string, merge func(cur *localRecord, pulled sp.State) *localRecord) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, st := range states {
			cur, err := getRecord(tx, st.ID)
			if err != nil {
				return err
			}
			if err := putRecord(tx, merge(cur, st)); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(kCursor, []byte(cursor))
	})
}

// startResync resets the pull cursor and flags a resync, in one
// transaction: until markAllDirty, every Sync goes on with the resync.
func (s *deviceStore) startResync() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if err := meta.Put(kCursor, []byte{}); err != nil {
			return err
		}
		return meta.Put(kResync, []byte{1})
	})
}

// resyncing reports whether a resync has started and not yet marked its
// records.
func (s *deviceStore) resyncing() (bool, error) {
	var out bool
	err := s.db.View(func(tx *bolt.Tx) error {
		out = tx.Bucket(bMeta).Get(kResync) != nil
		return nil
	})
	return out, err
}

// markAllDirty marks every field of every record dirty and clears the
// resync flag, in one transaction (PROTOCOL.md §3: the server may have
// lost what it acknowledged). A field's mark becomes the record's own count
// for the device, or stays its current mark if higher.
func (s *deviceStore) markAllDirty(device string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRecords).Cursor()
		var all []*localRecord
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			all = append(all, r)
		}
		for _, r := range all {
			mark := r.State.Clock[device]
			for _, w := range r.State.Writes {
				for f := range w.Fields {
					if r.Dirty == nil {
						r.Dirty = map[string]uint64{}
					}
					if m, ok := r.Dirty[f]; !ok || m < mark {
						r.Dirty[f] = mark
					}
				}
			}
			if err := putRecord(tx, r); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Delete(kResync)
	})
}

func getRecord(tx *bolt.Tx, id string) (*localRecord, error) {
	v := tx.Bucket(bRecords).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return decodeRecord([]byte(id), v)
}

// decodeRecord decodes a stored record; json.Unmarshal copies, so the
// result outlives the transaction.
func decodeRecord(k, v []byte) (*localRecord, error) {
	r := new(localRecord)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("client: device file: record %s: %w", k, err)
	}
	return r, nil
}

// putRecord stores a record and keeps the dirty index in step.
func putRecord(tx *bolt.Tx, r *localRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	k := []byte(r.State.ID)
	if err := tx.Bucket(bRecords).Put(k, v); err != nil {
		return err
	}
	if len(r.Dirty) > 0 {
		return tx.Bucket(bDirty).Put(k, []byte{})
	}
	return tx.Bucket(bDirty).Delete(k)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
