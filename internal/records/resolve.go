package records

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Resolution is a supervisor's decision on a conflicted record
// (PROTOCOL.md §4).
type Resolution struct {
	Clock  sp.Clock                   `json:"clock"`
	Values map[string]json.RawMessage `json:"values"`
	Note   string                     `json:"note"`
}

// Resolve writes a supervisor's chosen values as one write that replaces
// every sibling of those fields. It returns the record's new view, or an
// *sp.Error: CodeStaleResolution (409) when the record's clock is no longer
// the one the supervisor saw; CodeBadRequest when the record holds no
// conflict, a conflicted field has no value, a delete_edit resolution lacks
// _deleted, or a name or value is invalid; CodeForbidden, CodeNotFound.
func (s *Service) Resolve(ctx context.Context, caller *auth.Account, id string, res Resolution) (*View, error) {
	if res.Clock == nil {
		return nil, sp.Errorf(sp.CodeBadRequest, "clock: the record's clock as you saw it is required")
	}
	if len(res.Note) > MaxNoteLen {
		return nil, sp.Errorf(sp.CodeBadRequest, "note: at most %d bytes", MaxNoteLen)
	}
	var view *View
	err := s.store.Update(ctx, func(tx Tx) error {
		prev, err := writable(tx, caller, id)
		if err != nil {
			return err
		}
		if !prev.State.Clock.Equal(res.Clock) {
			return sp.Errorf(sp.CodeStaleResolution, "the record changed since you looked at it; look again")
		}
		a := sp.Analyze(prev.Record())
		if !a.HasConflict() {
			return sp.Errorf(sp.CodeBadRequest, "this record holds no conflict")
		}
		fields := map[string]json.RawMessage{}
		for name, v := range res.Values {
			if name != sp.FieldDeleted && !sp.IsFieldName(name) {
				return sp.Errorf(sp.CodeBadRequest, "values: field %q is not a field a resolution can write", cutName(name))
			}
			fields[name] = v
		}
		var missing []string
		for _, f := range a.Conflicts {
			if _, ok := fields[f]; !ok {
				missing = append(missing, f)
			}
		}
		if _, ok := fields[sp.FieldDeleted]; len(a.DeleteEdit) > 0 && !ok {
			missing = append(missing, sp.FieldDeleted)
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return sp.Errorf(sp.CodeBadRequest, "values: every conflicted field needs a value; missing %v", missing)
		}
		// Editing a deleted record undeletes it (PROTOCOL.md §1), unless
		// the resolution keeps the delete.
		if _, ok := fields[sp.FieldDeleted]; !ok && a.Deleted {
			fields[sp.FieldDeleted] = json.RawMessage("false")
		}
		next, err := s.supervisorWrite(tx, prev, caller, fields, res.Clock, KindResolve, res.Note)
		if err != nil {
			return badRequest(err)
		}
		view = NewView(next)
		return nil
	})
	return view, err
}

// badRequest turns a validation error of a supervisor's input into a 400.
func badRequest(err error) error {
	if code := sp.ErrorCode(err); code == sp.CodeInvalidRecord {
		return sp.Errorf(sp.CodeBadRequest, "%s", sp.ErrorMessage(err))
	}
	return err
}

func cutName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
