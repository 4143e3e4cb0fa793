package records

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// decodedItem is one push item after decoding and validation on its own.
type decodedItem struct {
	raw     json.RawMessage
	state   sp.State
	parsed  bool     // the item decoded into state (it may still be invalid)
	err     error    // a rejection found before looking at the stored record
	hash    [32]byte // BLAKE2b-256 of the item's canonical form (itemHash), for batch retries
	hashErr error
	// fresh is the item's stored form for a record the server does not
	// hold yet, prepared before the transaction; nil for a rejected item.
	fresh *freshRecord
	// held is the item merged into the record the server held in the
	// snapshot read before the transaction; nil for a new record.
	held *heldMerge
}

// parallelFrom is the batch size from which items are decoded on every CPU.
const parallelFrom = 64

// decodeItems decodes, validates, scope-checks and hashes every item, and
// prepares those of records the server does not hold yet, in parallel for
// large batches: this is the CPU work a push does before it needs the
// single writer. Whether a record exists is read in a snapshot; one
// created since is merged in the transaction as any other. It returns the
// store's error.
func (s *Service) decodeItems(ctx context.Context, raws []json.RawMessage, caller *auth.Account, batch string) ([]decodedItem, error) {
	items := make([]decodedItem, len(raws))
	// scratch is a worker's buffer for the canonical forms it hashes.
	one := func(tx ReadTx, i int, scratch *[]byte) error {
		it := decodeItem(raws[i])
		if it.err == nil && !caller.InScope(it.state.Scope) {
			it.err = sp.Errorf(sp.CodeForbidden, "scope %q: this device is not enrolled in it", it.state.Scope)
		}
		if it.err == nil && preparePath {
			prev, err := tx.Record(it.state.ID)
			if err != nil {
				return err
			}
			if prev == nil {
				prepareFresh(&it, caller.ID, batch)
			} else {
				prepareHeld(&it, prev, caller.ID, batch)
			}
		}
		it.hash, it.hashErr = itemHash(&it, scratch)
		items[i] = it
		return nil
	}
	chunk := func(lo, hi int) error {
		return s.store.View(ctx, func(tx ReadTx) error {
			var scratch []byte
			for i := lo; i < hi; i++ {
				if err := one(tx, i, &scratch); err != nil {
					return err
				}
			}
			return nil
		})
	}
	workers := runtime.GOMAXPROCS(0)
	if len(raws) < parallelFrom || workers < 2 {
		return items, chunk(0, len(raws))
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	size := (len(raws) + workers - 1) / workers
	for w, lo := 0, 0; lo < len(raws); w, lo = w+1, lo+size {
		hi := min(lo+size, len(raws))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = chunk(lo, hi)
		}()
	}
	wg.Wait()
	return items, errors.Join(errs...)
}

// decodeItem parses and validates one item on its own.
func decodeItem(raw json.RawMessage) decodedItem {
	st, parsed, err := sp.ReadItem(raw)
	return decodedItem{raw: raw, state: st, parsed: parsed, err: err}
}

