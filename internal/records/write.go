package records

import (
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// supervisorWrite applies one write by a user's actor to a stored record
// within tx: its clock entry + 1, at = server time, having seen the whole
// current state, so its values replace every sibling of the fields it
// writes. ctx is set on a _deleted = true value. It records the change in
// the history with kind and note and returns the new stored record.
func (s *Service) supervisorWrite(tx Tx, prev *Stored, user *auth.Account, fields map[string]json.RawMessage, ctx sp.Clock, kind, note string) (*Stored, error) {
	old := prev.Record()
	n := old.Clock[user.ID] + 1
	clock := old.Clock.Copy()
	clock[user.ID] = n
	w := sp.Write{By: user.ID, N: n, At: s.now().UnixMilli(), Fields: fields}
	if v, ok := fields[sp.FieldDeleted]; ok && string(v) == "true" {
		w.Ctx = ctx
	}
	item := sp.State{ID: prev.State.ID, Form: prev.State.Form, Scope: prev.State.Scope, Clock: clock, Writes: []sp.Write{w}}
	if err := sp.Validate(item); err != nil {
		return nil, err
	}
	merged := sp.ApplyPush(old, sp.FromState(item))
	if len(merged.Fields) > sp.MaxFields {
		return nil, sp.Errorf(sp.CodeTooLarge, "the record would hold %d fields, at most %d", len(merged.Fields), sp.MaxFields)
	}
	next, _, err := s.store1(tx, prev, old, merged)
	if err != nil {
		return nil, err
	}
	h := newHistory(old, merged, user.ID, "", kind, false)
	h.Seq, h.ReceivedAt, h.Note = next.Seq, sp.Timestamp(next.UpdatedAt), note
	if err := tx.AppendHistory(next.State.ID, h); err != nil {
		return nil, err
	}
	return next, nil
}

// canWrite reports whether a user may resolve and review records of scope:
// supervisors in their scopes, and admins.
func canWrite(a *auth.Account, scope string) bool {
	return (a.Role == auth.RoleSupervisor || a.Role == auth.RoleAdmin) && a.InScope(scope)
}

// writable loads a record the caller may resolve or review. It returns an
// *sp.Error with CodeForbidden or CodeNotFound.
func writable(tx ReadTx, caller *auth.Account, id string) (*Stored, error) {
	if caller.Role != auth.RoleSupervisor && caller.Role != auth.RoleAdmin {
		return nil, sp.Errorf(sp.CodeForbidden, "only supervisors resolve and review")
	}
	st, err := readable(tx, caller, id)
	if err != nil {
		return nil, err
	}
	if !canWrite(caller, st.State.Scope) {
		return nil, sp.Errorf(sp.CodeForbidden, "this record is in a scope you are not assigned to")
	}
	return st, nil
}

// MaxNoteLen bounds a supervisor's note.
const MaxNoteLen = 4000
