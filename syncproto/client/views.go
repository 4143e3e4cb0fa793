package client

import (
	"encoding/json"
	"log/slog"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

// Review is the visible value of a record's _review field: a supervisor's
// verdict on the file, synced to the tablet.
type Review struct {
	State string `json:"state"` // received, has_issues, approved or rejected
	Note  string `json:"note"`
	By    string `json:"by"`
}

// Summary is one record as the device's lists show it.
type Summary struct {
	ID    string
	Form  string
	Scope string
	// Values holds the visible value of each non-reserved field.
	Values map[string]json.RawMessage
	// Deleted is the visible _deleted.
	Deleted bool
	// Conflicts lists the conflicted fields (syncproto.Analysis.ConflictFields).
	Conflicts []string
	// Dirty lists the fields changed since their last acknowledged push.
	Dirty []string
	// Review is the supervisor's review, or nil.
	Review *Review
}

// Get returns a record's state and analysis (visible values, conflicts,
// deleted), or nil when the device holds no such record. A device file
// that cannot be read is logged and reads as no record.
func (c *Client) Get(id string) (*sp.Record, sp.Analysis) {
	r, err := c.st.record(id)
	if err != nil {
		c.log.Error("read record", slog.String(keyRecord, id), slog.String(keyError, err.Error()))
		return nil, sp.Analysis{}
	}
	if r == nil {
		return nil, sp.Analysis{}
	}
	rec := sp.FromState(r.State)
	return rec, sp.Analyze(rec)
}

// Review returns the visible review of a record, or nil when it has none
// (or the device holds no such record).
func (c *Client) Review(id string) *Review {
	_, a := c.Get(id)
	return reviewOf(a)
}

// List returns every record the device holds, tombstones included, in id
// order. It returns the device file's errors.
func (c *Client) List() ([]Summary, error) {
	return c.summaries(func(Summary) bool { return true })
}

// Conflicts returns the records holding a hard or delete_edit conflict, in
// id order. It returns the device file's errors.
func (c *Client) Conflicts() ([]Summary, error) {
	return c.summaries(func(s Summary) bool { return len(s.Conflicts) > 0 })
}

// Dirty reports how many records hold changes not yet acknowledged by the
// server, and whether a push batch is in flight. It returns the device
// file's errors.
func (c *Client) Dirty() (records int, pending bool, err error) {
	err = c.st.each(func(r *localRecord) error {
		if len(r.Dirty) > 0 {
			records++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	pb, err := c.st.pending()
	return records, pb != nil, err
}

func (c *Client) summaries(keep func(Summary) bool) ([]Summary, error) {
	out := []Summary{}
	err := c.st.each(func(r *localRecord) error {
		if s := summarize(r); keep(s) {
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

func summarize(r *localRecord) Summary {
	a := sp.Analyze(sp.FromState(r.State))
	s := Summary{
		ID: r.State.ID, Form: r.State.Form, Scope: r.State.Scope,
		Values: map[string]json.RawMessage{}, Deleted: a.Deleted,
		Conflicts: a.ConflictFields(), Dirty: sortedKeys(r.Dirty), Review: reviewOf(a),
	}
	for name, v := range a.Visible {
		if !sp.IsReserved(name) {
			s.Values[name] = v
		}
	}
	return s
}

func reviewOf(a sp.Analysis) *Review {
	raw, ok := a.Visible[sp.FieldReview]
	if !ok {
		return nil
	}
	var rv Review
	if json.Unmarshal(raw, &rv) != nil {
		return nil
	}
	return &rv
}
