package records

import (
	"context"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Review states.
const (
	ReviewReceived  = "received"
	ReviewHasIssues = "has_issues"
	ReviewApproved  = "approved"
	ReviewRejected  = "rejected"
)

// ValidReviewState reports whether s is a review state.
func ValidReviewState(s string) bool {
	switch s {
	case ReviewReceived, ReviewHasIssues, ReviewApproved, ReviewRejected:
		return true
	}
	return false
}

// ReviewRequest is the body of POST /v1/records/{id}/review.
type ReviewRequest struct {
	State string `json:"state"`
	Note  string `json:"note"`
}

// SetReview writes the reserved field _review = {state, note, by} by the
// supervisor's actor, so it syncs to the tablets (PROTOCOL.md §4). It
// returns the record's new view, or an *sp.Error: CodeBadRequest for a
// missing or unknown state or an over-long note; CodeForbidden,
// CodeNotFound.
func (s *Service) SetReview(ctx context.Context, caller *auth.Account, id string, req ReviewRequest) (*View, error) {
	if !ValidReviewState(req.State) {
		return nil, sp.Errorf(sp.CodeBadRequest, "state: must be received, has_issues, approved or rejected")
	}
	if len(req.Note) > MaxNoteLen {
		return nil, sp.Errorf(sp.CodeBadRequest, "note: at most %d bytes", MaxNoteLen)
	}
	v, err := json.Marshal(Review{State: req.State, Note: req.Note, By: caller.Name})
	if err != nil {
		return nil, err
	}
	var view *View
	err = s.store.Update(ctx, func(tx Tx) error {
		prev, err := writable(tx, caller, id)
		if err != nil {
			return err
		}
		next, err := s.supervisorWrite(tx, prev, caller, map[string]json.RawMessage{sp.FieldReview: v}, nil, KindReview, req.Note)
		if err != nil {
			return badRequest(err)
		}
		view = NewView(next)
		return nil
	})
	return view, err
}

// reviewState returns a record's visible review state; received when it has
// none.
func reviewState(a sp.Analysis) string {
	if raw, ok := a.Visible[sp.FieldReview]; ok {
		var r Review
		if json.Unmarshal(raw, &r) == nil && r.State != "" {
			return r.State
		}
	}
	return ReviewReceived
}

// checkFilters returns an *sp.Error with CodeBadRequest for a scope or form
// filter that is not a valid name, or a review filter that is not a review
// state. Empty filters are fine.
func checkFilters(scope, form, review string) error {
	if (scope != "" && !sp.IsSlug(scope)) || (form != "" && !sp.IsSlug(form)) {
		return sp.Errorf(sp.CodeBadRequest, "scope and form must match [a-z0-9_-]{1,64}")
	}
	if review != "" && !ValidReviewState(review) {
		return sp.Errorf(sp.CodeBadRequest, "review: must be received, has_issues, approved or rejected")
	}
	return nil
}
