package records

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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
// state JSON as stored, with its seq, written into one buffer as the page
// is read (WriteTo sends it without another copy).
type PullPage struct {
	Cursor string
	More   bool
	// stamp is what the page depends on in the feed (sharedpages.go).
	stamp pageStamp
	// records holds the page's records, comma-separated; count says how many.
	records []byte
	count   int
}

// pageBuffers keeps the buffers of a few pages already sent: a page of
// 1,000 records is over a megabyte, which growing afresh for every page
// costs more than reading the records. (A sync.Pool is emptied by every
// garbage collection, which pulls themselves bring on.)
var pageBuffers = make(chan []byte, 4)

// maxKeptPage is the largest page buffer kept for another page.
const maxKeptPage = 4 << 20

// pageBuffer returns a kept page buffer, or nil.
func pageBuffer() []byte {
	select {
	case b := <-pageBuffers:
		return b
	default:
		return nil
	}
}

// Release gives the page's buffer back for another page. The page must not
// be used after.
func (p *PullPage) Release() {
	if p.records == nil || cap(p.records) > maxKeptPage {
		return
	}
	select {
	case pageBuffers <- p.records[:0]:
	default:
	}
	p.records = nil
}

// addRecord appends a record's stored state JSON with "seq" added. On the
// first record of a page of up to limit records that has no kept buffer,
// it sizes one for a page of records like it (at most maxKeptPage), rather
// than doubling it a dozen times.
func (p *PullPage) addRecord(state []byte, seq uint64, limit int) {
	if p.count == 0 && p.records == nil {
		p.records = make([]byte, 0, min(limit*(len(state)+32), maxKeptPage))
	}
	if p.count > 0 {
		p.records = append(p.records, ',')
	}
	p.records = append(p.records, state[:len(state)-1]...)
	p.records = append(p.records, `,"seq":`...)
	p.records = strconv.AppendUint(p.records, seq, 10)
	p.records = append(p.records, '}')
	p.count++
}

// Size returns the length of the page's wire JSON (what WriteTo writes).
func (p *PullPage) Size() int {
	return len(`{"records":[`) + len(p.records) + len(p.tail())
}

// WriteTo writes the page's wire JSON, {"records":[...],"cursor":...,"more":...}
// and a line feed, to w.
func (p *PullPage) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, part := range [][]byte{[]byte(`{"records":[`), p.records, p.tail()} {
		n, err := w.Write(part)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// tail is what follows the records: the cursor (base64url, no escapes) and
// more.
func (p *PullPage) tail() []byte {
	b := append([]byte(`],"cursor":"`), p.Cursor...)
	b = append(b, `","more":`...)
	b = strconv.AppendBool(b, p.More)
	return append(b, "}\n"...)
}

// Decode returns the page as typed records.
func (p *PullPage) Decode() (*sp.PullResponse, error) {
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); err != nil {
		return nil, err
	}
	out := &sp.PullResponse{}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return nil, err
	}
	if out.Records == nil {
		out.Records = []sp.PulledRecord{}
	}
	return out, nil
}

// Pull returns the records in the caller's scopes that changed after the
// cursor, once each, at their latest state, in ascending seq (PROTOCOL.md
// §3). It returns an *sp.Error with CodeBadRequest for a bad limit or form,
// CodeBadCursor for a malformed cursor, and CodeResyncRequired for a cursor
// of another history. Every account may pull: what it is given is limited
// to its scopes.
func (s *Service) Pull(ctx context.Context, caller *auth.Account, q PullQuery) (*PullPage, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	key := keyOf(caller, q)
	var page *PullPage
	if p := s.ahead.take(ctx, key); p != nil {
		if p.err == nil && s.feedAt(ctx, p.at) {
			page = p.page
			s.ahead.serving.Add(1)
		} else {
			p.drop()
		}
	}
	if page == nil {
		var err error
		if page, _, err = s.buildPage(ctx, caller, q); err != nil {
			return nil, err
		}
	}
	if page.More && s.ahead.walking(key, page.Cursor) {
		next := q
		next.Since = page.Cursor
		s.ahead.start(keyOf(caller, next), func() (*PullPage, Position, error) {
			return s.buildPage(context.Background(), caller, next)
		})
	}
	return page, nil
}

// check returns an *sp.Error with CodeBadRequest for a bad limit or form.
func (q PullQuery) check() error {
	if q.Limit < 1 || q.Limit > sp.MaxPull {
		return sp.Errorf(sp.CodeBadRequest, "limit: must be 1 to %d", sp.MaxPull)
	}
	if q.Form != "" && !sp.IsSlug(q.Form) {
		return sp.Errorf(sp.CodeBadRequest, "form: must match [a-z0-9_-]{1,64}")
	}
	return nil
}

// feedAt reports whether the feed still stands at pos.
func (s *Service) feedAt(ctx context.Context, pos Position) bool {
	var now Position
	err := s.store.View(ctx, func(tx ReadTx) error {
		now = tx.Position()
		return nil
	})
	return err == nil && now == pos
}

// buildPage reads the page q asks for in one snapshot, and returns it with
// the feed's position in that snapshot.
func (s *Service) buildPage(ctx context.Context, caller *auth.Account, q PullQuery) (*PullPage, Position, error) {
	var pos Position
	resp := &PullPage{records: pageBuffer()}
	err := s.store.View(ctx, func(tx ReadTx) error {
		pos = tx.Position()
		since, err := checkCursor(tx, q.Since)
		if err != nil {
			return err
		}
		last := since
		scanned := 0
		err = tx.Changes(since, func(c Change) (bool, error) {
			if resp.count == q.Limit || scanned == maxScan {
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
			resp.addRecord(state, seq, q.Limit)
			return true, nil
		})
		if err != nil {
			return err
		}
		if !resp.More {
			last = tx.Position().LastSeq
		}
		resp.Cursor = cursorAt(tx, last).String()
		resp.stamp = pageStamp{at: pos, since: since, last: last, changes: scanned, more: resp.More}
		return nil
	})
	if err != nil {
		resp.Release()
		return nil, Position{}, err
	}
	return resp, pos, nil
}
