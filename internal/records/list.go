package records

import (
	"context"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// ListQuery filters and pages GET /v1/records.
type ListQuery struct {
	Scope  string
	Form   string
	Review string // a review state, or empty for all
	Limit  int    // 1..1000
	After  string // a record id: the last of the previous page
}

// ListEntry is one record in a review list.
type ListEntry struct {
	ID        string                     `json:"id"`
	Form      string                     `json:"form"`
	Scope     string                     `json:"scope"`
	Seq       uint64                     `json:"seq"`
	UpdatedAt string                     `json:"updated_at"`
	Review    *Review                    `json:"review"`
	Conflict  bool                       `json:"conflict"`
	Deleted   bool                       `json:"deleted"`
	Values    map[string]json.RawMessage `json:"values"`
}

// ListPage is a page of records.
type ListPage struct {
	Records []ListEntry `json:"records"`
	Next    string      `json:"next"`
}

// List lists the records in the caller's scopes for review work, in id
// order. It returns an *sp.Error with CodeForbidden for a device and
// CodeBadRequest for a bad filter or limit.
func (s *Service) List(ctx context.Context, caller *auth.Account, q ListQuery) (*ListPage, error) {
	if !canRead(caller) {
		return nil, sp.Errorf(sp.CodeForbidden, "devices push and pull; they do not list records")
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return nil, sp.Errorf(sp.CodeBadRequest, "limit: must be 1 to 1000")
	}
	if err := checkFilters(q.Scope, q.Form, q.Review); err != nil {
		return nil, err
	}
	if q.After != "" && !sp.IsUUID(q.After) {
		return nil, sp.Errorf(sp.CodeBadRequest, "after: must be a record id")
	}
	page := &ListPage{Records: []ListEntry{}}
	err := s.store.View(ctx, func(tx ReadTx) error {
		// Filters read the stored summaries; only the records listed are
		// decoded.
		return tx.Rows(q.After, func(r *Row) (bool, error) {
			if len(page.Records) == q.Limit {
				page.Next = page.Records[len(page.Records)-1].ID
				return false, nil
			}
			if !caller.InScope(r.Scope) || (q.Scope != "" && r.Scope != q.Scope) || (q.Form != "" && r.Form != q.Form) ||
				(q.Review != "" && r.Summary.Review != q.Review) {
				return true, nil
			}
			st, err := tx.Record(r.ID)
			if err != nil || st == nil {
				return err == nil, err
			}
			v := NewView(st)
			page.Records = append(page.Records, ListEntry{
				ID: st.State.ID, Form: st.State.Form, Scope: st.State.Scope, Seq: st.Seq, UpdatedAt: v.UpdatedAt,
				Review: v.Review, Conflict: v.ConflictKind != "", Deleted: v.Deleted, Values: v.Values,
			})
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}
