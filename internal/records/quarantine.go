package records

import (
	"context"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// ListQuarantine lists quarantined items, oldest first, after the entry id
// after (empty: from the start), at most limit. Admins only: an
// *sp.Error with CodeForbidden otherwise.
func (s *Service) ListQuarantine(ctx context.Context, caller *auth.Account, after string, limit int) ([]QuarantineEntry, error) {
	if caller.Role != auth.RoleAdmin {
		return nil, sp.Errorf(sp.CodeForbidden, "admins only")
	}
	var out []QuarantineEntry
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.Quarantine(after, limit)
		return err
	})
	if out == nil {
		out = []QuarantineEntry{}
	}
	return out, err
}

// ApplyQuarantined re-applies a quarantined item as if its device pushed it,
// with every check but forged_clock (PROTOCOL.md §6): for writes recovered
// after a restore. An item that applies leaves the quarantine; one rejected
// again stays, with the new reason. It returns an *sp.Error with
// CodeForbidden for a non-admin and CodeNotFound for an unknown entry.
func (s *Service) ApplyQuarantined(ctx context.Context, caller *auth.Account, id string) (*sp.PushResult, error) {
	if caller.Role != auth.RoleAdmin {
		return nil, sp.Errorf(sp.CodeForbidden, "admins only")
	}
	var res sp.PushResult
	err := s.store.Update(ctx, func(tx Tx) error {
		q, err := tx.QuarantineEntry(id)
		if err != nil {
			return err
		}
		if q == nil {
			return sp.Errorf(sp.CodeNotFound, "no quarantined item with this id")
		}
		raw := q.Item
		if len(raw) == 0 {
			raw = json.RawMessage(q.ItemText)
		}
		it := decodeItem(raw)
		st := it.state
		if it.err == nil {
			dev, err := tx.Account(q.Device)
			if err != nil {
				return err
			}
			if dev == nil || !dev.InScope(st.Scope) {
				it.err = sp.Errorf(sp.CodeForbidden, "scope %q: the item's device is not enrolled in it", st.Scope)
			}
		}
		res, err = s.applyItem(tx, it, q.Device, q.Batch, true)
		if err != nil {
			return err
		}
		if res.Status == sp.StatusRejected {
			q.Error = res.Error
			return tx.PutQuarantine(q)
		}
		return tx.DeleteQuarantine(id)
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}
