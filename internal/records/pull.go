package records

import (
	"context"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

var (
	errBadCursor = sp.Errorf(sp.CodeBadCursor, "since: malformed cursor")
	errResync    = sp.Errorf(sp.CodeResyncRequired, "since: this cursor does not belong to this database's history; pull from the start, merge, and push the full state of every record")
)

// maxScan bounds the changes one pull page looks at, so a caller whose
// scopes hold few of the records cannot make one request scan the whole
// feed. A page cut short says more = true.
const maxScan = 200_000

// PullQuery is what a pull asks for.
type PullQuery struct {
	Since string // a cursor from an earlier pull or an export; empty = start
	Limit int    // 1..sp.MaxPull
	Form  string // optional
}

// Pull returns the records in the caller's scopes that changed after the
// cursor, once each, at their latest state, in ascending seq (PROTOCOL.md
// §3). It returns an *sp.Error with CodeBadRequest for a bad limit or form,
// CodeBadCursor for a malformed cursor, CodeResyncRequired for a cursor of
// another history, and CodeForbidden for a caller who may not pull.
func (s *Service) Pull(ctx context.Context, caller *auth.Account, q PullQuery) (*sp.PullResponse, error) {
	if q.Limit < 1 || q.Limit > sp.MaxPull {
		return nil, sp.Errorf(sp.CodeBadRequest, "limit: must be 1 to %d", sp.MaxPull)
	}
	if q.Form != "" && !sp.IsSlug(q.Form) {
		return nil, sp.Errorf(sp.CodeBadRequest, "form: must match [a-z0-9_-]{1,64}")
	}
	resp := &sp.PullResponse{Records: []sp.PulledRecord{}}
	err := s.store.View(ctx, func(tx ReadTx) error {
		since, err := checkCursor(tx, q.Since)
		if err != nil {
			return err
		}
		last := since
		scanned := 0
		err = tx.Changes(since, func(c Change) (bool, error) {
			if len(resp.Records) == q.Limit || scanned == maxScan {
				resp.More = true
				return false, nil
			}
			scanned++
			last = c.Seq
			if !caller.InScope(c.Scope) || (q.Form != "" && c.Form != q.Form) {
				return true, nil
			}
			rec, err := tx.Record(c.ID)
			if err != nil {
				return false, err
			}
			if rec == nil {
				return true, nil
			}
			resp.Records = append(resp.Records, sp.PulledRecord{State: rec.State, Seq: rec.Seq})
			return true, nil
		})
		if err != nil {
			return err
		}
		if !resp.More {
			last = tx.Position().LastSeq
		}
		resp.Cursor = cursorAt(tx, last).String()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
