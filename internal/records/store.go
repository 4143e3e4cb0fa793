package records

import (
	"context"

	"github.com/fieldsync/fieldsync/internal/auth"
)

// Store is the storage the record service needs. Update runs fn in one
// write transaction and returns only after it is durable on disk; View runs
// fn in one consistent read snapshot. Errors returned by fn abort the
// transaction and are returned as they are.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	// UpdateGrouped is Update for concurrent writers that may share one
	// transaction and one sync to disk (group commit). fn may run more than
	// once: when a call sharing its transaction fails, the others run again.
	UpdateGrouped(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(ReadTx) error) error
}

// ReadTx reads one consistent snapshot. Values it returns are copies that
// stay valid after the transaction.
type ReadTx interface {
	// Record returns a record, or nil and no error when there is none.
	Record(id string) (*Stored, error)
	// RecordJSON returns a record's state as wire JSON and its seq without
	// decoding it; nil when there is none. The bytes are valid only during
	// the transaction.
	RecordJSON(id string) ([]byte, uint64, error)
	// Position returns the database id and the last change sequence number.
	Position() Position
	// TxNonce returns the random nonce of the transaction that made change
	// seq, and false when no such change was made in this database.
	TxNonce(seq uint64) (uint64, bool)
	// Changes calls fn for each change after seq, in ascending order, until
	// fn returns false or an error.
	Changes(after uint64, fn func(Change) (bool, error)) error
	// CountChanges returns how many changes the feed holds after seq
	// after, up to seq upTo, reading their keys only.
	CountChanges(after, upTo uint64) (int, error)
	// History returns a record's history, oldest first.
	History(id string) ([]HistoryEntry, error)
	// Batch returns the answer kept for a device's batch, or nil.
	Batch(device, batch string) (*BatchAnswer, error)
	// QuarantineEntry returns a quarantined item, or nil.
	QuarantineEntry(id string) (*QuarantineEntry, error)
	// Quarantine lists quarantined items after the given id, oldest first.
	Quarantine(after string, limit int) ([]QuarantineEntry, error)
	// Account returns an account by id, or nil.
	Account(id string) (*auth.Account, error)
	// Conflicts calls fn for each record holding a conflict, oldest
	// detection first, starting after the opaque position after (nil: from
	// the start), until fn returns false or an error. pos is the entry's
	// position, to resume after it.
	Conflicts(after []byte, fn func(pos []byte, id string) (bool, error)) error
	// Rows calls fn for each record's row (no state) in id order, starting
	// after the id after (empty: from the start), until fn returns false or
	// an error.
	Rows(after string, fn func(*Row) (bool, error)) error
	// FieldNames returns, sorted, every non-reserved field name ever
	// stored in records of form (every form when form is empty).
	FieldNames(form string) ([]string, error)
}

// Tx is a write transaction.
type Tx interface {
	ReadTx
	// PutRecord stores next, the new state of a record whose previous
	// state was prev (nil for a new record). It gives the record a new
	// change sequence number, one per record per transaction, sets
	// next.Seq, and drops the record's previous change entry.
	PutRecord(prev, next *Stored) error
	// AppendHistory adds a change to a record's history.
	AppendHistory(id string, h *HistoryEntry) error
	// PutQuarantine stores a rejected item.
	PutQuarantine(q *QuarantineEntry) error
	// DeleteQuarantine removes a quarantined item once it is applied.
	DeleteQuarantine(id string) error
	// PutBatch keeps a batch's answer.
	PutBatch(device, batch string, a *BatchAnswer) error
}
