package records

import (
	sp "github.com/fieldsync/fieldsync/syncproto"
)

// A push does most of its work before the single writer, in parallel:
// for each item it reads, in a snapshot, whether the server holds the
// record, and prepares what the transaction will write. A new record is
// prepared whole (freshRecord). An edit is merged into the record as the
// snapshot holds it (heldMerge), and used in the transaction only if the
// record has not changed since (same seq); otherwise it is merged again
// there. Either way the result is what merging in the transaction gives:
// TestFreshPathMatchesMerge and TestHeldPathMatchesMerge hold them to it.

// preparePath is whether pushes prepare records before the transaction;
// tests turn it off to compare.
var preparePath = true

// item returns the item as siblings, from its preparation when it has one.
func (it *decodedItem) item() *sp.Record {
	switch {
	case it.fresh != nil && it.fresh.item != nil:
		return it.fresh.item
	case it.held != nil:
		return it.held.item
	}
	return sp.FromState(it.state)
}

// freshRecord is everything a push writes for a record new to the server
// but the times and the sequence number: computed in parallel before the
// single writer, so that the transaction only copies it.
type freshRecord struct {
	item      *sp.Record // the item as siblings, when they were needed
	names     []string   // the field names of an item of one write, sorted
	analysis  sp.Analysis
	state     sp.State
	stateJSON []byte
	summary   *Summary
	history   *HistoryEntry // frozen: only Seq and ReceivedAt are set later
}

// namesOrNil returns f's sorted names, nil for no f.
func (f *freshRecord) namesOrNil() []string {
	if f == nil {
		return nil
	}
	return f.names
}

// prepareFresh computes it.fresh for a valid item pushed by device.
func prepareFresh(it *decodedItem, device, batch string) {
	if it.err != nil {
		return
	}
	f := &freshRecord{}
	if fr, ok := sp.NewFresh(it.raw, it.state); ok {
		// One write: the record is the write, and so is its history.
		f.state, f.analysis, f.stateJSON, f.names = fr.State, fr.Analysis, fr.JSON, fr.Names
		f.summary = &Summary{Values: fr.Values, Review: ReviewReceived}
		f.history = &HistoryEntry{Actor: device, Batch: batch, Kind: KindPush, Fields: fr.Names, Values: fr.Analysis.Visible, valuesJSON: fr.Values}
	} else {
		f.item = sp.FromState(it.state)
		merged := sp.ApplyPush(nil, f.item)
		if len(merged.Fields) > sp.MaxFields {
			return // applyItem rejects it
		}
		f.analysis = sp.Analyze(merged)
		f.state = merged.State()
		f.stateJSON = f.state.AppendJSON(make([]byte, 0, 2*len(it.raw)))
		f.summary = Summarize(f.analysis)
		f.history = newHistory(nil, merged, device, batch, KindPush, false)
	}
	f.history.freeze()
	it.fresh = f
}

// applyFresh writes a record new to the server from its prepared form.
func (s *Service) applyFresh(tx Tx, f *freshRecord) (sp.PushResult, error) {
	next := &Stored{State: f.state, StateJSON: f.stateJSON, Summary: f.summary}
	s.stamp(next, nil, f.analysis)
	if err := tx.PutRecord(nil, next); err != nil {
		return sp.PushResult{}, err
	}
	h := *f.history // a copy: the transaction may run again
	return s.recordChange(tx, next, f.analysis, &h)
}

// heldMerge is an edit merged before the transaction into the record the
// server held in the snapshot (prev): what applyItem would decide and
// write, but the times, the sequence number and the review writers' check,
// which read the transaction.
type heldMerge struct {
	prev *Stored    // the record in the snapshot
	item *sp.Record // the item as siblings
	// refused is the item's rejection against prev (CheckItem), and
	// tooLarge the merged record's field limit, if any.
	refused, tooLarge error
	// unchanged is true when the merge changes nothing.
	unchanged bool
	next      *Stored // to write, times and seq unset
	analysis  sp.Analysis
	history   *HistoryEntry // frozen: only Seq and ReceivedAt are set later
}

// prepareHeld computes it.held for a valid item pushed by device, editing
// prev.
func prepareHeld(it *decodedItem, prev *Stored, device, batch string) {
	old := prev.Record()
	h := &heldMerge{prev: prev, item: sp.FromState(it.state)}
	it.held = h
	if err := sp.CheckItem(it.state, old, device, false); err != nil {
		h.refused = err
		return
	}
	merged := sp.ApplyPush(old, h.item)
	if len(merged.Fields) > sp.MaxFields {
		h.tooLarge = sp.Errorf(sp.CodeTooLarge, "the merged record would hold %d fields, at most %d", len(merged.Fields), sp.MaxFields)
		return
	}
	if merged.Equal(old) {
		h.unchanged = true
		return
	}
	h.analysis = sp.Analyze(merged)
	h.next = &Stored{State: merged.State(), Summary: Summarize(h.analysis)}
	h.next.StateJSON = h.next.State.AppendJSON(make([]byte, 0, 2*len(it.raw)+256))
	h.history = newHistory(old, merged, device, batch, KindPush, !h.item.Clock.Dominates(old.Clock))
	h.history.freeze()
}

// applyHeld writes an edit prepared against the record as it still is.
// The order of checks is applyItem's: the item against the record, then
// the review writers, then the field limit.
func (s *Service) applyHeld(tx Tx, it decodedItem, device string) (sp.PushResult, error) {
	h := it.held
	if h.refused != nil {
		return rejected(it, h.refused)
	}
	if err := checkReviewWriters(tx, it.state, device); err != nil {
		return rejected(it, err)
	}
	if h.tooLarge != nil {
		return rejected(it, h.tooLarge)
	}
	if h.unchanged {
		return sp.PushResult{ID: h.prev.State.ID, Status: sp.StatusUnchanged, Seq: h.prev.Seq, Clock: h.prev.State.Clock}, nil
	}
	next := *h.next // a copy: the transaction may run again
	s.stamp(&next, h.prev, h.analysis)
	if err := tx.PutRecord(h.prev, &next); err != nil {
		return sp.PushResult{}, err
	}
	hist := *h.history
	return s.recordChange(tx, &next, h.analysis, &hist)
}
