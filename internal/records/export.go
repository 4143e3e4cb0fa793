package records

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// ExportQuery filters an export (PROTOCOL.md §5).
type ExportQuery struct {
	Form           string
	Scope          string
	IncludeDeleted bool
	Review         string
}

// ExportRow is one record of an export: its visible non-reserved values and
// what HQ needs to know about it.
type ExportRow struct {
	ID        string
	Form      string
	Scope     string
	Seq       uint64
	UpdatedAt string
	Conflict  bool
	Deleted   bool
	Review    string // the review state; received when none
	// Values is one JSON object of the visible non-reserved values. It is
	// valid only during the Row call.
	Values json.RawMessage
}

// ExportSnapshot says which snapshot an export reads.
type ExportSnapshot struct {
	Seq    uint64 // the last change sequence number the snapshot holds
	Cursor string // a pull cursor at that change, covering all scopes and forms
	Fields []string
}

// ExportWriter receives an export: Start once, before any row, then each
// row. An error from either stops the export. Implementations live in
// internal/export.
type ExportWriter interface {
	Start(snap ExportSnapshot) error
	Row(r *ExportRow) error
}

// progressEvery is how often a long export logs its progress.
const progressEvery = 5 * time.Second

// Export streams the merged dataset as one consistent snapshot (one read
// transaction) into w, record by record, in id order: memory does not grow
// with the dataset. HQ and admins only: an *sp.Error with CodeForbidden
// otherwise, CodeBadRequest for a bad filter.
func (s *Service) Export(ctx context.Context, caller *auth.Account, q ExportQuery, w ExportWriter) (int, error) {
	if !caller.AllScopes() {
		return 0, sp.Errorf(sp.CodeForbidden, "exports are for HQ and admin accounts")
	}
	if err := checkFilters(q.Scope, q.Form, q.Review); err != nil {
		return 0, err
	}
	n := 0
	err := s.store.View(ctx, func(tx ReadTx) error {
		fields, err := tx.FieldNames(q.Form)
		if err != nil {
			return err
		}
		pos := tx.Position()
		if err := w.Start(ExportSnapshot{Seq: pos.LastSeq, Cursor: cursorAt(tx, pos.LastSeq).String(), Fields: fields}); err != nil {
			return err
		}
		start, lastLog := time.Now(), time.Now()
		row := &ExportRow{}
		err = tx.Rows("", func(r *Row) (bool, error) {
			if (q.Scope != "" && r.Scope != q.Scope) || (q.Form != "" && r.Form != q.Form) {
				return true, nil
			}
			if r.Summary.Deleted && !q.IncludeDeleted {
				return true, nil
			}
			if q.Review != "" && r.Summary.Review != q.Review {
				return true, nil
			}
			*row = ExportRow{ID: r.ID, Form: r.Form, Scope: r.Scope, Seq: r.Seq, UpdatedAt: sp.Timestamp(r.UpdatedAt),
				Conflict: r.Summary.Conflict, Deleted: r.Summary.Deleted, Review: r.Summary.Review, Values: r.Summary.Values}
			if err := w.Row(row); err != nil {
				return false, err
			}
			n++
			if n%1024 != 0 { // clock and context are looked at every 1,024 records
				return true, nil
			}
			if time.Since(lastLog) >= progressEvery {
				lastLog = time.Now()
				s.log.Info("export progress", slog.Int("records", n), slog.Int("per_second", int(float64(n)/time.Since(start).Seconds())))
			}
			return true, ctx.Err()
		})
		if err == nil && time.Since(start) >= progressEvery {
			s.log.Info("export done", slog.Int("records", n), slog.Int("per_second", int(float64(n)/time.Since(start).Seconds())))
		}
		return err
	})
	return n, err
}
