package records

import (
	"encoding/json"
	"sort"
	"time"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Stored is a record as the server keeps it: its merged state and the
// server's bookkeeping.
type Stored struct {
	State     sp.State
	Seq       uint64    // the record's current change sequence number
	CreatedAt time.Time // when the server first accepted it
	UpdatedAt time.Time // the server time of its last change
	// ConflictSince is when the record's current conflict was detected;
	// zero when it holds none.
	ConflictSince time.Time
	// Summary is what exports need, computed when the record is written;
	// a store computes it itself when it is nil.
	Summary *Summary
	// StateJSON is State's wire JSON (State.AppendJSON) when the caller
	// already has it; a store encodes State itself when it is nil.
	StateJSON []byte
}

// Summary is what reading a record for an export needs, so that exports do
// not merge or analyse anything.
type Summary struct {
	Values   json.RawMessage // the visible non-reserved values, as one JSON object
	Conflict bool
	Deleted  bool
	Review   string // the review state; received when none
}

// Summarize computes a record's summary from its analysis.
func Summarize(a sp.Analysis) *Summary {
	names := make([]string, 0, len(a.Visible))
	size := 2
	for name, v := range a.Visible {
		if !sp.IsReserved(name) {
			names = append(names, name)
			size += len(name) + len(v) + 4
		}
	}
	sort.Strings(names)
	// Names are [A-Za-z0-9_.] and values valid compact JSON: the object is
	// written as it is, values byte for byte.
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = append(b, a.Visible[name]...)
	}
	b = append(b, '}')
	return &Summary{Values: b, Conflict: a.HasConflict(), Deleted: a.Deleted, Review: reviewState(a)}
}

// Row is a record as exports read it: identity, bookkeeping and summary,
// without its state. Its byte slices are valid only during the callback
// that receives it.
type Row struct {
	ID, Form, Scope string
	Seq             uint64
	UpdatedAt       time.Time
	Summary         Summary
}

// Record returns the stored state as the merge sees it.
func (s *Stored) Record() *sp.Record { return sp.FromState(s.State) }

// Change is one entry of the change feed: a record that changed at Seq and
// has not changed since.
type Change struct {
	Seq   uint64
	ID    string
	Scope string
	Form  string
}

// History kinds.
const (
	KindPush    = "push"
	KindResolve = "resolve"
	KindReview  = "review"
)

// HistoryEntry is one accepted change of a record (PROTOCOL.md §4).
type HistoryEntry struct {
	Seq        uint64 `json:"seq"`
	ReceivedAt string `json:"received_at"`
	Actor      string `json:"actor"`
	Batch      string `json:"batch,omitempty"`
	Kind       string `json:"kind"`
	// Fields are the names of the fields whose siblings changed.
	Fields []string `json:"fields"`
	// Values holds, for each changed field that gained a sibling, the value
	// this change brought (the newest of its new siblings).
	Values map[string]json.RawMessage `json:"values"`
	// Siblings holds every sibling this change brought, by field: more than
	// one when a change carried concurrent writes (an extension).
	Siblings map[string][]sp.SiblingView `json:"siblings,omitempty"`
	// MergedConcurrent is true when the change was concurrent with the
	// stored state (a soft or hard conflict was merged).
	MergedConcurrent bool   `json:"merged_concurrent"`
	Note             string `json:"note,omitempty"`
	// ActorName and ActorRole name the actor (a device's label, a user's
	// name), filled in when the history is read.
	ActorName string `json:"actor_name,omitempty"`
	ActorRole string `json:"actor_role,omitempty"`

	// body, when set (freeze), is AppendJSON's output after ReceivedAt.
	body []byte
	// valuesJSON, when set, is Values as one JSON object, names sorted.
	valuesJSON []byte
}

// QuarantineEntry is a rejected push item, kept with the reason so that
// nothing a device sends is lost (PROTOCOL.md §2, §6).
type QuarantineEntry struct {
	ID         string          `json:"id"`
	Record     string          `json:"record"`
	Device     string          `json:"device"`
	Batch      string          `json:"batch,omitempty"`
	ReceivedAt string          `json:"received_at"`
	Error      *sp.Error       `json:"error"`
	Item       json.RawMessage `json:"item"`
	// ItemText holds the item as sent when it cannot be kept as JSON here
	// (nested deeper than the JSON parser goes); Item is then null.
	ItemText string `json:"item_text,omitempty"`
}

// BatchAnswer is the answer kept for a batch, so that a retry gets the same
// answer and changes nothing.
type BatchAnswer struct {
	Hash     []byte `json:"hash"`
	Response []byte `json:"response"`
}

// Position is where the change feed of a database stands.
type Position struct {
	DBID    [16]byte // random, chosen when the database was created
	LastSeq uint64
}
