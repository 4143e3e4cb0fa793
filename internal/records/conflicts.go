package records

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// ConflictQuery filters and pages the conflict queue.
type ConflictQuery struct {
	Scope string
	Form  string
	Limit int    // 1..1000
	After string // the opaque "next" of the previous page
}

// SiblingInfo is a sibling as the conflict queue shows it: who wrote it, by
// name (a device's label, a user's name), and when.
type SiblingInfo struct {
	sp.SiblingView
	ByName string `json:"by_name,omitempty"`
	ByRole string `json:"by_role,omitempty"`
}

// ConflictEntry is one record of the conflict queue (PROTOCOL.md §4).
type ConflictEntry struct {
	Record     string                   `json:"record"`
	Form       string                   `json:"form"`
	Scope      string                   `json:"scope"`
	Kind       string                   `json:"kind"`
	Fields     map[string][]SiblingInfo `json:"fields"`
	Clock      sp.Clock                 `json:"clock"`
	DetectedAt string                   `json:"detected_at"`
	Seq        uint64                   `json:"seq"`
	// Visible holds each conflicted field's current (last-writer-wins) value.
	Visible map[string]json.RawMessage `json:"visible"`
}

// ConflictPage is a page of the conflict queue.
type ConflictPage struct {
	Conflicts []ConflictEntry `json:"conflicts"`
	Next      string          `json:"next"`
}

// Conflicts lists records holding a conflict in the caller's scopes, oldest
// first. It returns an *sp.Error with CodeForbidden for a device and
// CodeBadRequest for a bad filter, limit or page token.
func (s *Service) Conflicts(ctx context.Context, caller *auth.Account, q ConflictQuery) (*ConflictPage, error) {
	if !canRead(caller) {
		return nil, sp.Errorf(sp.CodeForbidden, "devices do not see the conflict queue")
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return nil, sp.Errorf(sp.CodeBadRequest, "limit: must be 1 to 1000")
	}
	if err := checkFilters(q.Scope, q.Form, ""); err != nil {
		return nil, err
	}
	var after []byte
	if q.After != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.After)
		if err != nil || len(b) == 0 || len(b) > 64 {
			return nil, sp.Errorf(sp.CodeBadRequest, "after: not a page token of this queue")
		}
		after = b
	}
	page := &ConflictPage{Conflicts: []ConflictEntry{}}
	err := s.store.View(ctx, func(tx ReadTx) error {
		names := newNameCache(tx)
		return tx.Conflicts(after, func(pos []byte, id string) (bool, error) {
			if len(page.Conflicts) == q.Limit {
				return false, nil
			}
			st, err := tx.Record(id)
			if err != nil || st == nil {
				return err == nil, err
			}
			if !caller.InScope(st.State.Scope) || (q.Scope != "" && st.State.Scope != q.Scope) || (q.Form != "" && st.State.Form != q.Form) {
				return true, nil
			}
			e, err := conflictEntry(st, names)
			if err != nil {
				return false, err
			}
			if e != nil {
				page.Conflicts = append(page.Conflicts, *e)
				page.Next = base64.RawURLEncoding.EncodeToString(pos)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(page.Conflicts) < q.Limit {
		page.Next = ""
	}
	return page, nil
}

// conflictEntry describes a stored record's conflict; nil if it holds none.
func conflictEntry(st *Stored, names *nameCache) (*ConflictEntry, error) {
	r := st.Record()
	a := sp.Analyze(r)
	if !a.HasConflict() {
		return nil, nil
	}
	e := &ConflictEntry{
		Record: st.State.ID, Form: st.State.Form, Scope: st.State.Scope, Kind: "fields",
		Fields: map[string][]SiblingInfo{}, Visible: map[string]json.RawMessage{},
		Clock: st.State.Clock, DetectedAt: sp.Timestamp(st.ConflictSince), Seq: st.Seq,
	}
	if len(a.DeleteEdit) > 0 {
		e.Kind = "delete_edit"
	}
	for _, f := range a.ConflictFields() {
		for _, sb := range r.Fields[f] {
			info := SiblingInfo{SiblingView: sp.SiblingView{V: sb.Value, By: sb.By, N: sb.N, At: sb.At}}
			if acc, err := names.get(sb.By); err != nil {
				return nil, err
			} else if acc != nil {
				info.ByName, info.ByRole = acc.Name, string(acc.Role)
			}
			e.Fields[f] = append(e.Fields[f], info)
		}
		e.Visible[f] = a.Visible[f]
	}
	return e, nil
}

// nameCache looks up accounts once per request.
type nameCache struct {
	tx   ReadTx
	seen map[string]*auth.Account
}

func newNameCache(tx ReadTx) *nameCache { return &nameCache{tx: tx, seen: map[string]*auth.Account{}} }

func (n *nameCache) get(id string) (*auth.Account, error) {
	if a, ok := n.seen[id]; ok {
		return a, nil
	}
	a, err := n.tx.Account(id)
	if err != nil {
		return nil, err
	}
	n.seen[id] = a
	return a, nil
}
