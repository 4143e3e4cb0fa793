package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Errors of Save and Delete. Validation errors are *syncproto.Error values
// (CodeInvalidRecord or CodeTooLarge) that also wrap ErrInvalid.
var (
	// ErrNotFound: the device holds no record with this id.
	ErrNotFound = errors.New("client: no record with this id on this device")
	// ErrInvalid wraps every validation error of a save.
	ErrInvalid = errors.New("client: invalid save")
)

// invalidError is a validation error: a *syncproto.Error that also matches
// ErrInvalid.
type invalidError struct{ err *sp.Error }

func (e invalidError) Error() string   { return "client: " + e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

func invalid(code sp.Code, format string, args ...any) error {
	return invalidError{sp.Errorf(code, format, args...)}
}

// Save is one local save of a record: its next write by this device (its
// own clock entry + 1, at = the device clock in unix ms, never earlier than
// its previous write), whose values replace this device's siblings of those
// fields; the fields become dirty until a push is acknowledged. A new record
// (see NewID) needs form and scope; for an existing one they may be empty
// and must otherwise match. Saving a deleted record undeletes it in the same
// write. A nil value clears a field.
//
// Save returns an error wrapping ErrInvalid for a bad id, form, scope, field
// name (reserved names included), a value that does not encode as JSON,
// or one over the limits (64 KiB, 64 levels, 512 fields, 256 actors); the
// error's syncproto code says which (CodeInvalidRecord or CodeTooLarge). It
// returns ctx.Err() when ctx is done, and the device file's errors.
func (c *Client) Save(ctx context.Context, id, form, scope string, fields map[string]any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !sp.IsUUID(id) {
		return invalid(sp.CodeInvalidRecord, "id %q: not a lowercase UUID (use NewID)", cut(id))
	}
	if form != "" && !sp.IsSlug(form) {
		return invalid(sp.CodeInvalidRecord, "form %q: must match [a-z0-9_-]{1,64}", cut(form))
	}
	if scope != "" && !sp.IsSlug(scope) {
		return invalid(sp.CodeInvalidRecord, "scope %q: must match [a-z0-9_-]{1,64}", cut(scope))
	}
	if len(fields) == 0 {
		return invalid(sp.CodeInvalidRecord, "a save needs at least one field")
	}
	values := make(map[string]json.RawMessage, len(fields))
	for _, name := range sortedKeys(fields) {
		if sp.IsReserved(name) {
			return invalid(sp.CodeInvalidRecord, "field %q: names starting with _ are reserved", cut(name))
		}
		if !sp.IsFieldName(name) {
			return invalid(sp.CodeInvalidRecord, "field %q: bad name (must match [A-Za-z][A-Za-z0-9_.]{0,127})", cut(name))
		}
		v, err := encodeValue(fields[name])
		if err != nil {
			return invalid(sp.CodeInvalidRecord, "field %q: value does not encode as JSON (%s)", name, describeEncodeError(err))
		}
		if len(v) > sp.MaxValueBytes {
			return invalid(sp.CodeTooLarge, "field %q: value of %d bytes, at most %d", name, len(v), sp.MaxValueBytes)
		}
		values[name] = v
	}
	return c.st.write(id, func(cur *localRecord, lastAt int64) (*localRecord, int64, error) {
		if cur == nil {
			if form == "" || scope == "" {
				return nil, 0, fmt.Errorf("%w: %s (a new record needs its form and scope)", ErrNotFound, id)
			}
			cur = &localRecord{State: sp.State{ID: id, Form: form, Scope: scope, Clock: sp.Clock{}}}
		}
		if form != "" && form != cur.State.Form {
			return nil, 0, invalid(sp.CodeScopeMismatch, "form %q: the record's form is %q and never changes", form, cur.State.Form)
		}
		if scope != "" && scope != cur.State.Scope {
			return nil, 0, invalid(sp.CodeScopeMismatch, "scope %q: the record's scope is %q and never changes", scope, cur.State.Scope)
		}
		rec := sp.FromState(cur.State)
		if sp.Analyze(rec).Deleted {
			values[sp.FieldDeleted] = json.RawMessage("false")
		}
		return c.applyWrite(cur, rec, values, nil, lastAt)
	})
}

// Delete deletes a record on this device: a write of _deleted = true whose
// ctx is the record's clock before the write. The record stays as a
// tombstone and syncs. It returns an error wrapping ErrNotFound for a
// record the device does not hold, ctx.Err(), and the device file's errors.
func (c *Client) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.st.write(id, func(cur *localRecord, lastAt int64) (*localRecord, int64, error) {
		if cur == nil {
			return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		rec := sp.FromState(cur.State)
		values := map[string]json.RawMessage{sp.FieldDeleted: json.RawMessage("true")}
		return c.applyWrite(cur, rec, values, rec.Clock.Copy(), lastAt)
	})
}

// applyWrite makes the device's next write of values to rec: a one-write
// item whose clock is the whole local clock plus the new dot, merged with
// the push merge, so it replaces every local sibling of those fields. ctx
// is the delete's context (nil for other writes). It returns the new local
// record, marking the fields dirty, and the write's time.
func (c *Client) applyWrite(cur *localRecord, rec *sp.Record, values map[string]json.RawMessage, ctx sp.Clock, lastAt int64) (*localRecord, int64, error) {
	dev := c.opt.Device
	n := rec.Clock[dev] + 1
	at := c.now().UnixMilli()
	if at <= lastAt {
		at = lastAt + 1
	}
	dot := sp.Dot{By: dev, N: n}
	clock := rec.Clock.Copy()
	clock[dev] = n
	item := &sp.Record{ID: rec.ID, Form: rec.Form, Scope: rec.Scope, Clock: clock, Fields: map[string][]sp.Sibling{}}
	for name, v := range values {
		s := sp.Sibling{Dot: dot, At: at, Value: v}
		if name == sp.FieldDeleted && ctx != nil {
			s.Ctx = ctx
		}
		item.Fields[name] = []sp.Sibling{s}
	}
	merged := sp.ApplyPush(rec, item)
	if len(merged.Fields) > sp.MaxFields {
		return nil, 0, invalid(sp.CodeTooLarge, "the record would hold %d fields, at most %d", len(merged.Fields), sp.MaxFields)
	}
	state := merged.State()
	if err := sp.Validate(state); err != nil {
		var e *sp.Error
		if errors.As(err, &e) {
			return nil, 0, invalidError{e}
		}
		return nil, 0, err
	}
	next := &localRecord{State: state, Dirty: map[string]uint64{}}
	for f, m := range cur.Dirty {
		next.Dirty[f] = m
	}
	for name := range values {
		next.Dirty[name] = n
	}
	return next, at, nil
}

// encodeValue encodes a value as compact JSON the way encoding/json
// stores it (HTML characters escaped), so that the bytes a save keeps are
// the bytes the device file, the wire and the server keep.
func encodeValue(v any) (json.RawMessage, error) {
	return json.Marshal(v)
}

// describeEncodeError says why a value does not encode, without quoting it.
func describeEncodeError(err error) string {
	var ut *json.UnsupportedTypeError
	var uv *json.UnsupportedValueError
	switch {
	case errors.As(err, &ut):
		return "unsupported type " + ut.Type.String()
	case errors.As(err, &uv):
		return "unsupported value (NaN, infinity or a cycle)"
	}
	return "not JSON"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cut shortens a name for an error message; names are not personal data.
func cut(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
