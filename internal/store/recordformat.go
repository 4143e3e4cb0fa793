package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/records"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// recordFormat is the first byte of every value in the records bucket.
//
// A record is stored as: the format byte; seq (uvarint); created, updated
// and conflict-since times (varint unix ms); a flags byte (conflict,
// deleted, values in state); the review state, form and scope (uvarint
// length and bytes); the summary's values object; then the state's wire
// JSON to the end. Exports read the head only; pulls send the state's JSON
// as it is, without decoding it.
//
// The values object is written as its uvarint length and bytes, or, with
// flagValuesInState (format 3), as the uvarint offset and length of the
// same bytes within the state's JSON: a record of one write shows exactly
// that write's fields, and keeping them once saves a third of the record.
// Format 2, with the values always written out, is still read.
const recordFormat = 3

const (
	flagConflict = 1 << iota
	flagDeleted
	flagValuesInState
)

// minValuesRef is the size from which the values object is stored as a
// reference into the state rather than written out.
const minValuesRef = 16

var errBadRecord = errors.New("store: malformed record value")

// encodeRecord lays out a stored record, computing its summary if the
// caller did not.
func encodeRecord(st *records.Stored) ([]byte, error) {
	sum := st.Summary
	if sum == nil {
		sum = records.Summarize(sp.Analyze(sp.FromState(st.State)))
	}
	// The state passed validation: its JSON is written without another pass
	// of encoding/json over every value.
	state := st.StateJSON
	if state == nil {
		state = st.State.AppendJSON(make([]byte, 0, 1024))
	}
	valuesAt := -1
	if len(sum.Values) >= minValuesRef {
		valuesAt = bytes.Index(state, sum.Values)
	}
	var flags byte
	if sum.Conflict {
		flags |= flagConflict
	}
	if sum.Deleted {
		flags |= flagDeleted
	}
	if valuesAt >= 0 {
		flags |= flagValuesInState
	}
	b := make([]byte, 0, 48+len(sum.Review)+len(st.State.Form)+len(st.State.Scope)+len(sum.Values)+len(state))
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, st.Seq)
	b = binary.AppendVarint(b, ms(st.CreatedAt))
	b = binary.AppendVarint(b, ms(st.UpdatedAt))
	b = binary.AppendVarint(b, ms(st.ConflictSince))
	b = append(b, flags)
	b = appendBytes(b, []byte(sum.Review))
	b = appendBytes(b, []byte(st.State.Form))
	b = appendBytes(b, []byte(st.State.Scope))
	if valuesAt >= 0 {
		b = binary.AppendUvarint(b, uint64(valuesAt))
		b = binary.AppendUvarint(b, uint64(len(sum.Values)))
	} else {
		b = appendBytes(b, sum.Values)
	}
	return append(b, state...), nil
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// recordHead is a stored record without its state.
type recordHead struct {
	seq                                int64
	created, updated, conflictSince    int64
	flags                              byte
	review, form, scope, values, state []byte
}

// decodeHead splits a stored record; its slices alias v.
func decodeHead(v []byte) (h recordHead, err error) {
	if len(v) == 0 || v[0] != recordFormat && v[0] != 2 {
		return h, fmt.Errorf("%w: unknown format", errBadRecord)
	}
	format := v[0]
	p := v[1:]
	seq, n := binary.Uvarint(p)
	if n <= 0 {
		return h, errBadRecord
	}
	h.seq, p = int64(seq), p[n:]
	for _, dst := range []*int64{&h.created, &h.updated, &h.conflictSince} {
		x, n := binary.Varint(p)
		if n <= 0 {
			return h, errBadRecord
		}
		*dst, p = x, p[n:]
	}
	if len(p) == 0 {
		return h, errBadRecord
	}
	h.flags, p = p[0], p[1:]
	valuesInState := format >= 3 && h.flags&flagValuesInState != 0
	fields := []*[]byte{&h.review, &h.form, &h.scope, &h.values}
	if valuesInState {
		fields = fields[:3]
	}
	for _, dst := range fields {
		l, n := binary.Uvarint(p)
		if n <= 0 || uint64(len(p)-n) < l {
			return h, errBadRecord
		}
		*dst, p = p[n:n+int(l)], p[n+int(l):]
	}
	if valuesInState {
		at, n := binary.Uvarint(p)
		if n <= 0 {
			return h, errBadRecord
		}
		p = p[n:]
		l, n := binary.Uvarint(p)
		if n <= 0 {
			return h, errBadRecord
		}
		p = p[n:]
		if at > uint64(len(p)) || l > uint64(len(p))-at {
			return h, errBadRecord
		}
		h.values = p[at : at+l]
	}
	h.state = p
	return h, nil
}

// decodeRecord decodes a stored record, state included. It copies what it
// keeps, so the result outlives the transaction.
func decodeRecord(v []byte) (*records.Stored, error) {
	h, err := decodeHead(v)
	if err != nil {
		return nil, err
	}
	st := &records.Stored{Seq: uint64(h.seq), CreatedAt: fromMs(h.created), UpdatedAt: fromMs(h.updated), ConflictSince: fromMs(h.conflictSince)}
	sum := h.summary(true)
	st.Summary = &sum
	// The state is read from a copy, which its values then share.
	state, err := sp.ParseItem(append([]byte(nil), h.state...))
	if err != nil {
		return nil, fmt.Errorf("store: decode record state: %w", err)
	}
	st.State = state
	return st, nil
}

// summary returns the head's summary; copy makes its values outlive the
// transaction.
func (h recordHead) summary(copyValues bool) records.Summary {
	s := records.Summary{Values: h.values, Conflict: h.flags&flagConflict != 0, Deleted: h.flags&flagDeleted != 0, Review: string(h.review)}
	if copyValues {
		s.Values = append(json.RawMessage(nil), h.values...)
	}
	return s
}

// RecordJSON implements records.ReadTx.
func (t *tx) RecordJSON(id string) ([]byte, uint64, error) {
	k, ok := t.key(id)
	if !ok {
		return nil, 0, nil
	}
	v := t.btx.Bucket(bRecords).Get(k)
	if v == nil {
		return nil, 0, nil
	}
	h, err := decodeHead(v)
	if err != nil {
		return nil, 0, err
	}
	return h.state, uint64(h.seq), nil
}
