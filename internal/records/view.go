package records

import (
	"context"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Review is the visible value of a record's _review field.
type Review struct {
	State string `json:"state"`
	Note  string `json:"note"`
	By    string `json:"by"`
}

// View is a record as supervisors see it (PROTOCOL.md §4).
type View struct {
	Record    sp.State                    `json:"record"`
	Seq       uint64                      `json:"seq"`
	Values    map[string]json.RawMessage  `json:"values"`
	Conflicts map[string][]sp.SiblingView `json:"conflicts"`
	Deleted   bool                        `json:"deleted"`
	Review    *Review                     `json:"review"`
	// Extensions.
	ConflictKind  string `json:"conflict_kind,omitempty"` // "fields" or "delete_edit"
	ConflictSince string `json:"conflict_since,omitempty"`
	UpdatedAt     string `json:"updated_at"`
	CreatedAt     string `json:"created_at"`
}

// NewView builds the supervisors' view of a stored record.
func NewView(st *Stored) *View {
	r := st.Record()
	a := sp.Analyze(r)
	v := &View{
		Record: st.State, Seq: st.Seq, Deleted: a.Deleted,
		Values:    map[string]json.RawMessage{},
		Conflicts: map[string][]sp.SiblingView{},
		UpdatedAt: sp.Timestamp(st.UpdatedAt), CreatedAt: sp.Timestamp(st.CreatedAt),
	}
	for name, val := range a.Visible {
		if !sp.IsReserved(name) {
			v.Values[name] = val
		}
	}
	conflicted := append(append([]string{}, a.Conflicts...), a.DeleteEdit...)
	for _, name := range conflicted {
		if _, done := v.Conflicts[name]; done {
			continue
		}
		for _, s := range r.Fields[name] {
			v.Conflicts[name] = append(v.Conflicts[name], sp.SiblingView{V: s.Value, By: s.By, N: s.N, At: s.At})
		}
	}
	switch {
	case len(a.DeleteEdit) > 0:
		v.ConflictKind = "delete_edit"
	case len(a.Conflicts) > 0:
		v.ConflictKind = "fields"
	}
	if !st.ConflictSince.IsZero() {
		v.ConflictSince = sp.Timestamp(st.ConflictSince)
	}
	if raw, ok := a.Visible[sp.FieldReview]; ok {
		var rv Review
		if json.Unmarshal(raw, &rv) == nil {
			v.Review = &rv
		}
	}
	return v
}

// canRead reports whether an account may read records (not devices).
func canRead(a *auth.Account) bool { return a.Role != auth.RoleDevice }

var errNoRecord = sp.Errorf(sp.CodeNotFound, "no record with this id")

// readable loads a record the caller may read. It returns an *sp.Error with
// CodeForbidden for a device or a record in another scope and CodeNotFound
// for an unknown record.
func readable(tx ReadTx, caller *auth.Account, id string) (*Stored, error) {
	if !canRead(caller) {
		return nil, sp.Errorf(sp.CodeForbidden, "devices push and pull; they do not read records")
	}
	if !sp.IsUUID(id) {
		return nil, errNoRecord
	}
	st, err := tx.Record(id)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errNoRecord
	}
	if !caller.InScope(st.State.Scope) {
		return nil, sp.Errorf(sp.CodeForbidden, "this record is in a scope you are not assigned to")
	}
	return st, nil
}

// Get returns a record's view. Errors as readable.
func (s *Service) Get(ctx context.Context, caller *auth.Account, id string) (*View, error) {
	var v *View
	err := s.store.View(ctx, func(tx ReadTx) error {
		st, err := readable(tx, caller, id)
		if err != nil {
			return err
		}
		v = NewView(st)
		return nil
	})
	return v, err
}

// History returns every accepted change of a record, oldest first. Errors
// as readable.
func (s *Service) History(ctx context.Context, caller *auth.Account, id string) ([]HistoryEntry, error) {
	var h []HistoryEntry
	err := s.store.View(ctx, func(tx ReadTx) error {
		if _, err := readable(tx, caller, id); err != nil {
			return err
		}
		var err error
		if h, err = tx.History(id); err != nil {
			return err
		}
		names := newNameCache(tx)
		for i := range h {
			a, err := names.get(h[i].Actor)
			if err != nil {
				return err
			}
			if a != nil {
				h[i].ActorName, h[i].ActorRole = a.Name, string(a.Role)
			}
		}
		return nil
	})
	if h == nil {
		h = []HistoryEntry{}
	}
	return h, err
}