// Push applies a device's batch (PROTOCOL.md §2) in one transaction and
// returns the answer once it is durable. It returns an *sp.Error with
// CodeBadJSON, CodeBadRequest or CodeTooLarge for a malformed body,
// CodeForbidden when the caller is not the batch's device, and
// CodeBatchReused when the batch id was used for other records. Items are
// rejected one by one in the answer, and kept in the quarantine.
func (s *Service) Push(ctx context.Context, caller *auth.Account, body []byte) (*sp.PushResponse, error) {
	req, err := sp.DecodePush(body)
	if err != nil {
		return nil, err
	}
	if !caller.IsDevice() || req.Device != caller.ID {
		return nil, sp.Errorf(sp.CodeForbidden, "device: a push must come from the token's own device")
	}
	// Decoding and preparing a batch takes several times its size in
	// memory until it is committed: a bounded number of records go through
	// at once, and the rest wait here with only their bodies.
	weight := min(int64(max(len(req.Records), 1)), s.inFlight)
	if err := s.pushing.Acquire(ctx, weight); err != nil {
		return nil, err
	}
	defer s.pushing.Release(weight)
	items, err := s.decodeItems(ctx, req.Records, caller, req.Batch)
	if err != nil {
		return nil, err
	}
	hash, err := batchHash(items)
	if err != nil {
		return nil, err
	}

	var resp *sp.PushResponse
	err = s.store.UpdateGrouped(ctx, func(tx Tx) error {
		resp = nil
		if kept, err := tx.Batch(req.Device, req.Batch); err != nil {
			return err
		} else if kept != nil {
			if same, err := sameBatch(kept.Hash, hash, items); err != nil {
				return err
			} else if !same {
				return sp.Errorf(sp.CodeBatchReused, "batch %s was already used for other records; use a new batch id", req.Batch)
			}
			var old sp.PushResponse
			if err := json.Unmarshal(kept.Response, &old); err != nil {
				return err
			}
			resp = &old
			return nil
		}
		now := s.now()
		out := &sp.PushResponse{Batch: req.Batch, Results: make([]sp.PushResult, len(items))}
		for i, it := range items {
			res, err := s.applyItem(tx, it, req.Device, req.Batch, false)
			if err != nil {
				return err
			}
			if res.Status == sp.StatusRejected {
				if err := quarantine(tx, it.raw, res, req.Device, req.Batch, now); err != nil {
					return err
				}
			}
			out.Results[i] = res
		}
		b := out.AppendJSON(make([]byte, 0, 64+160*len(out.Results)))
		if err := tx.PutBatch(req.Device, req.Batch, &BatchAnswer{Hash: hash, Response: b}); err != nil {
			return err
		}
		resp = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// applyItem merges one item into the stored record within tx. A rejection
// is a result, not an error; an error means the transaction must abort.
func (s *Service) applyItem(tx Tx, it decodedItem, device, batch string, skipForged bool) (sp.PushResult, error) {
	reject := func(err error) (sp.PushResult, error) { return rejected(it, err) }
	if it.err != nil {
		return reject(it.err)
	}
	if it.held != nil && !skipForged {
		_, seq, err := tx.RecordJSON(it.state.ID)
		if err != nil {
			return sp.PushResult{}, err
		}
		if seq == it.held.prev.Seq {
			return s.applyHeld(tx, it, device)
		}
		// Changed since the snapshot: merged again below.
	}
	prev, err := tx.Record(it.state.ID)
	if err != nil {
		return sp.PushResult{}, err
	}
	var old *sp.Record
	if prev != nil {
		old = prev.Record()
	}
	if err := sp.CheckItem(it.state, old, device, skipForged); err != nil {
		return reject(err)
	}
	if err := checkReviewWriters(tx, it.state, device); err != nil {
		return reject(err)
	}
	if old == nil && it.fresh != nil {
		return s.applyFresh(tx, it.fresh)
	}
	item := it.item()
	merged := sp.ApplyPush(old, item)
	if len(merged.Fields) > sp.MaxFields {
		return reject(sp.Errorf(sp.CodeTooLarge, "the merged record would hold %d fields, at most %d", len(merged.Fields), sp.MaxFields))
	}
	if old != nil && merged.Equal(old) {
		return sp.PushResult{ID: prev.State.ID, Status: sp.StatusUnchanged, Seq: prev.Seq, Clock: prev.State.Clock}, nil
	}
	concurrent := old != nil && !item.Clock.Dominates(old.Clock)
	next, a, err := s.store1(tx, prev, old, merged)
	if err != nil {
		return sp.PushResult{}, err
	}
	h := newHistory(old, merged, device, batch, KindPush, concurrent)
	return s.recordChange(tx, next, a, h)
}

// rejected is the result of an item refused with err, an *sp.Error; any
// other error is returned as such (the transaction must abort).
func rejected(it decodedItem, err error) (sp.PushResult, error) {
	var e *sp.Error
	if !errors.As(err, &e) {
		return sp.PushResult{}, err
	}
	return sp.PushResult{ID: it.state.ID, Status: sp.StatusRejected, Error: e}, nil
}

// recordChange appends the history entry of a change just stored as next,
// and returns the push result for it.
func (s *Service) recordChange(tx Tx, next *Stored, a sp.Analysis, h *HistoryEntry) (sp.PushResult, error) {
	h.Seq = next.Seq
	h.ReceivedAt = sp.Timestamp(next.UpdatedAt)
	if err := tx.AppendHistory(next.State.ID, h); err != nil {
		return sp.PushResult{}, err
	}
	res := sp.PushResult{ID: next.State.ID, Status: sp.StatusApplied, Seq: next.Seq, Clock: next.State.Clock}
	if a.HasConflict() {
		res.Status = sp.StatusConflict
		res.Conflicts = a.ConflictFields()
	}
	return res, nil
}

// store1 writes the merged state of one record, keeping the time its
// conflict was first detected while it lasts.
func (s *Service) store1(tx Tx, prev *Stored, old, merged *sp.Record) (*Stored, sp.Analysis, error) {
	a := sp.Analyze(merged)
	next := &Stored{State: merged.State(), Summary: Summarize(a)}
	s.stamp(next, prev, a)
	if err := tx.PutRecord(prev, next); err != nil {
		return nil, a, err
	}
	return next, a, nil
}

// stamp sets next's times from the server clock and prev (nil for a new
// record): created once, updated now, and the time its conflict was first
// detected kept while the conflict lasts.
func (s *Service) stamp(next, prev *Stored, a sp.Analysis) {
	now := s.now().UTC()
	next.CreatedAt, next.UpdatedAt = now, now
	if prev != nil {
		next.CreatedAt = prev.CreatedAt
		next.ConflictSince = prev.ConflictSince
	}
	switch {
	case !a.HasConflict():
		next.ConflictSince = time.Time{}
	case next.ConflictSince.IsZero():
		next.ConflictSince = now
	}
}

// checkReviewWriters refuses a _review sibling written by a device: only
// supervisors review. A device may push back _review values as pulled.
func checkReviewWriters(tx ReadTx, item sp.State, device string) error {
	for _, w := range item.Writes {
		if _, ok := w.Fields[sp.FieldReview]; !ok {
			continue
		}
		if w.By == device {
			return sp.Errorf(sp.CodeForbidden, "field \"_review\": a device cannot write reviews")
		}
		a, err := tx.Account(w.By)
		if err != nil {
			return err
		}
		if a != nil && a.IsDevice() {
			return sp.Errorf(sp.CodeForbidden, "field \"_review\": written by a device; only supervisors review")
		}
	}
	return nil
}

// newHistory describes the change from old (nil for a new record) to merged.
func newHistory(old, merged *sp.Record, actor, batch, kind string, concurrent bool) *HistoryEntry {
	h := &HistoryEntry{Actor: actor, Batch: batch, Kind: kind, MergedConcurrent: concurrent, Fields: []string{}, Values: map[string]json.RawMessage{}}
	names := map[string]bool{}
	for n := range merged.Fields {
		names[n] = true
	}
	if old != nil {
		for n := range old.Fields {
			names[n] = true
		}
	}
	for n := range names {
		var before []sp.Sibling
		if old != nil {
			before = old.Fields[n]
		}
		after := merged.Fields[n]
		added := newSiblings(before, after)
		if len(added) == 0 && len(before) == len(after) {
			continue
		}
		h.Fields = append(h.Fields, n)
		if len(added) > 0 {
			h.Values[n] = sp.Winner(added).Value
			if len(added) > 1 {
				if h.Siblings == nil {
					h.Siblings = map[string][]sp.SiblingView{}
				}
				for _, sb := range added {
					h.Siblings[n] = append(h.Siblings[n], sp.SiblingView{V: sb.Value, By: sb.By, N: sb.N, At: sb.At})
				}
			}
		}
	}
	sort.Strings(h.Fields)
	return h
}

// newSiblings returns the siblings of after whose dots are not in before.
func newSiblings(before, after []sp.Sibling) []sp.Sibling {
	var out []sp.Sibling
	for _, a := range after {
		found := false
		for _, b := range before {
			if a.Dot == b.Dot {
				found = true
				break
			}
		}
		if !found {
			out = append(out, a)
		}
	}
	return out
}

// quarantine keeps a rejected item as it was sent, with the reason.
func quarantine(tx Tx, raw json.RawMessage, res sp.PushResult, device, batch string, now time.Time) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	q := &QuarantineEntry{ID: id.String(), Record: res.ID, Device: device, Batch: batch, ReceivedAt: sp.Timestamp(now), Error: res.Error}
	// Kept as JSON when it nests no deeper than a value may plus the
	// item's own levels, so the quarantine list stays readable by any JSON
	// parser; deeper items are kept as their text.
	if json.Valid(raw) && sp.Depth(raw) <= sp.MaxValueDepth+8 {
		q.Item = append(json.RawMessage(nil), raw...)
	} else {
		q.ItemText = string(raw)
	}
	return tx.PutQuarantine(q)
}
