package records

import (
	"context"
	"encoding/json"
	"strconv"

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

// PullPage is a page of the feed as it goes on the wire: each record's
// state JSON as stored, with its seq.
type PullPage struct {
	Records []json.RawMessage `json:"records"`
	Cursor  string            `json:"cursor"`
	More    bool              `json:"more"`
}

// Decode returns the page as typed records.
func (p *PullPage) Decode() (*sp.PullResponse, error) {
	out := &sp.PullResponse{Records: make([]sp.PulledRecord, len(p.Records)), Cursor: p.Cursor, More: p.More}
	for i, raw := range p.Records {
		if err := json.Unmarshal(raw, &out.Records[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withSeq appends "seq" to a state's JSON object.
func withSeq(state []byte, seq uint64) json.RawMessage {
	b := make([]byte, 0, len(state)+24)
	b = append(b, state[:len(state)-1]...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// Pull returns the records in the caller's scopes that changed after the
// cursor, once each, at their latest state, in ascending seq (PROTOCOL.md
// §3). It returns an *sp.Error with CodeBadRequest for a bad limit or form,
// CodeBadCursor for a malformed cursor, CodeResyncRequired for a cursor of
// another history, and CodeForbidden for a caller who may not pull.
func (s *Service) Pull(ctx context.Context, caller *auth.Account, q PullQuery) (*PullPage, error) {
	if q.Limit < 1 || q.Limit > sp.MaxPull {
		return nil, sp.Errorf(sp.CodeBadRequest, "limit: must be 1 to %d", sp.MaxPull)
	}
	if q.Form != "" && !sp.IsSlug(q.Form) {
		return nil, sp.Errorf(sp.CodeBadRequest, "form: must match [a-z0-9_-]{1,64}")
	}
	resp := &PullPage{Records: []json.RawMessage{}}
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
			state, seq, err := tx.RecordJSON(c.ID)
			if err != nil {
				return false, err
			}
			if state == nil {
				return true, nil
			}
			resp.Records = append(resp.Records, withSeq(state, seq))
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
