package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	sp "github.com/fieldsync/fieldsync/syncproto"
)

const (
	routePush = "/v1/sync/push"
	routePull = "/v1/sync/pull"

	// maxReused bounds how often one Sync rebuilds a batch after 409
	// batch_reused, which a correct server never answers to a new id.
	maxReused = 3
)

// SyncReport says what one Sync did.
type SyncReport struct {
	// Batches is the number of push batches the server answered.
	Batches int
	// Applied, Unchanged and Conflicted count the push results by status.
	Applied, Unchanged, Conflicted int
	// Conflicts lists the records a push left holding a conflict.
	Conflicts []string
	// Rejected lists the items the server refused (and keeps in its
	// quarantine). Their fields are no longer pushed, unless saved again.
	Rejected []Rejection
	// Pulled counts the record states merged from pulls.
	Pulled int
	// Resynced is true when the server asked for a resync (410) and the
	// device pulled from the start and pushed the full state of every record.
	Resynced bool
}

// Rejection is one push item the server refused.
type Rejection struct {
	ID      string // the record
	Batch   string
	Code    sp.Code
	Message string
}

// Sync pushes the device's changes, then pulls the server's (PROTOCOL.md
// §2, §3). A batch left pending by an earlier Sync (a crash, a lost answer)
// is resent first, as it was, with its batch id; then the dirty records go
// in new batches of BatchSize, each persisted before it is sent. A field
// stays dirty until a push carrying it is answered and no later save has
// touched it. Pulls merge every page and store its cursor in one
// transaction. On 410 resync_required the device pulls from the start,
// merges, and pushes the full state of every record.
//
// A rejected item is not an error: the server keeps it in its quarantine,
// the report lists it, and its fields are not pushed again unless saved
// again, so that one bad item never blocks the device.
//
// Sync returns, with what it did so far: an error wrapping ErrBadOptions
// without a ServerURL, a *RetryError (matching ErrGaveUp) when the server
// stayed unreachable through MaxRetries retries, a *StatusError for an
// answer retrying cannot fix (401, 403, 400, ...), ctx.Err(), and the
// device file's errors. Nothing unsent is lost by an error: the next Sync
// carries on.
func (c *Client) Sync(ctx context.Context) (SyncReport, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var rep SyncReport
	if c.opt.ServerURL == "" {
		return rep, fmt.Errorf("%w: no ServerURL: this client works offline only", ErrBadOptions)
	}
	resyncing, err := c.st.resyncing()
	if err != nil {
		return rep, err
	}
	if !resyncing {
		if err := c.pushAll(ctx, &rep); err != nil {
			return rep, err
		}
		err := c.pullAll(ctx, &rep)
		if sp.ErrorCode(err) != sp.CodeResyncRequired {
			return rep, err
		}
		c.log.Warn("server asked for a resync: pulling from the start, then pushing every record")
		if err := c.st.startResync(); err != nil {
			return rep, err
		}
	}
	return rep, c.resync(ctx, &rep)
}

// resync recovers from a cursor the server does not know (PROTOCOL.md §3),
// once startResync has reset the cursor and set the resync flag, which
// lets a Sync after a crash carry on: pull from the start and merge; mark
// every field of every record dirty (clearing the flag); push the full
// states; pull what that push changed.
func (c *Client) resync(ctx context.Context, rep *SyncReport) error {
	rep.Resynced = true
	err := c.pullAll(ctx, rep)
	if sp.ErrorCode(err) == sp.CodeResyncRequired { // the server was restored again meanwhile
		if err := c.st.startResync(); err != nil {
			return err
		}
		err = c.pullAll(ctx, rep)
	}
	if err != nil {
		return err
	}
	if err := c.st.markAllDirty(c.opt.Device); err != nil {
		return err
	}
	if err := c.pushAll(ctx, rep); err != nil {
		return err
	}
	return c.pullAll(ctx, rep)
}

// pushAll sends the pending batch if there is one, then the dirty records,
// each at most once per call, so that saves made meanwhile wait for the next
// Sync instead of keeping this one going.
func (c *Client) pushAll(ctx context.Context, rep *SyncReport) error {
	built := map[string]bool{}
	reused := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pb, err := c.st.pending()
		if err != nil {
			return err
		}
		if pb != nil {
			c.log.Info("resending pending batch", slog.String(keyBatch, pb.ID), slog.Int(keyItems, len(pb.Items)))
		} else {
			id := NewID()
			pb, err = c.st.buildPending(id, c.opt.BatchSize, built, c.buildItem, func(items []json.RawMessage) (json.RawMessage, error) {
				return json.Marshal(sp.PushRequest{Device: c.opt.Device, Batch: id, Records: items})
			})
			if err != nil {
				return err
			}
			if pb == nil {
				return nil
			}
			for _, it := range pb.Items {
				built[it.ID] = true
			}
		}
		resp, err := c.sendPush(ctx, pb)
		if sp.ErrorCode(err) == sp.CodeBatchReused && reused < maxReused {
			reused++
			c.log.Error("server refused a batch id as reused; rebuilding the batch with a new id", slog.String(keyBatch, pb.ID))
			for _, it := range pb.Items {
				delete(built, it.ID)
			}
			if err := c.st.dropPending(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		done := c.tally(rep, pb, resp)
		if err := c.st.acknowledge(pb, done); err != nil {
			return err
		}
	}
}

// buildItem makes a dirty record's push item (PROTOCOL.md §2): its id,
// form and scope, its full clock, and every sibling of each dirty field.
func (c *Client) buildItem(r *localRecord) (json.RawMessage, map[string]uint64, bool, error) {
	rec := sp.FromState(r.State)
	item := &sp.Record{ID: rec.ID, Form: rec.Form, Scope: rec.Scope, Clock: rec.Clock, Fields: map[string][]sp.Sibling{}}
	carried := make(map[string]uint64, len(r.Dirty))
	for f, mark := range r.Dirty {
		carried[f] = mark
		if sibs := rec.Fields[f]; len(sibs) > 0 {
			item.Fields[f] = sibs
		}
	}
	if len(item.Fields) == 0 {
		return nil, nil, false, nil
	}
	b, err := json.Marshal(item.State())
	if err != nil {
		return nil, nil, false, err
	}
	return b, carried, true, nil
}

// sendPush posts a batch and decodes the answer. It returns do's errors,
// and an error when the answer is not for this batch.
func (c *Client) sendPush(ctx context.Context, pb *pendingBatch) (*sp.PushResponse, error) {
	body, err := c.do(ctx, request{method: http.MethodPost, route: routePush, path: routePush, body: pb.Body})
	if err != nil {
		return nil, err
	}
	var resp sp.PushResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("client: push answer: %w", err)
	}
	if resp.Batch != pb.ID {
		return nil, fmt.Errorf("client: push answer is for batch %q, not %q", resp.Batch, pb.ID)
	}
	return &resp, nil
}

// tally counts a push answer into the report, logs rejections, and returns
// the records whose items the server answered: their carried fields are
// acknowledged. A rejected item is acknowledged too: the server keeps it in
// its quarantine, and holding it back would block nothing but itself.
func (c *Client) tally(rep *SyncReport, pb *pendingBatch, resp *sp.PushResponse) map[string]bool {
	rep.Batches++
	done := make(map[string]bool, len(resp.Results))
	for _, res := range resp.Results {
		switch res.Status {
		case sp.StatusApplied:
			rep.Applied++
		case sp.StatusUnchanged:
			rep.Unchanged++
		case sp.StatusConflict:
			rep.Conflicted++
			rep.Conflicts = append(rep.Conflicts, res.ID)
		case sp.StatusRejected:
			rj := Rejection{ID: res.ID, Batch: pb.ID, Code: sp.CodeInternal}
			if res.Error != nil {
				rj.Code, rj.Message = res.Error.Code, res.Error.Message
			}
			rep.Rejected = append(rep.Rejected, rj)
			c.log.Warn("push item rejected; the server keeps it in its quarantine", slog.String(keyRecord, res.ID),
				slog.String(keyBatch, pb.ID), slog.String(keyCode, string(rj.Code)), slog.String(keyMessage, rj.Message))
		default:
			c.log.Error("unknown push result status; the item stays dirty", slog.String(keyRecord, res.ID), slog.String(keyStatus, res.Status))
			continue
		}
		done[res.ID] = true
	}
	return done
}

// pullAll pulls from the stored cursor until the server has no more,
// merging each page and storing its cursor in one transaction. It returns
// do's errors (a *StatusError with CodeResyncRequired for a foreign
// cursor), an error for an invalid state, and the device file's errors.
func (c *Client) pullAll(ctx context.Context, rep *SyncReport) error {
	cursor, err := c.st.cursor()
	if err != nil {
		return err
	}
	for {
		q := url.Values{"limit": {strconv.Itoa(c.opt.PullLimit)}}
		if cursor != "" {
			q.Set("since", cursor)
		}
		body, err := c.do(ctx, request{method: http.MethodGet, route: routePull, path: routePull + "?" + q.Encode()})
		if err != nil {
			return err
		}
		var resp sp.PullResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			return fmt.Errorf("client: pull answer: %w", err)
		}
		states := make([]sp.State, 0, len(resp.Records))
		for _, p := range resp.Records {
			if err := sp.Validate(p.State); err != nil {
				return fmt.Errorf("client: pulled record %s is invalid: %w", p.ID, err)
			}
			states = append(states, p.State)
		}
		if err := c.st.mergePulled(states, resp.Cursor, mergePulled); err != nil {
			return err
		}
		rep.Pulled += len(states)
		if !resp.More {
			return nil
		}
		if resp.Cursor == cursor {
			return errors.New("client: the server says there is more to pull but its cursor did not move")
		}
		cursor = resp.Cursor
	}
}

// mergePulled joins a pulled state into the local one; dirty marks stay.
func mergePulled(cur *localRecord, pulled sp.State) *localRecord {
	in := sp.FromState(pulled)
	if cur == nil {
		return &localRecord{State: in.State()}
	}
	return &localRecord{State: sp.Join(sp.FromState(cur.State), in).State(), Dirty: cur.Dirty}
}
